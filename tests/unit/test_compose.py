"""docker-compose.yml stays true to the code: real CLI commands, real settings, the pinned Kafka."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.unit.real_names import cli_commands, setting_variables

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def koopkracht_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if s.get("image") == "koopkracht:local"}


def test_every_koopkracht_container_runs_a_real_cli_command() -> None:
    services = koopkracht_services()
    assert {"topics", "migrate", "worker", "projector", "webhooks", "scheduler", "api"} <= set(services)
    commands = cli_commands()
    for name, service in services.items():
        words = tuple(w for w in service["command"] if not w.startswith("-"))
        assert words in commands, f"{name}: `koopkracht {' '.join(words)}` is not a command"


def test_every_environment_variable_is_a_real_setting() -> None:
    settings = setting_variables()
    for name, service in koopkracht_services().items():
        for variable in service["environment"]:
            assert variable in settings, f"{name}: {variable} is not a setting"


def test_the_compose_kafka_is_the_version_the_pom_pins() -> None:
    pinned = re.search(r"<kafka.version>([^<]+)</kafka.version>", (ROOT / "infra/kafka/pom.xml").read_text())
    assert pinned is not None
    assert compose()["services"]["kafka"]["image"] == f"apache/kafka:{pinned.group(1)}"


def test_the_checks_would_notice_a_wrong_command() -> None:
    assert ("worker",) in cli_commands()
    assert ("kafka", "start") in cli_commands()
    assert ("no-such-command",) not in cli_commands()


def test_the_event_log_and_the_database_live_in_volumes() -> None:
    # Given the compose Kafka and PostgreSQL
    services = compose()["services"]
    kafka, postgres = services["kafka"], services["postgres"]
    # Then Kafka writes its log where a named volume is mounted, with a fixed cluster id, and so
    # does PostgreSQL: re-creating the containers loses nothing
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in kafka["volumes"]}
    assert mounts.get(kafka["environment"]["KAFKA_LOG_DIRS"]) in compose()["volumes"]
    assert kafka["environment"]["CLUSTER_ID"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])


def test_every_long_running_process_has_a_health_check_that_asks_it() -> None:
    # Given every Koopkracht container but the one-off jobs
    for name, service in koopkracht_services().items():
        if name in ("topics", "migrate"):
            continue
        # Then its health check asks the process itself, on the port it serves
        check = " ".join(service["healthcheck"]["test"])
        port = service["environment"].get("KOOPKRACHT_METRICS_PORT", "8000")
        assert f"127.0.0.1:{port}/healthz" in check or f"127.0.0.1:{port}/readyz" in check, name
        assert "os.kill" not in check


def test_the_image_carries_the_runtime_lock_only() -> None:
    # Given the Dockerfile, the two locks and .dockerignore
    dockerfile = (ROOT / "infra/docker/Dockerfile").read_text()
    runtime = (ROOT / "requirements.lock").read_text()
    development = (ROOT / "requirements-dev.lock").read_text()
    ignored = (ROOT / ".dockerignore").read_text().split()
    # Then the image installs the runtime lock, which holds no test or lint tool, while the
    # development lock does; and the jar cache, the virtual environment and the tests stay out
    assert "-r requirements.lock" in dockerfile and "requirements-dev.lock" not in dockerfile
    for tool in ("pytest", "mypy", "ruff", "playwright", "schemathesis", "hypothesis", "faust-streaming"):
        assert not re.search(rf"^{tool}==", runtime, re.M), tool
        assert re.search(rf"^{tool}==", development, re.M), tool
    for pinned in re.findall(r"^([A-Za-z0-9_.-]+==\S+)", runtime, re.M):
        assert re.search(rf"^{re.escape(pinned)} ", development, re.M), f"{pinned} differs between the locks"
    assert {"infra/kafka/.cache", ".venv", "tests", ".git"} <= set(ignored)
