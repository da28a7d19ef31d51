"""Rate limits: requests per organisation (or the admin), and failed authentications per client address.

Counted with the ``limits`` library's moving window in the memory of each API process: the limits
hold per process (with two API processes, a client may make twice as many requests). The read
model's database is the only store the processes share, and counting there would turn every read
into a write transaction (on SQLite, one more writer queued behind the projector); these limits
guard against a runaway or abusive client, not a quota to bill, so per process is enough
(docs/security.md#rate-limits).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from services.application.errors import Refusal
from services.settings import Settings


def address_of(peer: tuple[str, int] | None) -> str:
    """The client address to count failures under: the connection's peer (``request.client``), which
    under uvicorn is the address a proxy on this host forwarded in ``X-Forwarded-For`` (uvicorn trusts
    it from ``FORWARDED_ALLOW_IPS``, 127.0.0.1 by default)."""
    return peer[0] if peer is not None else "unknown"


def _retry_after(reset_at: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(reset_at - time.time())))}


class Throttle:
    """The rate limits of one API process."""

    def __init__(self, settings: Settings) -> None:
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_caller: list[RateLimitItem] = parse_many(settings.rate_limit_per_key)
        self.failures: list[RateLimitItem] = parse_many(settings.rate_limit_failed_auth)

    def spend(self, caller_id: str) -> None:
        """Count one request of an authenticated caller; 429 when it is over its limit."""
        for item in self.per_caller:
            if not self.limiter.hit(item, "caller", caller_id):
                reset_at = self.limiter.get_window_stats(item, "caller", caller_id).reset_time
                raise Refusal(
                    429,
                    f"more than {item.amount} requests in {_window(item)} with this key: slow down",
                    headers=_retry_after(reset_at),
                )

    def admit(self, address: str) -> None:
        """429 when ``address`` has failed to authenticate too often lately: it may not try again
        yet, not even with a good credential (else a guess would still be told apart)."""
        for item in self.failures:
            if not self.limiter.test(item, "failed", address):
                reset_at = self.limiter.get_window_stats(item, "failed", address).reset_time
                raise Refusal(
                    429,
                    f"more than {item.amount} failed authentications in {_window(item)} from this address",
                    headers=_retry_after(reset_at),
                )

    @contextlib.contextmanager
    def guard(self, address: str, credential_sent: bool) -> Iterator[None]:
        """Around checking a credential of ``address``: 429 first when the address failed too often
        lately; a 401 inside counts as a failure when a credential was sent (none sent is no guess)."""
        if credential_sent:
            self.admit(address)
        try:
            yield
        except Refusal as refusal:
            if credential_sent and refusal.status == 401:
                self.failed(address)
            raise

    def failed(self, address: str) -> None:
        """Count one failed authentication of ``address``."""
        for item in self.failures:
            self.limiter.hit(item, "failed", address)


def _window(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return f"{item.multiples} {unit}s" if item.multiples != 1 else f"a {unit}"
