"""The contracts of Koopkracht: commands, events, documents and the topic registry.

Frozen pydantic models; no I/O and no logic beyond validation.
"""
