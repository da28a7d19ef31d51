"""What a door hands the application service for a command, and what it gets back.

An :class:`Action` builds the command once its id is known (derived from an ``Idempotency-Key``
or new) and renders its answer from the events it caused; :class:`Once` makes a retry of the
same request the same command; :class:`Answer` is the outcome, the same for every door.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from schemas.commands import Command
from schemas.events import Event
from streams.core.state import NegotiationState

Render = Callable[[Sequence[Event], NegotiationState], BaseModel | None]


@dataclass(frozen=True)
class Action:
    """A command to send: ``build(command_id)`` makes it, ``render`` its answer document (None:
    no document), ``status`` the answer's status when accepted."""

    build: Callable[[str], Command]
    render: Render
    status: int = 200


@dataclass(frozen=True)
class Once:
    """An idempotency key, and the fingerprint of the request it was first used for."""

    key: str
    fingerprint: str

    @classmethod
    def of(cls, key: str, method: str, path: str, body: bytes) -> Once:
        return cls(key, hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest())


@dataclass(frozen=True)
class Answer:
    """A command's outcome: ``status`` and ``body`` (a JSON document; a refusal's problem document;
    empty for none); ``replayed`` when it is the stored first answer to an ``Idempotency-Key``."""

    status: int
    body: str
    replayed: bool = False

    @property
    def refused(self) -> bool:
        return self.status >= 400

    @property
    def detail(self) -> str:
        """Why it was refused."""
        document = json.loads(self.body) if self.body else {}
        return str(document.get("detail", "refused"))
