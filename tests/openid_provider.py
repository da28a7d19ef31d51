"""A real OpenID provider on loopback for the sign-in tests: ``oidc-provider-mock`` (a Flask
application built on Authlib's provider) in a thread of the test process.

It signs ID tokens with its own RSA key (published at ``/jwks``), accepts any client id and secret
(``client_secret_basic`` or ``client_secret_post``) and any redirect URI, and asks on its authorize
page only for a subject (``sub``). What that subject's ID token says besides (``email``,
``email_verified``, ``name``) is set beforehand with ``PUT /users/<sub>``. Its issuer is the address
it is reached at: ``http://localhost:<port>``. It does not check PKCE.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import authlib.deprecate
import httpx

# The provider imports Authlib's deprecated modules, and Authlib sets its own warnings to "always"
# as it loads; once loaded, they can be silenced for this import.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    import oidc_provider_mock


@dataclass(frozen=True)
class OpenIDProvider:
    issuer: str

    def person(self, subject: str, email: str | None, name: str, email_verified: bool = True) -> None:
        """What the provider will say of ``subject`` when that person signs in."""
        claims: dict[str, object] = {"name": name}
        if email is not None:
            claims |= {"email": email, "email_verified": email_verified}
        httpx.put(f"{self.issuer}/users/{subject}", json=claims, timeout=10).raise_for_status()

    def authorize(self, authorization_url: str, subject: str) -> str:
        """Sign in as ``subject`` on the provider's authorize page, as a browser would post it: the
        address the provider sends the browser back to."""
        answer = httpx.post(authorization_url, data={"sub": subject}, timeout=10)
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]

    def token(self, code: str, redirect_uri: str, client_id: str, client_secret: str) -> dict[str, object]:
        """The token endpoint's answer for ``code``, for the client ``client_id``."""
        answer = httpx.post(
            f"{self.issuer}/oauth2/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            auth=(client_id, client_secret),
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body


def query(address: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(address).query).items()}


@contextlib.contextmanager
def openid_provider() -> Iterator[OpenIDProvider]:
    """The provider on a free loopback port, stopped when the block ends."""
    with oidc_provider_mock.run_server_in_thread(port=0, require_nonce=True) as server:
        yield OpenIDProvider(f"http://localhost:{server.server_port}")
