"""Single sign-on to the dashboard with OpenID Connect (SPEC section 10), e.g. through SURFconext.

The authorization code flow with PKCE (S256). The provider is found by discovery
(``<issuer>/.well-known/openid-configuration``, whose ``issuer`` must be the configured one); the
ID token the token endpoint answers is checked here before anybody is signed in: its signature
against the provider's keys (JWKS, read again once when a token names a key not seen before), an
asymmetric algorithm the provider announces, ``iss`` the configured issuer, ``aud`` (and ``azp``)
this hub's client id, ``exp``/``iat`` with two minutes' leeway for clocks, and ``nonce`` the one
this browser's sign-in sent. When the ID token carries no e-mail address, the userinfo endpoint
is asked (for the same ``sub``).

**No state on the server.** Starting a sign-in sets a short-lived cookie (``kk_oidc``: ten
minutes, ``HttpOnly``, ``SameSite=Lax`` because the provider sends the browser back from another
site, ``Secure`` when the hub's public address is https, only for ``/signin/oidc``) holding 256
random bits and the start time. ``state``, ``nonce`` and the PKCE code verifier are HMAC-SHA256
of that secret, so any API process can finish the sign-in, and a callback whose ``state`` is not
the one derived from this browser's cookie (a forged or replayed callback, another browser's, or
one after ten minutes: the start time is part of what is derived) is refused. The cookie is spent
by the callback, whatever its outcome.

The routes (``GET /signin/oidc``, ``GET /signin/oidc/callback``) ask the application service for
the person with that issuer and subject (or an open invitation for the verified e-mail address)
and start a dashboard session as the personal-token sign-in does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from anyio import to_thread
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from pydantic import SecretStr

from services.application.errors import Refusal
from services.dashboard.i18n import translator
from services.dashboard.routes import _application as application_of
from services.dashboard.routes import _language as language_of
from services.dashboard.routes import _secure_cookies as secure_cookies
from services.dashboard.routes import page, start_session

log = structlog.get_logger("koopkracht.dashboard")
sso = APIRouter(include_in_schema=False)

FLOW_COOKIE = "kk_oidc"
FLOW_PATH = "/signin/oidc"
CALLBACK_PATH = "/signin/oidc/callback"
FLOW_TTL_S = 600
"""A sign-in must come back from the provider within ten minutes."""
DISCOVERY_TTL_S = 3600.0
"""The discovery document and the keys are read again after an hour (and keys at once for a new key id)."""
PROVIDER_TIMEOUT_S = 10.0
LEEWAY_S = 120
"""Clocks of the provider and the hub may differ this much for ``exp`` and ``iat``."""
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Asymmetric algorithms only: never ``none``, never an HMAC keyed by the client secret."""
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")


class ProviderUnreachable(Exception):
    """The provider did not answer, or not with what a provider answers (its detail says which)."""


