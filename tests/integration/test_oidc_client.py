"""The hub's OpenID Connect client (services/dashboard/oidc.py) against a real provider on
loopback (tests/openid_provider.py): discovery, the code exchange, and the checks of the ID token."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from services.dashboard.oidc import Flow, InvalidIdToken, Provider, ProviderUnreachable, SignInRefused, verify_id_token
from tests.conftest import free_base_port
from tests.openid_provider import OpenIDProvider, openid_provider, query

CALLBACK = "http://127.0.0.1:8000/signin/oidc/callback"
SECRET = "the-secret-the-provider-registered"


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenIDProvider]:
    with openid_provider() as running:
        running.person("anna-7f3e", "anna@uni-leiden.example", "Anna de Vries")
        yield running


def client(provider: OpenIDProvider) -> Provider:
    return Provider(provider.issuer, "koopkracht", SecretStr(SECRET), "openid email profile")


async def test_the_hub_learns_who_signed_in(provider: OpenIDProvider) -> None:
    # Given a sign-in the hub started, and the person signing in at the provider
    hub, flow = client(provider), Flow.new(time.time())
    back = provider.authorize(await hub.authorization_url(flow, CALLBACK), "anna-7f3e")
    # Then the provider sends the browser back with the hub's state (and PKCE was asked for)
    assert query(back)["state"] == flow.state
    # When the hub exchanges the code
    identity = await hub.redeem(query(back)["code"], flow, CALLBACK)
    # Then it knows the issuer's subject and the verified e-mail address
    assert (identity.issuer, identity.subject) == (provider.issuer, "anna-7f3e")
    assert (identity.email, identity.email_verified, identity.name) == (
        "anna@uni-leiden.example",
        True,
        "Anna de Vries",
    )


async def test_the_authorization_request_asks_for_pkce_with_s256(provider: OpenIDProvider) -> None:
    flow = Flow.new(time.time())
    asked = query(await client(provider).authorization_url(flow, CALLBACK))
    assert asked["code_challenge_method"] == "S256"
    assert asked["nonce"] == flow.nonce
    assert asked["redirect_uri"] == CALLBACK
    assert "code_verifier" not in asked  # the verifier goes only to the token endpoint


async def test_an_id_token_with_another_nonce_is_refused(provider: OpenIDProvider) -> None:
    # Given an authorization request whose nonce is not the one of this browser's sign-in
    hub, ours, other = client(provider), Flow.new(time.time()), Flow.new(time.time())
    back = provider.authorize(await hub.authorization_url(other, CALLBACK), "anna-7f3e")
    # When the hub redeems the code for its own sign-in
    with pytest.raises(SignInRefused) as refused:
        await hub.redeem(query(back)["code"], ours, CALLBACK)
    # Then the ID token is refused for its nonce
    assert refused.value.reason == "token"
    assert "nonce" in refused.value.detail


async def test_an_id_token_issued_to_another_client_is_refused(provider: OpenIDProvider) -> None:
    # Given an ID token the provider issued, properly signed, to another service (another audience)
    hub, flow = client(provider), Flow.new(time.time())
    theirs = (await hub.authorization_url(flow, CALLBACK)).replace("client_id=koopkracht", "client_id=other-service")
    back = provider.authorize(theirs, "anna-7f3e")
    tokens = provider.token(query(back)["code"], CALLBACK, "other-service", "their-secret")
    keys = await hub.keys()
    check = {"issuer": provider.issuer, "nonce": flow.nonce, "algorithms": ["RS256"]}
    assert verify_id_token(str(tokens["id_token"]), keys, client_id="other-service", **check)["sub"] == "anna-7f3e"
    # When the hub checks it as its own, then it is refused for its audience
    with pytest.raises(InvalidIdToken, match="aud"):
        verify_id_token(str(tokens["id_token"]), keys, client_id="koopkracht", **check)
    # And so is a token presented with another issuer, or past its expiry
    with pytest.raises(InvalidIdToken, match="iss"):
        verify_id_token(str(tokens["id_token"]), keys, client_id="other-service", **{**check, "issuer": "https://x"})
    with pytest.raises(InvalidIdToken, match="exp"):
        verify_id_token(str(tokens["id_token"]), keys, client_id="other-service", now=int(time.time()) + 7200, **check)
    # And a provider that announces none of the asymmetric algorithms gets no token checked at all
    with pytest.raises(InvalidIdToken, match="no asymmetric"):
        verify_id_token(str(tokens["id_token"]), keys, client_id="other-service", **{**check, "algorithms": []})


async def test_a_code_issued_to_another_client_is_refused_by_the_provider(provider: OpenIDProvider) -> None:
    # Given a code the provider issued to another service, injected into the hub's sign-in
    hub, flow = client(provider), Flow.new(time.time())
    theirs = (await hub.authorization_url(flow, CALLBACK)).replace("client_id=koopkracht", "client_id=other-service")
    back = provider.authorize(theirs, "anna-7f3e")
    # Then the provider does not exchange it for the hub, and the sign-in stops
    with pytest.raises(SignInRefused) as refused:
        await hub.redeem(query(back)["code"], flow, CALLBACK)
    assert refused.value.reason == "provider"


async def test_an_unreachable_provider_is_told_apart() -> None:
    # Given an issuer where nothing listens
    hub = Provider(f"http://127.0.0.1:{free_base_port(1)}", "koopkracht", SecretStr(SECRET), "openid")
    # Then starting a sign-in says the provider is unreachable
    with pytest.raises(ProviderUnreachable):
        await hub.authorization_url(Flow.new(time.time()), CALLBACK)
