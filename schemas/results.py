"""Command results: the single writer's answer to one command, for request/reply."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.common import Frozen, Identifier


class CommandAccepted(Frozen):
    """The command took effect as events ``first_sequence`` … ``last_sequence``.

    ``duplicate`` is true when the command id had already been decided: nothing new happened
    and the sequences are those of the first decision.
    """

    type: Literal["accepted"] = "accepted"
    command_id: Identifier
    negotiation_id: Identifier
    first_sequence: int
    last_sequence: int
    duplicate: bool = False


class CommandRejected(Frozen):
    """The command was refused and changed nothing; ``status`` is the HTTP status it maps to.

    500 means the worker failed on the command itself (a defect); the command is dead-lettered.
    """

    type: Literal["rejected"] = "rejected"
    command_id: Identifier
    negotiation_id: Identifier
    status: Literal[400, 403, 404, 409, 422, 500]
    title: str
    detail: str
    field: str | None = None


CommandResult = Annotated[CommandAccepted | CommandRejected, Field(discriminator="type")]
