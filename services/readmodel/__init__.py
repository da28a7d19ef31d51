"""The read model: SQL tables that the projector builds from the events topic, and the API reads."""
