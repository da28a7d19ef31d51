"""Tooling that the CLI and the tests call: the local Kafka launcher, containers, migrations."""
