"""A sign-in through the OpenID provider keeps nothing on the server: state, nonce and PKCE code
verifier are derived from the flow cookie's secret and start time (services/dashboard/oidc.py)."""

from __future__ import annotations

import re

import pytest

from services.dashboard.oidc import FLOW_TTL_S, Flow, identity_of


def test_the_flow_cookie_gives_back_the_same_state_nonce_and_verifier() -> None:
    # Given a sign-in started now
    flow = Flow.new(1_000_000.0)
    # When the provider sends the browser back, with the cookie, five minutes later
    again = Flow.from_cookie(flow.cookie, 1_000_300.0)
    # Then the same state, nonce and verifier come out of it, and they are three different values
    assert again is not None
    assert (again.state, again.nonce, again.code_verifier) == (flow.state, flow.nonce, flow.code_verifier)
    assert len({flow.state, flow.nonce, flow.code_verifier}) == 3
    assert again.matches(flow.state)
    # And the verifier is what RFC 7636 asks: 43 to 128 unreserved characters
    assert re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", flow.code_verifier)


def test_another_sign_in_has_another_state() -> None:
    assert Flow.new(1_000_000.0).state != Flow.new(1_000_000.0).state


def test_a_flow_cookie_past_ten_minutes_or_malformed_is_no_flow() -> None:
    flow = Flow.new(1_000_000.0)
    assert Flow.from_cookie(flow.cookie, 1_000_000.0 + FLOW_TTL_S + 1) is None
    assert Flow.from_cookie(flow.cookie, 999_000.0) is None  # started in the future
    for value in (None, "", "abc", f"x.{flow.secret}", f"{flow.started}.short", flow.secret):
        assert Flow.from_cookie(value, 1_000_000.0) is None


def test_moving_the_start_time_in_the_cookie_changes_the_state() -> None:
    # Given a sign-in started long ago, whose cookie somebody rewrites to look recent
    flow = Flow.new(1_000_000.0)
    rewritten = Flow.from_cookie(f"{flow.started + 3600}.{flow.secret}", 1_003_700.0)
    # Then it is a flow, but not the one the provider was sent: its state does not match
    assert rewritten is not None
    assert not rewritten.matches(flow.state)


@pytest.mark.parametrize(
    ("claim", "trust_email", "verified"),
    [
        ({"email_verified": True}, False, True),
        ({"email_verified": False}, False, False),
        ({}, False, False),
        # a federation that vouches for its institutions' addresses but sends no claim (SURFconext)
        ({}, True, True),
        # a provider that says the address is not verified is believed, whatever the setting
        ({"email_verified": False}, True, False),
        ({"email_verified": "true"}, True, False),
    ],
)
def test_an_email_address_counts_as_verified_only_as_the_provider_and_the_setting_say(
    claim: dict[str, object], trust_email: bool, verified: bool
) -> None:
    claims = {"sub": "s-1", "email": "ada@uni.example", **claim}
    assert identity_of("https://idp.example", claims, trust_email).email_verified is verified
