"""A message that could not be processed, kept with its original coordinates and the reason."""

from __future__ import annotations

from datetime import datetime

from schemas.common import Frozen


class DeadLetter(Frozen):
    topic: str
    partition: int
    offset: int
    key: str | None
    """The original key, as UTF-8 text when it is, else base64."""
    value_base64: str | None
    reason: str
    """What was wrong, in words a person can act on."""
    error: str
    """The exception type."""
    at: datetime
    consumer: str
