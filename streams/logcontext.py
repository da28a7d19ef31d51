"""The command being handled, for the log lines of its handling.

``process_command`` sets one context variable per command once it has read it (the command's id
and negotiation, the message's topic, partition and offset; a line about a message it cannot read
names those three itself); ``merge_handling``, a structlog processor, adds
those fields to every line logged meanwhile (a field the line names itself wins), as structlog's
``bind_contextvars`` would. That sets a context variable per field, and resets each afterwards:
about a twentieth of the worker's time per command, for lines that are rarely written.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

HANDLING: ContextVar[dict[str, Any] | None] = ContextVar("koopkracht_handling", default=None)


def merge_handling(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the fields of the command being handled, if any."""
    handling = HANDLING.get()
    if handling:
        for key, value in handling.items():
            event_dict.setdefault(key, value)
    return event_dict
