"""A real Apache Kafka on loopback, from the jars pinned in ``infra/kafka/pom.xml``."""

from infra.kafka.launcher import ClusterSpec, KafkaCluster, KafkaError, ensure_jars

__all__ = ["ClusterSpec", "KafkaCluster", "KafkaError", "ensure_jars"]
