"""Negotiations in every phase, on the built-in catalogue's items, for the tests of what a board
offers (``streams.core.actions``) and says (the Dutch board, the timeline in words)."""

from __future__ import annotations

from collections.abc import Callable

from services.catalogue import load_catalogue
from tests.unit.builders import Negotiation, accept, counter

KEYS = ("no-ai-training", "diagnostic-data-retention", "data-location")
MEMBERS = {"m1": "Universiteit Utrecht", "m2": "Hogeschool Rotterdam"}


def collecting() -> Negotiation:
    catalogue = load_catalogue()
    n = Negotiation(*(catalogue[key] for key in KEYS))
    n.invite("m1", 3, name=MEMBERS["m1"]).invite("m2", 2, name=MEMBERS["m2"])
    n.position("m1", "no-ai-training", "must").position("m1", "data-location", "must", accepted=("NL", "EU"))
    n.position("m2", "diagnostic-data-retention", "must", 30, rationale="Our DPIA says 30 days")
    n.position("m2", "data-location", "could", accepted=("EU", "EEA"))
    return n


def published() -> Negotiation:
    return collecting().publish()


def answered() -> Negotiation:
    n = published()
    n.respond(accept("no-ai-training"), counter("diagnostic-data-retention", 60), counter("data-location", option="EU"))
    return n.ask("diagnostic-data-retention", "Does 60 days cover backups?")


def endorsing() -> Negotiation:
    return answered().propose()


def agreed() -> Negotiation:
    return endorsing().endorse("m1", "accept").endorse("m2", "accept")


def planned() -> Negotiation:
    return agreed().plan()


def implementing() -> Negotiation:
    n = planned().accept_plan()
    n.deliver("no-ai-training").check("m1", "no-ai-training", "met", "Checked in our tenant")
    return n


def fulfilled() -> Negotiation:
    n = implementing().verdict("no-ai-training", "met")
    for key in KEYS[1:]:
        n.deliver(key).verdict(key, "met")
    return n


def reopened() -> Negotiation:
    return implementing().reopen("diagnostic-data-retention", reason="Backups are kept longer")


def abandoned() -> Negotiation:
    return collecting().abandon("The vendor withdrew")


SCENARIOS: dict[str, Callable[[], Negotiation]] = {
    "collecting": collecting,
    "published": published,
    "answered": answered,
    "endorsing": endorsing,
    "agreed": agreed,
    "planned": planned,
    "implementing": implementing,
    "fulfilled": fulfilled,
    "reopened": reopened,
    "abandoned": abandoned,
}
