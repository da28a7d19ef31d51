"""Who may do what on Kafka: each process's principal and its ACLs, and the file the Helm chart reads.

The table is the one in docs/security.md ("Kafka trust"), declared once here: only the API and the
scheduler write commands, only the worker writes the topics it owns, everyone else reads only what
it needs. The webhook dispatcher has no principal: it never talks to Kafka. A unit test holds the
table to the topic registry's single writers and to the commands in docs/security.md.

``chart_registry()`` is what the Helm chart (``infra/helm/koopkracht/files/registry.json``) renders its
Strimzi ``KafkaTopic`` and ``KafkaUser`` resources from, so that the chart never copies a topic by
hand; it also lists the settings' names, so that the chart refuses a misspelt one. ``koopkracht
topics chart`` writes it, and a unit test fails when the committed file is not what the code gives
now.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from schemas.topics import ALL_TOPICS, COMMAND_RESULTS, COMMANDS, DEAD_LETTERS, EVENTS, SNAPSHOTS, STATE, Topic

Operation = Literal["Read", "Write", "Describe"]

PREFIX_PLACEHOLDER = "{prefix}"
"""Stands for the deployment's topic prefix in the chart's file; the chart puts its own in."""


@dataclass(frozen=True)
class Grant:
    """Operations on one resource: a topic of the registry, a process's consumer group, or the
    transactional ids of a process (a prefix: one id per partition)."""

    resource: Literal["topic", "group", "transactionalId"]
    target: Topic | str  # a topic, or the process whose group or transactional ids are meant
    operations: tuple[Operation, ...]

    def name(self, prefix: str) -> str:
        if isinstance(self.target, Topic):
            return self.target.name(prefix)
        if self.resource == "group":
            return f"{prefix}-{self.target}"
        return f"{prefix}-{self.target}."  # the worker's ids are <group>.<partition>

    @property
    def pattern(self) -> Literal["literal", "prefix"]:
        return "prefix" if self.resource == "transactionalId" else "literal"


@dataclass(frozen=True)
class Principal:
    """A process's Kafka identity: ``User:<prefix>-<process>``."""

    process: str
    grants: tuple[Grant, ...]

    def user(self, prefix: str) -> str:
        return f"{prefix}-{self.process}"


def _topics(operations: tuple[Operation, ...], *topics: Topic) -> tuple[Grant, ...]:
    return tuple(Grant("topic", t, operations) for t in topics)


PRINCIPALS: tuple[Principal, ...] = (
    # Writes commands; reads command results (no consumer group); describes the worker's and the
    # projector's groups for /readyz.
    Principal(
        "api",
        (
            *_topics(("Write", "Describe"), COMMANDS),
            *_topics(("Read", "Describe"), COMMAND_RESULTS),
            Grant("group", "worker", ("Describe",)),
            Grant("group", "projector", ("Describe",)),
        ),
    ),
    # Writes ticks to the commands topic; reads their results (no consumer group).
    Principal(
        "scheduler",
        (
            *_topics(("Write", "Describe"), COMMANDS),
            *_topics(("Read", "Describe"), COMMAND_RESULTS),
        ),
    ),
    # Consumes commands in its group; reads events and snapshots to recover; writes the rest in
    # transactions, one transactional id per partition.
    Principal(
        "worker",
        (
            *_topics(("Read", "Describe"), COMMANDS),
            *_topics(("Read", "Write", "Describe"), EVENTS, SNAPSHOTS),
            *_topics(("Write", "Describe"), STATE, COMMAND_RESULTS, DEAD_LETTERS),
            Grant("group", "worker", ("Read", "Describe")),
            Grant("transactionalId", "worker", ("Write", "Describe")),
        ),
    ),
    # Reads events and command results in its group.
    Principal(
        "projector",
        (
            *_topics(("Read", "Describe"), EVENTS, COMMAND_RESULTS),
            Grant("group", "projector", ("Read",)),
        ),
    ),
)


def chart_registry(settings: Iterable[str]) -> dict[str, Any]:
    """The registry's topics and the principals' ACLs, with ``{prefix}`` for the topic prefix, and
    the names of the settings (the fields of services.settings.Settings, which the caller passes)."""
    prefix = PREFIX_PLACEHOLDER
    return {
        "generatedBy": "koopkracht topics chart (from schemas/topics.py, infra/kafka/access.py and "
        "services/settings.py); do not edit",
        # The worker group's topic: its partitions cap the workers, KEDA scales on its lag.
        "commands": {
            "name": COMMANDS.name(prefix),
            "partitions": COMMANDS.partitions,
            "group": Grant("group", "worker", ()).name(prefix),
        },
        "topics": [{"name": t.name(prefix), "partitions": t.partitions, "config": t.configs()} for t in ALL_TOPICS],
        "users": {
            p.process: [
                {
                    "resource": {"type": g.resource, "name": g.name(prefix), "patternType": g.pattern},
                    "operations": list(g.operations),
                }
                for g in p.grants
            ]
            for p in PRINCIPALS
        },
        "settings": sorted(settings),
    }


def chart_registry_text(settings: Iterable[str]) -> str:
    return json.dumps(chart_registry(settings), indent=2) + "\n"
