"""Cursor pagination of the hub's lists: keyset pages, so a page costs the same however deep.

A cursor is the sort key of the last item of a page, opaque to the client (base64url of JSON);
the next page is everything after it in the list's order. The API sends the next page's address
in a ``Link: <…>; rel="next"`` header (RFC 8288), so a list answer stays a list.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from services.application.errors import Refusal

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    """The cursor of the page after this one; None on the last page."""


def encode_cursor(*key: str | int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type) -> tuple[Any, ...]:
    """The sort key in ``cursor``, of the given types; 422 for anything that is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = orjson.loads(raw)
    except (binascii.Error, ValueError):
        key = None
    if (
        not isinstance(key, list)
        or len(key) != len(types)
        or not all(type(value) is kind for value, kind in zip(key, types, strict=True))
    ):
        raise bad_cursor()
    return tuple(key)


def bad_cursor() -> Refusal:
    return Refusal(422, "cursor: not a cursor of this list; use the one a Link header gave", field="cursor")


def page_of(rows: list[T], limit: int, key: Any) -> tuple[list[T], str | None]:
    """The first ``limit`` of ``rows`` (read with ``limit + 1``), and the cursor after them if there are more."""
    if len(rows) <= limit:
        return rows, None
    kept = rows[:limit]
    return kept, encode_cursor(*key(kept[-1]))