class SignInRefused(Exception):
    """A sign-in that must not go on. ``reason``: ``state`` (not the sign-in this browser started,
    or too late), ``provider`` (the provider answered with an error), ``token`` (the ID token
    failed a check)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Flow:
    """One sign-in under way. The browser keeps ``secret`` and ``started`` in the flow cookie;
    ``state``, ``nonce`` and ``code_verifier`` are derived from them."""

    secret: str
    started: int

    @classmethod
    def new(cls, now: float) -> Flow:
        return cls(secrets.token_urlsafe(32), int(now))

    def _derive(self, purpose: str) -> str:
        return _b64(hmac.new(self.secret.encode(), f"{purpose}:{self.started}".encode(), hashlib.sha256).digest())

    @property
    def state(self) -> str:
        return self._derive("state")

    @property
    def nonce(self) -> str:
        return self._derive("nonce")

    @property
    def code_verifier(self) -> str:
        """43 characters of the unreserved set, as RFC 7636 asks."""
        return self._derive("pkce")

    @property
    def cookie(self) -> str:
        return f"{self.started}.{self.secret}"

    @classmethod
    def from_cookie(cls, value: str | None, now: float) -> Flow | None:
        """The flow of a cookie, if it is one and not older than ``FLOW_TTL_S``."""
        started, _, secret = (value or "").partition(".")
        if not started.isdigit() or len(started) > 12 or not _SECRET.fullmatch(secret):
            return None
        if not 0 <= now - int(started) <= FLOW_TTL_S:
            return None
        return cls(secret, int(started))

    def matches(self, state: str) -> bool:
        return hmac.compare_digest(self.state.encode(), state.encode())


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


def identity_of(issuer: str, claims: dict[str, Any], trust_email: bool) -> Identity:
    """The identity of verified claims. The e-mail address counts as verified when the provider
    says so (``email_verified: true``), or, with ``trust_email``, when it says nothing about it;
    never when it says ``false``."""
    email = claims.get("email")
    name = claims.get("name")
    verified = claims.get("email_verified")
    return Identity(
        issuer=issuer,
        subject=claims["sub"],
        email=email if isinstance(email, str) and email else None,
        email_verified=verified is True or (trust_email and verified is None),
        name=name if isinstance(name, str) and name else None,
    )


class InvalidIdToken(Exception):
    """An ID token that failed a check (the message says which)."""


def verify_id_token(
    id_token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    algorithms: list[str],
    access_token: str | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """The claims of ``id_token`` once its signature (by one of ``keys``, with one of
    ``algorithms``), issuer, audience, authorized party, expiry, issue time, nonce and (with an
    ``access_token``) ``at_hash`` have passed; :class:`InvalidIdToken` otherwise.
    :class:`joserfc.errors.InvalidKeyIdError` when it names a key ``keys`` does not have."""
    if not algorithms:
        # joserfc reads an empty list as "none given" and falls back to its defaults, HS256 among them.
        raise InvalidIdToken("the provider announces no asymmetric signing algorithm the hub accepts")
    try:
        token = jwt.decode(id_token, keys, algorithms=algorithms)
    except InvalidKeyIdError:
        raise
    except (JoseError, ValueError) as exc:
        raise InvalidIdToken(f"the ID token's signature does not verify ({type(exc).__name__})") from None
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "values": [client_id]},
        "sub": {"essential": True},
        "nonce": {"essential": True, "value": nonce},
    }
    params: dict[str, Any] = {"nonce": nonce, "client_id": client_id}
    if access_token is not None:
        params["access_token"] = access_token
    claims = CodeIDToken(token.claims, token.header, options, params)
    try:
        claims.validate(now=now, leeway=LEEWAY_S)
    except JoseError as exc:
        claim = getattr(exc, "claim", None) or exc.error
        raise InvalidIdToken(f"the ID token's {claim} is not valid ({exc.description or exc.error})") from None
    return dict(claims)


@dataclass
class Provider:
    """The OpenID provider the hub's settings name, and what was read of it."""

    issuer: str
    client_id: str
    client_secret: SecretStr | None
    scopes: str
    transport: httpx.AsyncBaseTransport | None = None
    trust_email: bool = False
    """``KOOPKRACHT_OIDC_TRUST_EMAIL``: an e-mail address without ``email_verified`` counts as verified."""
    _metadata: dict[str, Any] | None = field(default=None, repr=False)
    _keys: KeySet | None = field(default=None, repr=False)
    _read_at: float = field(default=0.0, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=PROVIDER_TIMEOUT_S, transport=self.transport, follow_redirects=False)

    async def _get_json(self, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self._client() as client:
                response = await client.get(url, **kwargs)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnreachable(f"{url}: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            raise ProviderUnreachable(f"{url}: not a JSON object")
        return body

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, read at most once an hour."""
        async with self._lock:
            if self._metadata is None or time.monotonic() - self._read_at > DISCOVERY_TTL_S:
                document = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
                if document.get("issuer") != self.issuer:  # OpenID Connect Discovery 1.0, section 4.3
                    raise ProviderUnreachable(
                        f"the discovery document names the issuer {document.get('issuer')!r}, not {self.issuer!r}"
                    )
                for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(document.get(name), str):
                        raise ProviderUnreachable(f"the discovery document has no {name}")
                self._metadata, self._keys, self._read_at = document, None, time.monotonic()
            return self._metadata

    async def keys(self, again: bool = False) -> KeySet:
        """The provider's signing keys (JWKS); ``again`` reads them anew."""
        metadata = await self.metadata()
        async with self._lock:
            if self._keys is None or again:
                document = await self._get_json(metadata["jwks_uri"])
                try:
                    self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
                except (JoseError, ValueError, KeyError, TypeError):
                    raise ProviderUnreachable("the provider's keys (jwks_uri) are not a JSON Web Key Set") from None
            return self._keys

    async def authorization_url(self, flow: Flow, redirect_uri: str) -> str:
        """Where the browser goes to sign in at the provider."""
        metadata = await self.metadata()
        return str(
            prepare_grant_uri(
                metadata["authorization_endpoint"],
                client_id=self.client_id,
                response_type="code",
                redirect_uri=redirect_uri,
                scope=self.scopes,
                state=flow.state,
                nonce=flow.nonce,
                code_challenge=create_s256_code_challenge(flow.code_verifier),
                code_challenge_method="S256",
            )
        )

    def _algorithms(self, metadata: dict[str, Any]) -> list[str]:
        announced = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        return [alg for alg in SIGNING_ALGORITHMS if alg in announced]

    async def redeem(self, code: str, flow: Flow, redirect_uri: str) -> Identity:
        """The identity behind an authorization ``code`` of ``flow``: the code and the PKCE code
        verifier are exchanged for tokens, the ID token is checked (:func:`verify_id_token`)."""
        if not code:
            raise SignInRefused("provider", "the provider sent no authorization code")
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": flow.code_verifier,
        }
        auth: httpx.BasicAuth | None = None
        if self.client_secret is None:  # a public client: PKCE alone
            form["client_id"] = self.client_id
        elif "client_secret_basic" in metadata.get("token_endpoint_auth_methods_supported", ["client_secret_basic"]):
            auth = httpx.BasicAuth(self.client_id, self.client_secret.get_secret_value())
        else:
            form |= {"client_id": self.client_id, "client_secret": self.client_secret.get_secret_value()}
        try:
            async with self._client() as client:
                response = await client.post(
                    metadata["token_endpoint"], data=form, auth=auth or httpx.USE_CLIENT_DEFAULT
                )
            tokens = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnreachable(f"the token endpoint: {type(exc).__name__}") from None
        if response.status_code >= 500 or not isinstance(tokens, dict):
            raise ProviderUnreachable(f"the token endpoint answered {response.status_code}")
        if response.status_code != 200 or "error" in tokens:
            raise SignInRefused("provider", f"the provider refused the code ({str(tokens.get('error'))[:60]})")
        id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
        if not isinstance(id_token, str):
            raise SignInRefused("token", "the provider sent no ID token")
        algorithms = self._algorithms(metadata)

        def check(keys: KeySet) -> dict[str, Any]:
            return verify_id_token(
                id_token,
                keys,
                issuer=self.issuer,
                client_id=self.client_id,
                nonce=flow.nonce,
                algorithms=algorithms,
                access_token=access_token if isinstance(access_token, str) else None,
            )

        try:
            try:
                claims = check(await self.keys())
            except InvalidKeyIdError:  # the provider rolled its keys over since they were read
                claims = check(await self.keys(again=True))
        except InvalidKeyIdError:
            raise SignInRefused("token", "the ID token is signed with a key the provider does not publish") from None
        except InvalidIdToken as exc:
            raise SignInRefused("token", str(exc)) from None
        if "email" not in claims and isinstance(access_token, str) and metadata.get("userinfo_endpoint"):
            info = await self._get_json(
                metadata["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"}
            )
            if info.get("sub") == claims["sub"]:  # OpenID Connect Core 1.0, section 5.3.2
                claims = {**info, **claims}
        return identity_of(self.issuer, claims, self.trust_email)


# -- the routes -----------------------------------------------------------------------------------


def provider_of(request: Request) -> Provider | None:
    """The provider of the hub's settings (one per API process, so that what was read of it is
    kept), or None without single sign-on."""
    provider: Provider | None = getattr(request.app.state, "oidc_provider", None)
    settings = application_of(request).hub.settings
    if provider is None and settings.oidc_enabled:
        assert settings.oidc_issuer is not None
        assert settings.oidc_client_id is not None
        provider = Provider(
            settings.oidc_issuer,
            settings.oidc_client_id,
            settings.oidc_client_secret,
            settings.oidc_scopes,
            trust_email=settings.oidc_trust_email,
        )
        request.app.state.oidc_provider = provider
    return provider


def redirect_uri(request: Request) -> str:
    """Where the provider sends the browser back: on the hub's public address, else on the
    address this request came to. The same must be registered at the provider."""
    origin = application_of(request).hub.settings.public_origin or f"{request.url.scheme}://{request.url.netloc}"
    return origin + CALLBACK_PATH


def _failed(request: Request, status: int, message: str, detail: str | None = None) -> Response:
    t = translator(language_of(request))
    response = page(
        request,
        "signin_failed.html",
        status=status,
        title=t("Not signed in"),
        message=message,
        detail=detail,
        error=None,
    )
    _forget_flow(request, response)
    return response


def _unreachable(request: Request, provider: Provider, exc: ProviderUnreachable) -> Response:
    log.warning("dashboard.sso.unreachable", issuer=provider.issuer, problem=str(exc))
    label = application_of(request).hub.settings.oidc_label
    t = translator(language_of(request))
    return _failed(
        request, 502, t("{label} cannot be reached just now: try again in a few minutes.").format(label=label)
    )


def _forget_flow(request: Request, response: Response) -> None:
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH, httponly=True, samesite="lax", secure=secure_cookies(request))


