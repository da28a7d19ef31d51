"""schemathesis against ``/openapi.json`` of the running stack: no 5xx, and every response as documented.

It generates valid and invalid requests for every operation, for a coordinator, a member and a
vendor, and checks that no answer is a server error and each answer's status, content type and
body match the OpenAPI document. The note on the issue gives the case count of a run; this test
fails if a run generated fewer than 500 cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_ENV
from tests.e2e.conftest import RunningStack

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
MINIMUM_CASES = 500


def run_schemathesis(
    stack: RunningStack, api_key: str, report: Path, max_examples: int, parameters: dict[str, str] | None = None
) -> tuple[int, str]:
    config = report.with_suffix(".toml")
    lines = ["[parameters]"] + [f'"{name}" = "{value}"' for name, value in (parameters or {}).items()]
    config.write_text("\n".join(lines) + "\n")
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{stack.base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--exclude-path-regex",
        "/stream$",  # a live stream never ends; tests/e2e/test_live.py covers it
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(max_examples),
        "--seed",
        "20261130",
        "--generation-database",
        "none",
        "--workers",
        "1",  # hypothesis parses lambdas with ast, which is not thread-safe on Python 3.11
        "--no-color",
        "--suppress-health-check",
        "too_slow,filter_too_much",
        "-H",
        f"Authorization: Bearer {api_key}",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--output-sanitize",
        "true",
    ]
    # Run where its cache lands in the test's folder, not in the repository.
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, cwd=report.parent)
    return done.returncode, done.stdout + done.stderr


def count_cases(report: Path) -> int:
    """Test cases the run sent, from its event stream (one ScenarioFinished per scenario, with its cases)."""
    cases = 0
    for line in report.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished:
            cases += len(finished.get("recorder", {}).get("cases", {}))
    return cases


def test_generated_requests_find_no_server_error_and_no_undocumented_response(
    stack: RunningStack, tmp_path: Path
) -> None:
    if stack.database == "sqlite" and os.environ.get(POSTGRES_ENV):
        # Two minutes a run: the HTTP contract is the same on both databases, so it is generated
        # once, on PostgreSQL when there is one (the read model's SQL has its own tests on both)
        pytest.skip("the generated requests run once, on PostgreSQL")
    # Given a negotiation with parties of each role, so requests meet real data as well
    _, coordinator_key = stack.organisation("Fuzz coop", "coordinator")
    vendor_id, vendor_key = stack.organisation("Fuzz vendor", "vendor")
    _, member_key = stack.organisation("Fuzz member", "member")
    coordinator = stack.client(coordinator_key)
    opened = coordinator.post(
        "/v1/negotiations", json={"title": "Fuzzed", "vendor_id": vendor_id, "items": [{"key": "no-ai-training"}]}
    )
    assert opened.status_code == 201
    nid = opened.json()["id"]
    member_id = stack.client(member_key).get("/v1/organisations/me").json()["id"]
    assert coordinator.post(f"/v1/negotiations/{nid}/members", json={"organisation_id": member_id}).status_code == 201
    in_negotiation = {"negotiation_id": nid, "item_key": "no-ai-training"}
    total = 0
    runs = [
        ("coordinator-anywhere", coordinator_key, None),
        ("coordinator", coordinator_key, in_negotiation),
        ("member", member_key, in_negotiation),
        ("vendor", vendor_key, in_negotiation),
    ]
    for name, key, parameters in runs:
        report = tmp_path / f"{name}.ndjson"
        # When schemathesis runs against the API as this party (in its negotiation, or at random ids)
        code, output = run_schemathesis(stack, key, report, max_examples=6, parameters=parameters)
        # Then nothing failed
        assert code == 0, output[-6000:]
        total += count_cases(report)
    print(f"schemathesis: {total} generated test cases, no failures")
    assert total >= MINIMUM_CASES
