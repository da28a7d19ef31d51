"""Security headers on every HTTP answer: the dashboard's pages, its static files, the API's JSON
and problem documents, error answers included (the middleware wraps the whole application, so
even an unexpected 500 has them).

- ``Content-Security-Policy``: nothing but this origin's own files, no inline script or style,
  no plugins, forms posted only here, never framed (``frame-ancestors 'none'``). The live board's
  EventSource and its fragment reloads are ``connect-src 'self'``. The interactive API docs
  (``/docs``, ``/redoc``) load Swagger UI and ReDoc from a CDN with an inline start-up script, so
  they get only ``frame-ancestors 'none'``.
- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (for browsers that predate
  ``frame-ancestors``).
- ``Referrer-Policy: same-origin``: no address of the hub (negotiation ids, notices) leaves it in
  a ``Referer``. Not ``no-referrer``: under it browsers send ``Origin: null`` with form posts,
  and the dashboard's sign-in checks the ``Origin``.
- ``Strict-Transport-Security`` when ``KOOPKRACHT_PUBLIC_URL`` is https.
- ``Cache-Control: no-store`` on everything but the static files: answers carry confidential
  negotiation data and, once, new keys and tokens (a person's token on the tokens page, an
  invitation's first token), which no browser cache or back-forward cache may keep.

A header the answer already has is left as it is.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_POLICY = "frame-ancestors 'none'"
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
HSTS = "max-age=31536000"
STATIC_PREFIX = "/static/"


def security_headers(path: str, https: bool) -> list[tuple[bytes, bytes]]:
    """The headers an answer to ``path`` gets (``https``: the hub's public address is https)."""
    policy = DOCS_POLICY if path in DOCS_PATHS else CONTENT_SECURITY_POLICY
    headers = [
        (b"content-security-policy", policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
    ]
    if https:
        headers.append((b"strict-transport-security", HSTS.encode()))
    if not path.startswith(STATIC_PREFIX):
        headers.append((b"cache-control", b"no-store"))
    return headers


class SecurityHeaders:
    """Adds :func:`security_headers` to every HTTP answer of ``app``."""

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope["path"], self.https)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in extra if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