@sso.get(FLOW_PATH)
async def start(request: Request) -> Response:
    """Off to the provider: a new flow cookie, and the authorization request it derives."""
    provider = provider_of(request)
    t = translator(language_of(request))
    if provider is None:
        return _failed(request, 404, t("This hub has no single sign-on: sign in with your personal token."))
    flow = Flow.new(time.time())
    try:
        address = await provider.authorization_url(flow, redirect_uri(request))
    except ProviderUnreachable as exc:
        return _unreachable(request, provider, exc)
    response = RedirectResponse(address, status_code=303)
    response.set_cookie(
        FLOW_COOKIE,
        flow.cookie,
        max_age=FLOW_TTL_S,
        path=FLOW_PATH,
        httponly=True,
        samesite="lax",  # the provider sends the browser back from its own site: Strict would withhold it
        secure=secure_cookies(request),
    )
    return response


@sso.get(CALLBACK_PATH)
async def callback(request: Request) -> Response:
    """Back from the provider: the state must be this browser's, the code is redeemed and the ID
    token checked; then the person of that identity (or the invitation for its verified e-mail
    address) is signed in."""
    provider = provider_of(request)
    application = application_of(request)
    t = translator(language_of(request))
    label = application.hub.settings.oidc_label
    if provider is None:
        return _failed(request, 404, t("This hub has no single sign-on: sign in with your personal token."))
    query = request.query_params
    flow = Flow.from_cookie(request.cookies.get(FLOW_COOKIE), time.time())
    try:
        if flow is None or not flow.matches(query.get("state", "")):
            raise SignInRefused("state", "the state is not the one of this browser's sign-in")
        if "error" in query:
            raise SignInRefused("provider", f"the provider answered {query['error'][:60]}")
        identity = await provider.redeem(query.get("code", ""), flow, redirect_uri(request))
        caller = await to_thread.run_sync(
            application.people.person_for_sign_in,
            identity.issuer,
            identity.subject,
            identity.email,
            identity.email_verified,
        )
    except ProviderUnreachable as exc:
        return _unreachable(request, provider, exc)
    except SignInRefused as refused:
        log.info("dashboard.sso.refused", reason=refused.reason, problem=refused.detail)
        if refused.reason == "state":
            message = t("This sign-in was not started in this browser, or took longer than ten minutes: start again.")
            return _failed(request, 400, message)
        if refused.reason == "provider":
            return _failed(request, 401, t("{label} did not sign you in.").format(label=label), refused.detail)
        message = t("The answer of {label} did not pass the hub's checks, so nobody was signed in.")
        return _failed(request, 401, message.format(label=label), refused.detail)
    except Refusal as refusal:
        log.info("dashboard.sso.refused", reason="person", status=refusal.status)  # the detail may name an e-mail
        return _failed(request, refusal.status, refusal.detail)  # nobody invited, or removed: the service's words
    assert caller.person is not None
    log.info("dashboard.sso.signed_in", organisation=caller.organisation_id, person_id=caller.person.id)
    # Not a redirect to the negotiations: after the provider's cross-site redirects, browsers withhold
    # the SameSite=Strict session cookie from the next hop. This page, of the hub's own site, moves on.
    landing = page(request, "signed_in.html", error=None)
    _forget_flow(request, landing)
    return await start_session(request, caller, landing)
