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
