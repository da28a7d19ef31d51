"""``koopkracht demo --no-serve`` plays the whole story on a fresh stack and exits 0: TU Delft's
people draft, comment and adopt its change of position on the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from jsonschema import Draft4Validator, FormatChecker

from tests.conftest import free_base_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_reaches_an_agreement_and_writes_a_valid_ocds_release(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KOOPKRACHT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "KOOPKRACHT_TOPIC_PREFIX": f"demo{uuid.uuid4().hex[:8]}",
        "KOOPKRACHT_DATA_DIR": str(tmp_path),
        "KOOPKRACHT_API_PORT": str(free_base_port(1)),
        "KOOPKRACHT_LOG_FORMAT": "json",
        "COLUMNS": "120",
    }
    env.pop("KOOPKRACHT_ADMIN_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-m", "services", "demo", "--no-serve"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "agreement agreed" in output
    # After the agreement: a plan, two deliveries checked by members, one met, one not, one overdue
    # on the scheduler's tick, and the negotiation reopened on it
    assert "SURF accepted the plan: the agreement is in implementation" in output
    assert "SURF found no-ai-training met" in output
    assert "SURF found diagnostic-data-retention not met" in output
    assert "the scheduler's tick found breach-notification overdue" in output
    assert "SURF reopened the negotiation on breach-notification" in output
    assert "phase negotiating" in output
    # At TU Delft a contributor drafted, the privacy officer commented and the approver adopted
    assert 'Joris Bakker drafts data location "NL only"' in output
    assert "Femke Jansen, the privacy officer, comments" in output
    assert "Pieter van Dam (approver) redrafts it to NL or EU and adopts it" in output
    assert "the data-location conflict is gone" in output
    (release_path,) = (tmp_path / "demo").glob("ocds-release-*.json")
    schema = json.loads((ROOT / "tests" / "data" / "ocds" / "release-schema.json").read_text())
    release = json.loads(release_path.read_text())
    assert list(Draft4Validator(schema, format_checker=FormatChecker()).iter_errors(release)) == []
    assert len([p for p in release["parties"] if p["roles"] == ["interestedParty"]]) == 12
    milestones = {m["koopkracht"]["key"]: m for m in release["contracts"][0]["implementation"]["milestones"]}
    assert milestones["no-ai-training"]["status"] == "met" and milestones["no-ai-training"]["dateMet"]
    assert milestones["diagnostic-data-retention"]["status"] == "notMet"
    assert milestones["breach-notification"]["status"] == "notMet"  # overdue
    assert milestones["exit-return-deletion"]["status"] == "scheduled"
    # The organisations' keys and their people's tokens are kept for the next run, readable by
    # their owner only; the console shows how people sign in, with personal tokens, not keys
    kept = tmp_path / "demo" / "organisations.json"
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    organisations = json.loads(kept.read_text())
    assert all(o["owner_token"].startswith("kkp_") for o in organisations.values())
    assert sorted(organisations["tud"]["people"]) == ["CIO", "architect", "privacy officer"]
    assert "Sign in with a personal token" in output
    assert organisations["surf"]["owner_token"] in output and organisations["tud"]["people"]["CIO"] in output
    assert all(o["api_key"] not in output for o in organisations.values())
