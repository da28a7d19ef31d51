"""The board's what-if form: what it reads from the query string, and how it refuses."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from starlette.requests import Request

from services.dashboard.routes import _what_if_request


def request(query: dict[str, str]) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": urlencode(query).encode()})


def test_a_what_if_form_is_read_as_the_api_reads_it() -> None:
    # Given a form with a coverage as a fraction, an item left out and a concession
    asked = _what_if_request(
        request(
            {
                "coverage": "2/3",
                "drop": "data-location",
                "concessions": '[{"member_id":"m-a","item_key":"retention",'
                '"position":{"priority":"should","value":30}}]',
            }
        )
    )
    # Then it is the what-if the API would take
    assert str(asked.coverage) == "2/3" and asked.drop == ("data-location",)
    assert asked.concessions[0].member_id == "m-a" and asked.concessions[0].position is not None


@pytest.mark.parametrize("concessions", ["[" * 19_990, "{", '"not a list"'])
def test_malformed_concessions_are_refused_in_words(concessions: str) -> None:
    # When the concessions are nested deeper than a parser recurses, or are no JSON list at all
    with pytest.raises(ValueError, match="concessions"):
        _what_if_request(request({"concessions": concessions}))
    # Then the refusal is a ValueError naming the field (the panel shows it), never a 500
