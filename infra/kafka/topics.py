"""Create or verify the registry's topics on a cluster, idempotently (`koopkracht topics ensure`)."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from schemas.topics import ALL_TOPICS, Topic
from streams.connection import KafkaConnection


@dataclass(frozen=True)
class TopicReport:
    name: str
    action: str  # "created" | "ok" | "mismatch"
    detail: str = ""


async def ensure_topics(
    bootstrap: KafkaConnection | str,
    prefix: str,
    topics: tuple[Topic, ...] = ALL_TOPICS,
    replication: int | None = None,
) -> list[TopicReport]:
    """Create missing topics; check existing ones against the registry and report differences.

    ``replication`` defaults to the cluster's size capped at 3.
    """
    admin = KafkaConnection.of(bootstrap).admin(request_timeout_ms=15000)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        rf = replication or min(3, len(cluster["brokers"]))
        existing = set(await admin.list_topics())
        reports: list[TopicReport] = []
        missing = [t for t in topics if t.name(prefix) not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            name=t.name(prefix),
                            num_partitions=t.partitions,
                            replication_factor=rf,
                            topic_configs=t.configs(),
                        )
                        for t in missing
                    ]
                )
            except TopicAlreadyExistsError:
                pass  # another process created it between list and create: verified below
            reports.extend(
                TopicReport(t.name(prefix), "created", f"{t.partitions} partitions, RF {rf}") for t in missing
            )
        present = [t for t in topics if t not in missing]
        if present:
            described = await admin.describe_topics([t.name(prefix) for t in present])
            partitions = {d["topic"]: len(d["partitions"]) for d in described}
            configs = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t.name(prefix)) for t in present]
            )
            actual_policy: dict[str, str] = {}
            for response in configs:
                for resource in response.resources:
                    name = resource[3]
                    for entry in resource[4]:
                        if entry[0] == "cleanup.policy":
                            actual_policy[name] = entry[1]
            for t in present:
                name = t.name(prefix)
                problems = []
                if partitions.get(name) != t.partitions:
                    problems.append(f"{partitions.get(name)} partitions, registry says {t.partitions}")
                if actual_policy.get(name) != t.cleanup_policy:
                    problems.append(f"cleanup.policy {actual_policy.get(name)}, registry says {t.cleanup_policy}")
                reports.append(TopicReport(name, "mismatch" if problems else "ok", "; ".join(problems)))
        return reports
    finally:
        await admin.close()
