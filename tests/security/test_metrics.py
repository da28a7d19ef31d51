"""``/metrics`` counts commands by type (``InviteMember``, ``Endorse`` …), which tells how big a
coalition is and how its endorsements go: only the bearer of the metrics token reads it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.settings import SettingsError, load_settings
from tests.e2e.conftest import RunningStack, running_stack


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(kafka_bootstrap, tmp_path_factory.mktemp("metrics"), "sqlite") as running:
        yield running


def test_metrics_without_the_metrics_token_are_401(stack: RunningStack) -> None:
    _, coordinator_key = stack.organisation("Metrics coop", "coordinator")
    for credential in (None, coordinator_key, stack.admin_token, stack.metrics_token[:-1] + "x"):
        answer = stack.client(credential).get("/metrics")
        assert answer.status_code == 401, credential
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert "koopkracht_commands" not in answer.text


def test_metrics_with_the_metrics_token_are_200_and_count_commands(stack: RunningStack) -> None:
    vendor_id, _ = stack.organisation("Metrics vendor", "vendor")
    _, coordinator_key = stack.organisation("Counting coop", "coordinator")
    opened = stack.client(coordinator_key).post(
        "/v1/negotiations", json={"title": "Counted", "vendor_id": vendor_id, "items": [{"key": "no-ai-training"}]}
    )
    assert opened.status_code == 201, opened.text
    scraped = stack.client(stack.metrics_token).get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert 'koopkracht_commands_total{command="OpenNegotiation",outcome="accepted"}' in scraped.text
    logs = "\n".join(path.read_text(errors="replace") for path in stack.stack.logs.glob("*.log"))
    assert stack.metrics_token not in logs


def test_a_stack_without_a_metrics_token_shows_metrics_to_nobody(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with running_stack(kafka_bootstrap, tmp_path_factory.mktemp("closed"), "sqlite", metrics_token=None) as closed:
        answer = closed.client(closed.admin_token).get("/metrics")
        assert answer.status_code == 401
        assert "KOOPKRACHT_METRICS_TOKEN" in answer.json()["detail"]


def test_a_short_metrics_token_stops_start_up_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPKRACHT_METRICS_TOKEN", "prometheus")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "KOOPKRACHT_METRICS_TOKEN: Value error, must be at least 32 characters" in str(raised.value.code)
