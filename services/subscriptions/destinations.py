"""Where webhooks may go: public addresses, over https, unless the operator allows more.

A webhook URL is the subscriber's input, and the dispatcher connects to it from inside the hub's
network. Without a check, a subscriber could make the hub POST to ``http://127.0.0.1:9092``, to
the cloud's metadata service at ``169.254.169.254`` or to anything on ``10.0.0.0/8``, and read
each attempt's status and error in the delivery log: a port scanner. So:

- **Public addresses only.** An address is public when Python's ``ipaddress`` says it is globally
  reachable (``is_global``) and it is none of multicast, site-local or reserved; an IPv6 address
  that carries an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4
  ``2002::/16``) is judged by the IPv4 address it carries. ``localhost`` and ``*.localhost`` are
  loopback by name (RFC 6761) and are not resolved.
- **The resolved address is what is checked, and what is connected to.** At delivery,
  :class:`PinnedBackend` (an httpcore network backend: the layer that opens the TCP connection)
  resolves the host name once with the system resolver, refuses when *any* address it resolves to
  is not allowed, and connects to the checked address itself: a name whose DNS answer changes
  between the check and the connection (DNS rebinding) cannot slip through, and odd spellings of
  an address (``0x7f000001``, ``2130706433``, ``0177.0.0.1``, ``127.1``) are judged as the resolver
  reads them, which is how the connection would read them. TLS still verifies the certificate
  for the URL's host name and sends it as SNI, and the ``Host`` header is the URL's: httpcore
  does both with the origin's host name, whatever address the backend connected to.
- **https only**, unless ``KOOPKRACHT_WEBHOOK_ALLOW_HTTP`` is set.
- **The operator's allow-list** (``KOOPKRACHT_WEBHOOK_ALLOW``): networks (``10.1.2.0/24``,
  ``127.0.0.1``) whose addresses are allowed though not public, and host names allowed whatever
  they resolve to (still resolved once and pinned).

Creating a subscription checks the URL the same way (``check_url``), with a blocking resolver, so
that a refused destination is a clear 422 at once; delivery checks again, because DNS answers
change and the allow-list may have been narrowed since.
"""

from __future__ import annotations

