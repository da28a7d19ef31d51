"""The built-in catalogue is rich enough to open a real negotiation from."""

from __future__ import annotations

from typing import get_args

from schemas.negotiation import Category, Kind
from services.catalogue import load_catalogue


def test_the_catalogue_has_at_least_30_sourced_items_in_every_category_and_kind() -> None:
    catalogue = load_catalogue()
    assert len(catalogue) >= 30
    assert {item.category for item in catalogue.values()} == set(get_args(Category))
    assert {item.kind for item in catalogue.values()} == set(get_args(Kind))
    for item in catalogue.values():
        assert item.source, f"{item.key} has no source"
        assert item.description, f"{item.key} has no description"
        if item.kind in ("at_most", "at_least"):
            assert item.unit, f"{item.key} needs a unit"


def test_the_catalogue_covers_the_core_privacy_and_exit_terms() -> None:
    catalogue = load_catalogue()
    text = " ".join(f"{i.key} {i.title} {i.source}".lower() for i in catalogue.values())
    for phrase in ("art. 28", "dpia", "public code", "exit", "sub-processor", "telemetry", "retention"):
        assert phrase in text, phrase
