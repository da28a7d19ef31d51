"""How often a negotiation's state document is published: at most once per interval each.

The first change after a quiet interval is published with its batch; changes within the interval
wait for it to pass, and are then published together (cumulative documents, so nothing is lost).
The clock is passed in, so the rule is tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


class StateThrottle:
    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic, limit: int = 1000) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.limit = limit
        """Documents handed out at most per call (unless everything is asked for): after a
        recovery, the rest follow with the next batches and the loop stays responsive."""
        self.pending: dict[str, int] = {}
        """Negotiations changed since their document was last drawn, with their partitions."""
        self._drawn_at: dict[str, float] = {}

    def changed(self, negotiation_ids: Iterable[str], partition: int) -> None:
        self.pending.update(dict.fromkeys(negotiation_ids, partition))

    def due(self, everything: bool = False, partitions: set[int] | None = None) -> list[tuple[str, int]]:
        """The negotiations whose document is due now (or all pending ones, of ``partitions`` if
        given); they are no longer pending and count as drawn now."""
        if not self.pending:
            return []
        now = self.clock()
        interval = self.interval_s
        if len(self._drawn_at) > 4 * self.limit:  # forget what is past its interval anyway
            self._drawn_at = {k: t for k, t in self._drawn_at.items() if now - t < interval}
        due: list[tuple[str, int]] = []
        for negotiation_id, partition in list(self.pending.items()):
            if partitions is not None and partition not in partitions:
                continue
            if len(due) >= self.limit and not everything:
                break
            if everything or now - self._drawn_at.get(negotiation_id, now - interval) >= interval:
                del self.pending[negotiation_id]
                self._drawn_at[negotiation_id] = now
                due.append((negotiation_id, partition))
        return due

    def take(self, negotiation_id: str) -> bool:
        """Draw this negotiation's document now if one is pending (its snapshot is being taken)."""
        if self.pending.pop(negotiation_id, None) is None:
            return False
        self._drawn_at[negotiation_id] = self.clock()
        return True

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions handed over: their pending documents are now another worker's."""
        gone = set(partitions)
        self.pending = {k: p for k, p in self.pending.items() if p not in gone}
