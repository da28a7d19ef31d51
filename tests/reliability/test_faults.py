"""The hub as deployed (separate processes, a 3-broker Kafka) keeps its promises through faults.

Each test runs one scenario of ``tests.reliability.faults`` under twelve members' load and asserts
its invariants: no valid write refused, no acknowledged write lost, no command applied twice, no
event twice in the events topic (read with read_committed), and the state topic and the read model
equal to a pure replay of the events topic. The figures (latencies, retries, healing times) are
printed, not asserted. The scenarios marked ``faults`` run with ``KOOPKRACHT_RUN_FAULTS=1``
(``make faults``); the broker killed during a rebalance runs in every ``pytest``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.kafka import KafkaCluster
from tests.reliability.faults import Outcome, run_scenario
from tests.reliability.harness import Hub

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

LOAD_S = 45.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """One 3-broker cluster for the module's scenarios (each has its own topics and database)."""
    cluster = Hub.new_cluster(tmp_path_factory.mktemp("kafka3"))
    try:
        yield cluster
    finally:
        cluster.stop()


def scenario(fault: str, tmp_path: Path, cluster: KafkaCluster) -> Outcome:
    outcome = run_scenario(fault, tmp_path / fault, cluster, load_s=LOAD_S)
    print(outcome.report())
    print(json.dumps({"fault": fault, "figures": outcome.as_json()["figures"], "writes": outcome.writes}))
    return outcome


def assert_invariants(outcome: Outcome) -> None:
    assert outcome.error is None, outcome.report()
    assert outcome.checks, outcome.report()
    failed = [check.line() for check in outcome.failed()]
    assert not failed, "\n".join(failed) + "\n\n" + outcome.report()


def test_a_broker_killed_while_the_workers_rebalance_loses_and_refuses_nothing(
    tmp_path: Path, cluster: KafkaCluster
) -> None:
    # Given the hub under twelve members' writes
    # When the broker leading most events partitions is SIGKILLed, then a worker, so the other
    # worker is assigned every partition and rebuilds its tables while the broker is down; then
    # the broker and the worker are started again
    outcome = scenario("broker-rebalance", tmp_path, cluster)
    # Then the survivor was assigned the partitions during the outage
    assert any("during the outage" in what for _, what in outcome.timeline), outcome.report()
    # And no valid write was refused, none acknowledged lost, none applied twice, and the state
    # topic and the read model equal a replay of the events topic
    assert_invariants(outcome)


@pytest.mark.faults
def test_without_a_fault_every_invariant_holds(tmp_path: Path, cluster: KafkaCluster) -> None:
    # Given the hub under twelve members' writes, When nothing fails
    outcome = scenario("none", tmp_path, cluster)
    # Then every invariant holds (the baseline the faults are measured against)
    assert_invariants(outcome)


@pytest.mark.faults
def test_a_sigkilled_worker_loses_and_refuses_nothing(tmp_path: Path, cluster: KafkaCluster) -> None:
    # Given the hub under load, When the worker owning most of the load's negotiations is SIGKILLed,
    # the other takes its partitions, and it is started again
    outcome = scenario("worker-kill", tmp_path, cluster)
    # Then every invariant holds
    assert_invariants(outcome)


@pytest.mark.faults
def test_a_sigkilled_projector_loses_and_refuses_nothing(tmp_path: Path, cluster: KafkaCluster) -> None:
    # Given the hub under load, When the projector is SIGKILLed and, once a write had to be retried,
    # started again
    outcome = scenario("projector-kill", tmp_path, cluster)
    # Then every invariant holds
    assert_invariants(outcome)


@pytest.mark.faults
def test_an_api_sigkilled_with_requests_in_flight_loses_and_refuses_nothing(
    tmp_path: Path, cluster: KafkaCluster
) -> None:
    # Given the hub under load, When the API is SIGKILLed with requests in flight and started again,
    # and the clients retry with the same Idempotency-Key
    outcome = scenario("api-kill", tmp_path, cluster)
    # Then every invariant holds
    assert_invariants(outcome)


@pytest.mark.faults
def test_a_zombie_worker_writes_nothing_next_to_its_successor(tmp_path: Path, cluster: KafkaCluster) -> None:
    # Given the hub under load, When the worker owning most of the load's negotiations is SIGSTOPped
    # until the other worker has taken its partitions and written to them, then SIGCONTed
    outcome = scenario("zombie", tmp_path, cluster)
    # Then the events topic, read with read_committed, has no (negotiation, sequence) twice and no
    # event id twice: whatever the zombie still wrote is not part of the log
    assert outcome.events is not None, outcome.report()
    sequences = Counter((e.negotiation_id, e.sequence) for _, _, e in outcome.events.records)
    ids = Counter(e.event_id for _, _, e in outcome.events.records)
    twice = [(nid[:8], seq) for (nid, seq), n in sequences.items() if n > 1]
    assert not twice, f"{len(twice)} (negotiation, sequence) written twice, e.g. {twice[:5]}\n{outcome.report()}"
    assert max(ids.values()) == 1, f"{sum(n > 1 for n in ids.values())} event ids twice\n{outcome.report()}"
    # And every other invariant holds
    assert_invariants(outcome)


@pytest.mark.faults
def test_a_broker_killed_as_a_worker_joins_loses_and_refuses_nothing(tmp_path: Path, cluster: KafkaCluster) -> None:
    # Given the hub under load, When the broker leading most events partitions (the group's
    # coordinator spared) is SIGKILLed and a third worker joins at once, so that every worker
    # rebuilds its tables during the outage, and the broker is started again
    outcome = scenario("broker-join", tmp_path, cluster)
    # Then every invariant holds
    assert_invariants(outcome)
