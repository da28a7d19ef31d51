"""The fault suite runs its ``faults``-marked scenarios only when asked: ``KOOPKRACHT_RUN_FAULTS=1``
(``make faults``). The broker-during-rebalance scenario is not marked, so every ``pytest`` runs it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("KOOPKRACHT_RUN_FAULTS") == "1":
        return
    skip = pytest.mark.skip(reason="a fault scenario: set KOOPKRACHT_RUN_FAULTS=1 (make faults) to run it")
    for item in items:
        if item.get_closest_marker("faults") is not None and HERE in item.path.resolve().parents:
            item.add_marker(skip)
