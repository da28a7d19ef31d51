"""The load of the fault suite: twelve members writing positions over HTTP, each from its own thread.

Every write is valid: a member states a number on an ``at_most`` item of a negotiation it was
invited to. Each write carries a value no other write has (``member * 1,000,000 + n``), so every
acknowledged write can be found again in the events topic and in the read model. A write answered
5xx, or met by a connection error or a timeout, is sent again with the same ``Idempotency-Key``
after a short back-off, until it is answered 2xx or 4xx; a 4xx answer to a valid write is a refusal
the suite counts. Each member writes its writes one after another, so for each of its
(negotiation, item) pairs the last acknowledged write is the position that must remain.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

log = structlog.get_logger("koopkracht.reliability.load")

ITEMS = ("diagnostic-data-retention", "contract-term")
"""Catalogue items of kind ``at_most``: any whole number is a valid position on them."""

RETRIED_ERRORS = (httpx.TransportError,)
"""Connection refused or reset, timeouts, a response cut short: the request is sent again."""


@dataclass
class Party:
    organisation_id: str
    api_key: str
    name: str


@dataclass
class Cast:
    """Who takes part: a coordinator, a vendor, the members, and the negotiations they share."""

    coordinator: Party
    vendor: Party
    members: list[Party]
    negotiations: list[str]


@dataclass
class Attempt:
    at: float
    outcome: str
    """``"503"``, ``"500"``, or the transport error's type, e.g. ``"ConnectError"``."""


@dataclass
class Write:
    """One position a member states, however many requests it takes."""

    member: int
    member_id: str
    negotiation_id: str
    item_key: str
    value: int
    idempotency_key: str
    started: float
    finished: float | None = None
    status: int | None = None
    """The final answer: 2xx (acknowledged), 4xx (refused); None while open or when given up."""
    body: str = ""
    retries: list[Attempt] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        return self.status is not None and 400 <= self.status < 500

    @property
    def latency(self) -> float:
        assert self.finished is not None
        return self.finished - self.started

    @property
    def rationale(self) -> str:
        return f"m{self.member}-v{self.value}"

    def body_json(self) -> dict[str, Any]:
        return {"priority": "must", "value": self.value, "rationale": self.rationale}


def backoff(attempt: int) -> float:
    """0.1, 0.2, 0.4, 0.8, then 1 s between attempts."""
    return float(min(1.0, 0.1 * 2**attempt))


def request_until_answered(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    json: Any = None,
    idempotency_key: str | None = None,
    give_up_at: Callable[[], float] = lambda: float("inf"),
    on_retry: Callable[[str], None] = lambda _: None,
    in_flight: Callable[[int], None] = lambda _: None,
) -> httpx.Response | None:
    """Send until the answer is 2xx or 4xx; None when ``give_up_at`` passes first."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    for attempt in itertools.count():
        in_flight(+1)
        try:
            response = client.request(method, path, json=json, headers=headers)
        except RETRIED_ERRORS as exc:
            outcome = type(exc).__name__
        else:
            if response.status_code < 500:
                return response
            outcome = str(response.status_code)
        finally:
            in_flight(-1)
        on_retry(outcome)
        if time.monotonic() >= give_up_at():
            return None
        time.sleep(backoff(attempt))  # the client's back-off between retries, not a wait for readiness
    raise AssertionError("unreachable")


def cast(base_url: str, admin_token: str, members: int = 12, negotiations: int = 3) -> Cast:
    """Organisations and negotiations over the API, every member invited to every negotiation."""
    run = uuid.uuid4().hex[:6]

    def organisation(client: httpx.Client, name: str, role: str) -> Party:
        response = client.post("/v1/organisations", json={"name": name, "role": role})
        assert response.status_code == 201, response.text
        body = response.json()
        return Party(body["id"], body["api_key"], name)

    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30) as admin:
        coordinator = organisation(admin, f"Coop {run}", "coordinator")
        vendor = organisation(admin, f"Vendor {run}", "vendor")
        parties = [organisation(admin, f"Member {i} {run}", "member") for i in range(members)]
    ids: list[str] = []
    auth = {"Authorization": f"Bearer {coordinator.api_key}"}
    with httpx.Client(base_url=base_url, headers=auth, timeout=30) as client:
        for n in range(negotiations):
            body = {"title": f"Fault suite {run} {n}", "vendor_id": vendor.organisation_id, "items": [
                {"key": key} for key in ITEMS
            ]}  # fmt: skip
            response = request_until_answered(client, "POST", "/v1/negotiations", json=body, idempotency_key=f"n{n}")
            assert response is not None and response.status_code == 201, response and response.text
            ids.append(response.json()["id"])

    def invite(nid: str, i: int, party: Party) -> None:
        with httpx.Client(base_url=base_url, headers=auth, timeout=30) as client:
            body = {"organisation_id": party.organisation_id, "weight": 1 + i % 5}
            response = request_until_answered(
                client, "POST", f"/v1/negotiations/{nid}/members", json=body, idempotency_key=f"{nid}-{i}"
            )
            assert response is not None and response.status_code == 201, response and response.text

    with ThreadPoolExecutor(max_workers=members) as pool:
        for done in [pool.submit(invite, nid, i, party) for nid in ids for i, party in enumerate(parties)]:
            done.result()
    return Cast(coordinator, vendor, parties, ids)


class Load:
    """The members' threads; ``writes`` grows as they write. Start, then ``stop`` to drain."""

    def __init__(self, base_url: str, cast: Cast, pause_s: float = 0.05, request_timeout_s: float = 30.0) -> None:
        self.base_url = base_url
        self.cast = cast
        self.pause_s = pause_s
        self.request_timeout_s = request_timeout_s
        self.writes: list[Write] = []
        self.started_at = 0.0
        self.stopped_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._give_up_at = float("inf")
        self._threads: list[threading.Thread] = []
        self._in_flight = 0
        self._run = uuid.uuid4().hex[:6]

    # -- running -------------------------------------------------------------------------------
    def start(self) -> Load:
        self.started_at = time.monotonic()
        for i, member in enumerate(self.cast.members):
            thread = threading.Thread(target=self._member, args=(i, member), name=f"member-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, drain_s: float = 120.0) -> None:
        """No new writes; the open ones are retried for at most ``drain_s`` more, then given up."""
        self.stopped_at = time.monotonic()
        self._give_up_at = self.stopped_at + drain_s
        self._stop.set()
        for thread in self._threads:
            thread.join(drain_s + self.request_timeout_s + 10)
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.error("member threads still running after the drain", threads=alive)

    def _member(self, index: int, member: Party) -> None:
        headers = {"Authorization": f"Bearer {member.api_key}"}
        timeout = httpx.Timeout(self.request_timeout_s, connect=5.0)
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout) as client:
            for n in itertools.count(1):
                if self._stop.is_set():
                    return
                nid = self.cast.negotiations[n % len(self.cast.negotiations)]
                item = ITEMS[(n // len(self.cast.negotiations)) % len(ITEMS)]
                write = Write(
                    member=index,
                    member_id=member.organisation_id,
                    negotiation_id=nid,
                    item_key=item,
                    value=index * 1_000_000 + n,
                    idempotency_key=f"{self._run}-m{index}-w{n}",
                    started=time.monotonic(),
                )
                with self._lock:
                    self.writes.append(write)
                response = request_until_answered(
                    client,
                    "PUT",
                    f"/v1/negotiations/{nid}/positions/{item}",
                    json=write.body_json(),
                    idempotency_key=write.idempotency_key,
                    give_up_at=lambda: self._give_up_at,
                    on_retry=lambda outcome: write.retries.append(Attempt(time.monotonic(), outcome)),
                    in_flight=self._count_in_flight,
                )
                write.finished = time.monotonic()
                if response is None:
                    log.error("write given up", key=write.idempotency_key, retries=len(write.retries))
                    continue
                write.status, write.body = response.status_code, response.text[:500]
                if write.refused:
                    log.error("valid write refused", key=write.idempotency_key, status=write.status, body=write.body)
                if self.pause_s:
                    self._stop.wait(self.pause_s)  # think time: the load's shape, not a wait for readiness

    def _count_in_flight(self, delta: int) -> None:
        with self._lock:
            self._in_flight += delta

    # -- what happened -------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def snapshot(self) -> list[Write]:
        with self._lock:
            return list(self.writes)

    def acknowledged(self, after: float = 0.0) -> list[Write]:
        """Writes acknowledged after ``after`` (monotonic time)."""
        return [w for w in self.snapshot() if w.acknowledged and w.finished is not None and w.finished > after]

    def answered_on(self, negotiation_id: str, started_after: float) -> list[Write]:
        """Writes on this negotiation, started after ``started_after``, that have a final answer."""
        return [
            w
            for w in self.snapshot()
            if w.negotiation_id == negotiation_id and w.started > started_after and w.status is not None
        ]

    def retried_since(self, since: float) -> int:
        return sum(1 for w in self.snapshot() for a in w.retries if a.at >= since)
