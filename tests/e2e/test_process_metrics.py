"""Every process of the stack but the API serves /metrics, /healthz and /readyz on a port of its own
(docs/deployment.md, "Metrics and health"): after a few commands each one's metrics say what
happened, and none names an organisation or a negotiation (the port has no token)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.topics import COMMANDS
from tests.conftest import free_base_port
from tests.e2e.conftest import RunningStack, running_stack
from tests.e2e.receiver import Receiver

PROCESSES = ("worker", "projector", "webhooks", "scheduler")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, int]]:
    base = free_base_port(4)
    with running_stack(kafka_bootstrap, tmp_path_factory.mktemp("ports"), "sqlite", metrics_port=base) as running:
        yield running, base


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), float("nan"))


def eventually(condition: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.2)


def test_each_process_serves_its_metrics_health_and_readiness(stack: tuple[RunningStack, int]) -> None:
    running, base = stack
    ports = {process: base + place for place, process in enumerate(PROCESSES)}
    url = {process: f"http://127.0.0.1:{port}" for process, port in ports.items()}

    # Given every process alive and ready
    for process in PROCESSES:
        assert get(url[process] + "/healthz")[0] == 200, process
        eventually(lambda process=process: get(url[process] + "/readyz")[0] == 200, 60, f"{process} ready")

    # When a coordinator, subscribed to webhooks, opens a negotiation, invites two members, they
    # state positions, and the vendor answers before anything is published (refused: 409)
    receiver = Receiver().start()
    try:
        coordinator_id, coordinator_key = running.organisation("Metered coop", "coordinator")
        vendor_id, vendor_key = running.organisation("Metered vendor", "vendor")
        coordinator, vendor = running.client(coordinator_key), running.client(vendor_key)
        assert coordinator.post("/v1/subscriptions", json={"url": receiver.url}).status_code == 201
        body = {"title": "Metered", "vendor_id": vendor_id, "items": [{"key": "no-ai-training"}]}
        nid = coordinator.post("/v1/negotiations", json=body).json()["id"]
        for i in range(2):
            member_id, member_key = running.organisation(f"Metered member {i}", "member")
            invited = coordinator.post(f"/v1/negotiations/{nid}/members", json={"organisation_id": member_id})
            assert invited.status_code == 201, invited.text
            stated = running.client(member_key).put(
                f"/v1/negotiations/{nid}/positions/no-ai-training", json={"priority": "must"}
            )
            assert stated.status_code == 200, stated.text
        early = {"demand_version": 1, "items": [{"key": "no-ai-training", "verdict": "accept"}]}
        assert vendor.post(f"/v1/negotiations/{nid}/responses", json=early).status_code == 409
        events = int(coordinator.get(f"/v1/negotiations/{nid}").json()["sequence"])
        receiver.wait_for(1, 30)
    finally:
        receiver.stop()
    accepted = 5  # the opening, two invitations, two positions

    def scrape(process: str) -> Samples:
        status, text = get(url[process] + "/metrics")
        assert status == 200, process
        # Nothing on this tokenless port names a party or a negotiation
        assert nid not in text and coordinator_id not in text and vendor_id not in text, process
        return samples(text)

    # Then the worker counts its decisions, its batches and the rebuilding of its partitions, and
    # is caught up with every partition of the commands topic
    commands = COMMANDS.name(running.settings.topic_prefix)
    eventually(
        lambda: all(
            value(scrape("worker"), "koopkracht_consumer_lag", group=f"{running.settings.topic_prefix}-worker",
                  topic=commands, partition=str(p)) == 0
            for p in range(COMMANDS.partitions)
        ),
        30,
        "the worker's lag at 0 on every partition",
    )  # fmt: skip
    worker = scrape("worker")
    assert value(worker, "koopkracht_worker_commands_total", outcome="accepted") >= accepted
    assert value(worker, "koopkracht_worker_commands_total", outcome="rejected") >= 1
    assert value(worker, "koopkracht_worker_batch_seconds_count") >= 1
    assert value(worker, "koopkracht_worker_recovery_seconds_count") >= 1
    assert value(worker, "koopkracht_worker_partitions", state="deciding") == COMMANDS.partitions
    assert value(worker, "koopkracht_worker_partitions", state="recovering") == 0
    assert value(worker, "process_cpu_seconds_total") > 0

    # And the projector counts the events it projected, and is caught up (transaction markers included)
    def projector_lags() -> list[float]:
        return [v for (name, _), v in scrape("projector").items() if name == "koopkracht_consumer_lag"]

    eventually(lambda: projector_lags() and not any(projector_lags()), 30, "the projector's lag at 0")
    projector = scrape("projector")
    assert value(projector, "koopkracht_projector_events_total") >= events
    assert value(projector, "koopkracht_projector_batch_seconds_count") >= 1

    # And the dispatcher its attempts and how long deliveries took, with none left waiting
    eventually(
        lambda: value(scrape("webhooks"), "koopkracht_webhook_pending_deliveries") == 0, 30, "no delivery waiting"
    )
    webhooks = scrape("webhooks")
    assert value(webhooks, "koopkracht_webhook_attempts_total", outcome="delivered") >= 1
    assert value(webhooks, "koopkracht_webhook_delivery_seconds_count") >= 1
    assert value(webhooks, "koopkracht_webhook_oldest_pending_seconds") == 0

    # And the scheduler its rounds (nothing is overdue: no tick sent)
    scheduler = scrape("scheduler")
    assert value(scheduler, "koopkracht_scheduler_round_seconds_count") >= 1
    assert value(scheduler, "koopkracht_scheduler_last_round_timestamp_seconds") > time.time() - 60
    assert value(scheduler, "koopkracht_scheduler_ticks_total", outcome="accepted") == 0


def test_a_path_other_than_the_three_is_not_found(stack: tuple[RunningStack, int]) -> None:
    _, base = stack
    assert get(f"http://127.0.0.1:{base}/")[0] == 404
    assert get(f"http://127.0.0.1:{base}/v1/negotiations")[0] == 404
