"""Snapshots of the worker's table, and the checkpoint that says where replay starts.

A partition's recovery reads its snapshots (one record per negotiation, on the compacted
``snapshots`` topic) and then only the events from the partition's *checkpoint* on. The worker
writes both in the same Kafka transaction as the batch they describe, so what recovery reads is
always a consistent prefix.

The checkpoint's promise: every event of the partition *before* ``events_from`` is held by the
latest snapshot of its negotiation. The worker keeps that promise by tracking, per negotiation,
the first events offset its latest snapshot lacks (a lower bound is enough), and by writing as
``events_from`` the smallest of those. Events at or below a snapshot's sequence are skipped by
``evolve``, so replaying a little more than needed is harmless.

A snapshot is the pickled state, compressed. Pickle, not JSON: the state holds exact fractions
and the indexes ``evolve`` maintains (sorted weighted values, sets, counters), which a JSON form
would have to rebuild on every load; pickle writes and reads them as they are, in C. Because a
pickled state is only meaningful to the code that made it, every snapshot and checkpoint carries
a fingerprint of the pure core's and the contracts' source (and of the Python and pydantic
versions): after a change to any of them, snapshots
are ignored and the partition is replayed from the start of the events topic (and snapshotted
anew). Only the worker may write this topic (as only the worker may write the events topic): a
record that does not start with the expected header, or whose fingerprint differs, is ignored.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import orjson
import pydantic

from streams.core.state import NegotiationState

CHECKPOINT_KEY = b"~checkpoint"
"""The key of each partition's checkpoint record (negotiation ids never start with ``~``)."""

_MAGIC = b"KKS1"


def _fingerprint() -> bytes:
    digest = hashlib.sha256()
    # Pickles hold pydantic models and Python's own types: their versions count as much as ours.
    digest.update(f"{sys.version_info[:2]} pydantic {pydantic.VERSION}".encode())
    root = Path(__file__).resolve().parents[1]
    for folder in ("schemas", "streams/core"):
        for path in sorted((root / folder).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.digest()[:16]


FINGERPRINT = _fingerprint()
"""Which code made a snapshot: the source of the contracts and the pure core."""


def encode_snapshot(state: NegotiationState) -> bytes:
    return _MAGIC + FINGERPRINT + zlib.compress(pickle.dumps(state, protocol=5), 1)


def snapshot_is_current(value: bytes | None) -> bool:
    return value is not None and value[:4] == _MAGIC and value[4:20] == FINGERPRINT


def decode_snapshot(value: bytes) -> NegotiationState:
    if not snapshot_is_current(value):
        raise ValueError("not a snapshot of this code's state")
    state = pickle.loads(zlib.decompress(value[20:]))  # written only by the worker (see above)
    if not isinstance(state, NegotiationState):
        raise ValueError("a snapshot holds no negotiation state")
    return state


@dataclass(frozen=True)
class Checkpoint:
    events_from: int
    """Replay the partition's events from this offset on; everything before is in the snapshots."""
    commands_next: int
    """The commands offset after the batch this checkpoint was written with."""

    def encode(self) -> bytes:
        return orjson.dumps(
            {"events_from": self.events_from, "commands_next": self.commands_next, "code": FINGERPRINT.hex()}
        )

    @staticmethod
    def decode(value: bytes | None) -> Checkpoint | None:
        """The checkpoint, or None when it was written by other code (its snapshots are ignored)."""
        if value is None:
            return None
        try:
            data = orjson.loads(value)
            if data.get("code") != FINGERPRINT.hex():
                return None
            return Checkpoint(events_from=int(data["events_from"]), commands_next=int(data["commands_next"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return None
