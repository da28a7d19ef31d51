"""The built-in catalogue of requirement items (``schemas/catalogue/catalogue.json``)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from schemas.negotiation import RequirementItem


@cache
def load_catalogue() -> dict[str, RequirementItem]:
    """Every catalogue item by key, in the file's order. Validated on load."""
    raw = json.loads(resources.files("schemas").joinpath("catalogue/catalogue.json").read_text(encoding="utf-8"))
    items = [RequirementItem.model_validate(entry) for entry in raw["items"]]
    catalogue = {item.key: item for item in items}
    if len(catalogue) != len(items):
        raise ValueError("the catalogue has duplicate keys")
    return catalogue