import re
import socket
import typing
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Async: a host name and port to the addresses it resolves to (``ConnectError`` when none)."""
BlockingResolver = Callable[[str, int], Sequence[str]]

NOT_PUBLIC = "resolves to a non-public address; webhooks go to public addresses"
"""What the delivery log says of a refused destination: no address, no detail of what is there."""

_SHARED = ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ip_network("64:ff9b::/96")  # the well-known NAT64 prefix (RFC 6052)
_PRIVATE = (ip_network("10.0.0.0/8"), ip_network("172.16.0.0/12"), ip_network("192.168.0.0/16"))
_UNIQUE_LOCAL = ip_network("fc00::/7")
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


class DestinationRefused(Exception):
    """A webhook destination that is not allowed: ``detail`` says why, for the answer to its owner
    at creation; ``logged`` for the delivery log (``NOT_PUBLIC`` for any address)."""

    def __init__(self, detail: str, logged: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.logged = logged or detail


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries, where connecting to it reaches that IPv4 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFF_FFFF)
    return address.sixtofour


def kind_of(address: Address) -> str | None:
    """What makes ``address`` not public (``"a loopback address"`` …), or None when it is public."""
    if isinstance(address, IPv6Address):
        carried = embedded_ipv4(address)
        if carried is not None:
            kind = kind_of(carried)
            return None if kind is None else f"an IPv6 form of {kind}"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_multicast:
        return "a multicast address"
    if any(address in network for network in _PRIVATE) or address in _UNIQUE_LOCAL:
        return "a private address"
    if isinstance(address, IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a special-purpose address"
    return None


def is_localhost(host: str) -> bool:
    """``localhost`` and names under it, which resolve to loopback by definition (RFC 6761)."""
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def parse_allow_list(value: str) -> tuple[tuple[Network, ...], frozenset[str]]:
    """``KOOPKRACHT_WEBHOOK_ALLOW``: comma-separated networks (or addresses) and host names."""
    networks: list[Network] = []
    hosts: set[str] = set()
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        name = entry.lower().rstrip(".")
        if not _HOST_NAME.match(name) or name.replace(".", "").isdigit():
            raise ValueError(f"{entry!r} is neither a network (10.1.2.0/24, 127.0.0.1, fd00::/8) nor a host name")
        hosts.add(name)
    return tuple(networks), frozenset(hosts)


@dataclass(frozen=True)
class DestinationPolicy:
    """Where webhooks may go. The default: public addresses, https only."""

    allowed_networks: tuple[Network, ...] = ()
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    allow_http: bool = False

    @classmethod
    def from_settings(cls, allow: str, allow_http: bool) -> DestinationPolicy:
        networks, hosts = parse_allow_list(allow)
        return cls(allowed_networks=networks, allowed_hosts=hosts, allow_http=allow_http)

    def host_allowed(self, host: str) -> bool:
        return host.rstrip(".").lower() in self.allowed_hosts

    def refusal(self, address: Address) -> str | None:
        """Why ``address`` is not allowed, or None when it is (public, or in an allowed network)."""
        candidates: list[Address] = [address]
        if isinstance(address, IPv6Address) and (carried := embedded_ipv4(address)) is not None:
            candidates.append(carried)
        if any(a in network for a in candidates for network in self.allowed_networks):
            return None
        return kind_of(address)

    def check_scheme(self, url: str) -> None:
        scheme = urlsplit(url).scheme.lower()
        if scheme == "https" or (scheme == "http" and self.allow_http):
            return
        raise DestinationRefused(f"{scheme or 'this'} URLs are not allowed; webhooks use https")

    def judge(self, host: str, addresses: Iterable[str], *, literal: bool) -> list[Address]:
        """The addresses to connect to, every one allowed, or :class:`DestinationRefused`.

        ``literal``: ``host`` is an address itself; the refusal then names it. For a name it names
        the kind of address only: which address an internal name has is not the subscriber's to learn.
        """
        parsed = [ip_address(a) for a in addresses]
        if self.host_allowed(host):
            return parsed
        for address in parsed:
            kind = self.refusal(address)
            if kind is not None:
                subject = f"{host} is" if literal else f"{host} resolves to"
                raise DestinationRefused(f"{subject} {kind}; webhooks go to public addresses", NOT_PUBLIC)
        return parsed

    def localhost(self, host: str) -> DestinationRefused | None:
        if is_localhost(host) and not self.host_allowed(host):
            return DestinationRefused(f"{host} is a loopback name; webhooks go to public addresses", NOT_PUBLIC)
        return None

    def check_url(self, url: str, resolve: BlockingResolver | None = None) -> None:
        """Refuse ``url`` (:class:`DestinationRefused`) unless its scheme, and every address its
        host resolves to now, are allowed. For the API, when a subscription is created."""
        self.check_scheme(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        if (refused := self.localhost(host)) is not None:
            raise refused
        literal = literal_address(host)
        if literal is not None:
            self.judge(host, [str(literal)], literal=True)
            return
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = (resolve or resolve_blocking)(host, port)
        except OSError:
            raise DestinationRefused(f"{host} does not resolve to any address") from None
        if not addresses:
            raise DestinationRefused(f"{host} does not resolve to any address")
        self.judge(host, addresses, literal=False)


def literal_address(host: str) -> Address | None:
    try:
        return ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolve_blocking(host: str, port: int) -> list[str]:
    """The system resolver: every address of ``host``, in its order, once each."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


async def resolve_system(host: str, port: int) -> list[str]:
    """The system resolver in a worker thread (anyio's ``getaddrinfo``)."""
    try:
        found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpcore.ConnectError(f"{host} does not resolve: {exc.strerror or exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to checked addresses of the URL's host.

    httpcore asks it for a TCP connection to the URL's host and port; it resolves the host once,
    refuses (:class:`DestinationRefused`) unless every address is allowed, and connects to those
    addresses, in the resolver's order, until one answers. TLS and the ``Host`` header are
    httpcore's, with the URL's host name.
    """

    def __init__(
        self,
        policy: DestinationPolicy,
        resolve: Resolver = resolve_system,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolve = resolve
        self.inner = inner or httpcore.AnyIOBackend()

    async def addresses(self, host: str, port: int) -> list[Address]:
        if (refused := self.policy.localhost(host)) is not None:
            raise refused
        literal = literal_address(host)
        if literal is not None:
            return self.policy.judge(host, [str(literal)], literal=True)
        return self.policy.judge(host, await self.resolve(host, port), literal=False)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.addresses(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve to any address")
        failed: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failed = exc
        assert failed is not None
        raise failed

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("a Unix socket is no webhook destination")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (its request and response handling, its error mapping) over a
    connection pool whose network backend is a :class:`PinnedBackend`.

    httpx 0.28 builds its pool without a way to pass a network backend (an httpcore extension
    point that is public); until it has one, the pool is replaced after construction, with the
    same settings httpx would use. ``tests/security/test_webhook_destinations.py`` proves the
    connection goes through the backend.
    """

    def __init__(
        self, backend: PinnedBackend, *, verify: typing.Any = True, limits: httpx.Limits | None = None
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(verify=verify, trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )
