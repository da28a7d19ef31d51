"""Hostile numbers are refused before they cost anything: one reading of numbers for every door.

``Fraction(Decimal("1e999999999"))`` builds a billion-digit integer; an 11-byte form value once
held the API's event loop for as long as that takes. The unit tests run each refusal in a forked
child and wait a bounded time for its answer, so a regression fails instead of hanging the run
(no assertion is on time: the bound is far above what a refusal takes, and far below what the
old conversion took). The end-to-end test posts the same numbers to the running stack's forms and
JSON API while ``/healthz`` is asked again and again: it must answer each time.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.commands import Actor, StatePosition
from schemas.common import MAX_SIGNIFICANT_DIGITS, exact_number, number_from_text
from schemas.negotiation import ItemResponse, Position
from streams.codec import decode_command
from tests.e2e.conftest import RunningStack, running_stack

REFUSAL_BOUND_S = 10.0
"""How long a refusal may take before the test calls it a hang (it takes microseconds)."""

HOSTILE = {
    "huge exponent": "1e999999999",
    "large exponent": "1e5000000",
    "negative huge exponent": "-1e999999999",
    "upper-case signed exponent": "1E+999999999",
    "100,000 zeros then a 1": "0." + "0" * 100_000 + "1",
    "100,000-digit integer": "9" * 100_000,
    "not a number": "NaN",
    "infinity": "Infinity",
    "tiny exponent": "1e-999999999",
}
EXPONENT_FORMS = ["1e999999999", "1e5000000", "-1e999999999", "1E+999999999", "1e-999999999"]


@dataclass(frozen=True)
class Raised:
    """What a call raised in the child: its classes' names and its message."""

    kinds: frozenset[str]
    message: str


def _bounded(call: Callable[[], Any]) -> Raised | None:
    """What ``call`` raised (None: it returned), in a forked child that is killed after
    REFUSAL_BOUND_S. A thread could not bound it: the old conversion is one C call that holds the
    GIL, so neither a thread's join nor pytest-timeout would get to run until it ended."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test
            sender.send(Raised(frozenset(k.__name__ for k in type(exc).__mro__), str(exc)[:2000]))
        else:
            sender.send(None)

    child = context.Process(target=run, daemon=True)
    child.start()
    try:
        answered = receiver.poll(REFUSAL_BOUND_S)
        assert answered, f"no answer within {REFUSAL_BOUND_S} s: the number is being converted, not refused"
        outcome: Raised | None = receiver.recv()
        return outcome
    finally:
        child.kill()
        child.join(10)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_typed_number_is_refused_before_it_is_converted(text: str) -> None:
    # When the dashboard's reading of a typed number reads it
    refused = _bounded(lambda: number_from_text(text))
    # Then it is refused with the reason, not converted
    assert refused is not None and "ValueError" in refused.kinds, refused
    assert re.search(r"finite|10\^15|10\^-324|characters|significant", refused.message), refused


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_decimal_is_refused_before_it_is_converted(text: str) -> None:
    # Given the number as a Decimal (what a lossless parser hands on; building it is cheap)
    number = Decimal(text)
    # When the one reading of numbers and the contracts read it
    for read in (lambda: exact_number(number), lambda: Position(priority="must", value=number)):
        # Then it is refused
        refused = _bounded(read)
        assert refused is not None and "ValueError" in refused.kinds, refused


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_command_on_the_wire_with_the_number_is_dead_letter_material_or_bounded(text: str) -> None:
    """The worker reads JSON numbers as doubles (pydantic's JSON parser): the exponent forms are
    infinite, the long integer out of range; a number below the smallest double reads as 0. Each
    is answered at once."""
    actor = Actor(organisation_id="member-1", role="member", name="Member")
    command = StatePosition(
        command_id="c-1", negotiation_id="n-1", actor=actor, item_key="retention", position=Position(priority="must")
    )
    document = json.loads(command.model_dump_json())
    document["position"]["value"] = "VALUE"
    raw = json.dumps(document).replace('"VALUE"', text).encode()
    outcome = _bounded(lambda: decode_command(raw))
    if text in ("1e-999999999", HOSTILE["100,000 zeros then a 1"]):
        assert outcome is None  # a double cannot tell it from 0: read as 0, at no cost
    else:
        assert outcome is not None and "DecodeError" in outcome.kinds, outcome


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e15", Fraction(10**15)),
        ("-1000000000000000.000", Fraction(-(10**15))),
        ("0,1", Fraction(1, 10)),
        ("99.999", Fraction(99999, 1000)),
        ("1.2345678901234567", Fraction(12345678901234567, 10**16)),
        ("5e-324", Fraction(5, 10**324)),
        ("0", Fraction(0)),
        ("-0.0e-999999999", Fraction(0)),
    ],
)
def test_numbers_within_the_bounds_are_read_exactly(text: str, expected: Fraction) -> None:
    assert number_from_text(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1000000000000000.1", "10^15"),
        ("1e16", "10^15"),
        ("1.23456789012345678", f"{MAX_SIGNIFICANT_DIGITS} significant"),
        ("1e-325", "10^-324"),
        ("twelve", "not a number"),
        ("1" * 401, "characters"),
    ],
)
def test_numbers_beyond_the_bounds_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        number_from_text(text)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.floats(min_value=-1e15, max_value=1e15, allow_nan=False))
def test_every_double_within_the_magnitude_is_still_read(value: float) -> None:
    """The bounds admit every JSON number the hub has ever written (a double's shortest form),
    so events already in the log stay readable."""
    assert exact_number(value) == Fraction(repr(value))
    assert ItemResponse(key="sla", verdict="counter", value=value).value == Fraction(repr(value))


def test_integers_of_any_size_are_compared_not_converted() -> None:
    refused = _bounded(lambda: exact_number(10**4000))
    assert refused is not None and "ValueError" in refused.kinds and "10^15" in refused.message
    with pytest.raises(ValidationError):
        Position(priority="must", value=-(10**15) - 1)


# -- end to end: the running stack's forms and JSON API -----------------------------------------


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    # One database is enough: what is tested happens before anything is stored.
    with running_stack(kafka_bootstrap, Path(tmp_path_factory.mktemp("numbers")), "sqlite") as running:
        yield running


def _signed_in(stack: RunningStack, key: str, nid: str) -> tuple[httpx.Client, str]:
    """A browser-like client signed in with ``key``, and its session's CSRF token."""
    client = httpx.Client(base_url=stack.base_url, follow_redirects=False, timeout=30)
    stack.clients.append(client)
    assert client.post("/signin", data={"api_key": stack.person_token(key)}).status_code == 303
    page = client.get(f"/dashboard/n/{nid}").text
    return client, re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


HEALTH_TIMEOUT_S = 5.0


@pytest.mark.timeout(240)
def test_absurd_numbers_to_the_forms_and_the_api_are_refused_and_the_hub_keeps_answering(stack: RunningStack) -> None:
    # Given a negotiation on an at_most item with a member, a published demand, and the member and
    # the vendor signed in to the dashboard
    _, coordinator_key = stack.organisation("Coop", "coordinator")
    vendor_id, vendor_key = stack.organisation("Vendor", "vendor")
    member_id, member_key = stack.organisation("Member", "member")
    coordinator, member, vendor = (stack.client(k) for k in (coordinator_key, member_key, vendor_key))
    key = "diagnostic-data-retention"
    nid = coordinator.post(
        "/v1/negotiations", json={"title": "Numbers", "vendor_id": vendor_id, "items": [{"key": key}]}
    )
    nid = nid.json()["id"]
    assert coordinator.post(f"/v1/negotiations/{nid}/members", json={"organisation_id": member_id}).status_code == 201
    assert member.put(f"/v1/negotiations/{nid}/positions/{key}", json={"priority": "must", "value": 30}).is_success
    assert coordinator.post(f"/v1/negotiations/{nid}/demand/publish").is_success
    member_page, member_csrf = _signed_in(stack, member_key, nid)
    vendor_page, vendor_csrf = _signed_in(stack, vendor_key, nid)

    # When absurd numbers are posted to the position form, the counter form (for this negotiation
    # and for one that does not exist) and the JSON API, from threads, while /healthz is asked
    refusals: list[tuple[str, int, str]] = []
    failures: list[BaseException] = []

    def post_all() -> None:
        try:
            for n, text in enumerate(EXPONENT_FORMS):
                for target in (nid, "no-such-negotiation"):
                    position = {"csrf": member_csrf, "once": f"p-{n}-{target}", "priority": "must", "value": text}
                    sent = member_page.post(f"/dashboard/n/{target}/positions/{key}", data=position)
                    refusals.append(("position form", sent.status_code, unquote(sent.headers.get("location", ""))))
                    counter = {
                        "csrf": vendor_csrf,
                        "once": f"c-{n}-{target}",
                        "demand_version": "1",
                        f"verdict-{key}": "counter",
                        f"value-{key}": text,
                    }
                    sent = vendor_page.post(f"/dashboard/n/{target}/responses", data=counter)
                    refusals.append(("counter form", sent.status_code, unquote(sent.headers.get("location", ""))))
                body = f'{{"priority": "must", "value": {text}}}'
                sent = member.put(
                    f"/v1/negotiations/{nid}/positions/{key}",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                refusals.append(("API position", sent.status_code, sent.text))
                body = f'{{"demand_version": 1, "items": [{{"key": "{key}", "verdict": "counter", "value": {text}}}]}}'
                sent = vendor.post(
                    f"/v1/negotiations/{nid}/responses", content=body, headers={"Content-Type": "application/json"}
                )
                refusals.append(("API counter", sent.status_code, sent.text))
        except BaseException as exc:  # handed to the test
            failures.append(exc)

    posters = [threading.Thread(target=post_all, daemon=True) for _ in range(2)]
    for poster in posters:
        poster.start()
    health: list[int] = []
    with httpx.Client(base_url=stack.base_url, timeout=HEALTH_TIMEOUT_S) as probe:
        while any(poster.is_alive() for poster in posters) or len(health) < 3:
            # A read timeout here fails the test: the event loop did not answer in time
            health.append(probe.get("/healthz").status_code)
    for poster in posters:
        poster.join(60)

    # Then /healthz answered every time
    assert health and set(health) == {200}, health
    # And every post was refused: the forms go back to the board with the reason (or to sign-in
    # never: the sessions are valid), the API answers 422 problem+json
    assert not failures, failures
    assert len(refusals) == 2 * len(EXPONENT_FORMS) * 6
    for door, status, answer in refusals:
        if door.endswith("form"):
            assert status == 303 and "error=" in answer, (door, status, answer)
            assert re.search(r"value.*(10\^15|10\^-324)", answer), (door, answer)
        else:
            assert status == 422, (door, status, answer)
            assert re.search(r"finite|10\^15|10\^-324", answer), (door, answer)
    # And nothing changed: the member's position is still 30, and the vendor has not responded
    positions = member.get(f"/v1/negotiations/{nid}/positions").json()
    assert [(p["item_key"], p["value"]) for p in positions] == [(key, 30)]
    assert coordinator.get(f"/v1/negotiations/{nid}").json()["sequence"] == 4
