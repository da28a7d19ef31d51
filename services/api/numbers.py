"""JSON bodies with their numbers read losslessly, for ``schemas.common.exact_number`` to check.

Starlette reads a JSON body with ``json.loads``, which turns every number with a fraction or an
exponent into a double: ``1e-999999999`` became ``0`` and ``0.1234567890123456789`` lost digits
without a word. Here a number with a fraction or an exponent is read as a ``Decimal`` from its
text, and an integer of more than 18 digits too (``int()`` of a long text is refused past 4300
digits as "an error parsing the body"), so the contracts refuse what is out of bounds with the
reason, and the API reads a number exactly as the dashboard reads a typed one. Building a
``Decimal`` costs one pass over the text, which the 64 KiB body limit bounds.

The route class is FastAPI's documented way to give routes a request of their own
(https://fastapi.tiangolo.com/how-to/custom-request-and-route/).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

_LONGEST_PLAIN_INT = 18


def _integer(text: str) -> int | Decimal:
    return int(text) if len(text.lstrip("-")) <= _LONGEST_PLAIN_INT else Decimal(text)


def loads(body: bytes | str) -> Any:
    """JSON with exact numbers: fractions and exponents as ``Decimal``, long integers too.

    A text holding the NUL character (``\\u0000``) is refused as invalid JSON: PostgreSQL keeps
    no NUL in a text, so a command carrying one would be accepted into the log and then stop the
    read model on the way in (SQLite keeps it; the refusal is the same on both)."""
    document = json.loads(body, parse_float=Decimal, parse_int=_integer)
    if _holds_nul(document):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        raise json.JSONDecodeError("a text may not hold the NUL character (U+0000)", text, 0)
    return document


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


class ExactJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class ExactJsonRoute(APIRoute):
    """A route whose JSON body is read with :func:`loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(ExactJsonRequest(request.scope, request.receive))

        return exact
