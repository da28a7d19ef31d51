"""The local Kafka's cluster id never reads as an option to the storage tool."""

from __future__ import annotations

import uuid

import pytest

from infra.kafka import launcher


def test_a_cluster_id_that_would_start_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given random UUIDs whose first draw encodes to an id starting with "-" (first six bits 62)
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(launcher.uuid, "uuid4", lambda: next(draws))

    # When the launcher makes a cluster id
    cluster_id = launcher._cluster_id()

    # Then it is the second draw, as Kafka's own Uuid.randomUuid would do
    assert cluster_id == "AQEBAQEBAQEBAQEBAQEBAQ"


def test_the_first_draw_starts_with_a_dash_so_the_test_above_can_fail() -> None:
    import base64

    assert base64.urlsafe_b64encode(b"\xf8" + bytes(15)).decode().startswith("-")
