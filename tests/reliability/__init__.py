"""The fault suite: the hub as deployed, as separate processes on a 3-broker Kafka, under load and faults."""
