"""Webhook URLs cannot reach inside the network (``services/subscriptions/destinations.py``).

- At creation, through the running stack's API without an allow-list: every kind of non-public
  address, in odd spellings too, and loopback names, is a 422 naming ``url`` and why, and
  nothing is created.
- At delivery, through the running stack: a subscription to a loopback address already in the
  database (made before this check, or before the operator narrowed the allow-list) gets a
  recorded ``destination refused`` attempt, and nothing on that address is contacted.
- At delivery, with the dispatcher's own client and an injected resolver: a name that resolves to
  a public address at creation and to loopback at delivery (DNS rebinding) is refused without a
  connection; an allowed name is resolved once and the connection goes to the checked address,
  with the URL's ``Host`` header and, over TLS, the certificate verified and SNI sent for the
  URL's host name.

Every connection here goes to loopback; public addresses appear only in checks that connect to
nothing. The stack runs on SQLite only: the checks do not touch the database.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import pytest
import trustme
from sqlmodel import Session, select

from services.readmodel.store import create_db_engine, upgrade
from services.readmodel.tables import Delivery, DeliveryAttempt, Subscription
from services.settings import SettingsError, load_settings
from services.subscriptions.destinations import (
    NOT_PUBLIC,
    DestinationPolicy,
    DestinationRefused,
    PinnedBackend,
    resolve_blocking,
)
from services.subscriptions.webhooks import Dispatcher, DispatchPolicy, webhook_client
from tests.e2e.conftest import RunningStack, running_stack
from tests.e2e.receiver import Receiver
from tests.reliability.harness import wait_for

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PUBLIC_V4 = "93.184.215.14"  # a public address; nothing here connects to it
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
REFUSED_IN_LOG = f"destination refused: {NOT_PUBLIC}"

# (URL, what the refusal says): every class of non-public address, odd spellings, loopback names.
REFUSED = [
    ("https://127.0.0.1:9092/", "127.0.0.1 is a loopback address"),
    ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("https://0x7f000001/hook", "127.0.0.1 is a loopback address"),
    ("https://2130706433/hook", "127.0.0.1 is a loopback address"),
    ("https://0177.0.0.1/hook", "127.0.0.1 is a loopback address"),
    ("https://127.1/hook", "127.0.0.1 is a loopback address"),
    ("https://[::1]/hook", "::1 is a loopback address"),
    ("https://10.0.0.1/hook", "10.0.0.1 is a private address"),
    ("https://172.16.0.1/hook", "172.16.0.1 is a private address"),
    ("https://172.31.255.254/hook", "172.31.255.254 is a private address"),
    ("https://192.168.1.1/hook", "192.168.1.1 is a private address"),
    ("https://100.64.0.1/hook", "100.64.0.1 is a shared (carrier-grade NAT) address"),
    ("https://224.0.0.1/hook", "224.0.0.1 is a multicast address"),
    ("https://[ff02::1]/hook", "ff02::1 is a multicast address"),
    ("https://0.0.0.0/hook", "0.0.0.0 is an unspecified address"),
    ("https://[::]/hook", ":: is an unspecified address"),
    ("https://240.0.0.1/hook", "240.0.0.1 is a reserved address"),
    ("https://255.255.255.255/hook", "255.255.255.255 is a reserved address"),
    ("https://192.0.2.10/hook", "192.0.2.10 is a special-purpose address"),
    ("https://[fc00::1]/hook", "fc00::1 is a private address"),
    ("https://[fd12:3456::1]/hook", "fd12:3456::1 is a private address"),
    ("https://[fe80::1]/hook", "fe80::1 is a link-local address"),
    ("https://[fec0::1]/hook", "fec0::1 is a site-local address"),
    ("https://[::ffff:127.0.0.1]/hook", "::ffff:7f00:1 is an IPv6 form of a loopback address"),
    ("https://[::ffff:10.1.2.3]/hook", "::ffff:a01:203 is an IPv6 form of a private address"),
    ("https://[64:ff9b::a9fe:a9fe]/hook", "64:ff9b::a9fe:a9fe is an IPv6 form of a link-local address"),  # NAT64
    ("https://[2002:7f00:1::1]/hook", "2002:7f00:1::1 is an IPv6 form of a loopback address"),  # 6to4
    ("https://localhost/hook", "localhost is a loopback name"),
    ("https://localhost./hook", "localhost. is a loopback name"),
    ("https://LOCALHOST:8443/hook", "localhost is a loopback name"),
    ("https://hooks.localhost/hook", "hooks.localhost is a loopback name"),
    (f"http://{PUBLIC_V4}/hook", "http URLs are not allowed; webhooks use https"),
]


class Answers:
    """A resolver that gives the next of its answers to each question, and keeps the questions."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def blocking(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        return self.answers.pop(0)

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        return self.blocking(host, port)


class Recording(httpcore.AsyncNetworkBackend):
    """httpcore's own backend, keeping the (host, port) of every connection it opens."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.connected: list[tuple[str, int]] = []

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        self.connected.append((host, port))
        return await self.inner.connect_tcp(host, port, timeout=timeout, **kwargs)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class Listener:
    """A TCP listener on loopback that counts the connections it accepts (and answers none)."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.05)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                connection, _ = self.socket.accept()
                self.accepted += 1
                connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.socket.close()


# -- creation: the running stack's API, without an allow-list ---------------------------------


@pytest.fixture(scope="module")
def strict_stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The stack as deployed by default: public https destinations only."""
    tmp = tmp_path_factory.mktemp("stack-destinations")
    with running_stack(kafka_bootstrap, tmp, "sqlite", webhook_allow="", webhook_allow_http=False) as running:
        yield running


@pytest.fixture(scope="module")
def member(strict_stack: RunningStack) -> tuple[str, str]:
    """A member in no negotiation: nothing is ever delivered to its subscriptions."""
    return strict_stack.organisation(f"Member {uuid.uuid4().hex[:6]}", "member")


@pytest.mark.parametrize(("url", "why"), REFUSED, ids=[url for url, _ in REFUSED])
def test_a_non_public_destination_is_a_422_naming_url_and_why_and_creates_nothing(
    strict_stack: RunningStack, member: tuple[str, str], url: str, why: str
) -> None:
    client = strict_stack.client(member[1])
    # When a party subscribes a URL that reaches inside the network
    response = client.post("/v1/subscriptions", json={"url": url})
    # Then the answer is a 422 problem naming the field and why
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == "url"
    assert why in problem["detail"], problem
    assert problem["errors"] == [{"field": "url", "message": problem["detail"].removeprefix("url: ")}]
    # And nothing was created
    assert client.get("/v1/subscriptions").json() == []


def test_a_public_https_destination_is_accepted(strict_stack: RunningStack, member: tuple[str, str]) -> None:
    client = strict_stack.client(member[1])
    # When a member in no negotiation subscribes a public address (nothing will be sent to it)
    created = client.post("/v1/subscriptions", json={"url": f"https://{PUBLIC_V4}/hooks/koopkracht"})
    # Then it is created, and deleted again
    assert created.status_code == 201, created.text
    assert client.delete(f"/v1/subscriptions/{created.json()['id']}").status_code == 204


def test_a_loopback_subscription_in_the_database_is_refused_at_delivery_without_a_connection(
    strict_stack: RunningStack,
) -> None:
    # Given a subscription to a listener on loopback, already in the database: made before this
    # check existed or before the operator narrowed the allow-list (the API refuses it now)
    listener = Listener()
    coordinator_id, coordinator_key = strict_stack.organisation(f"Coop {uuid.uuid4().hex[:6]}", "coordinator")
    vendor_id, _ = strict_stack.organisation(f"Vendor {uuid.uuid4().hex[:6]}", "vendor")
    subscription_id = f"sub_{uuid.uuid4().hex}"
    engine = create_db_engine(strict_stack.settings.sqlalchemy_url)
    with Session(engine) as session:
        session.add(
            Subscription(
                id=subscription_id,
                organisation_id=coordinator_id,
                url=f"https://127.0.0.1:{listener.port}/hook",
                secret=SECRET,
                created_at=datetime.now(UTC),
            )
        )
        session.commit()
    engine.dispose()
    coordinator = strict_stack.client(coordinator_key)
    try:
        # When the coordinator opens a negotiation, so an event is queued for the subscription
        body = {"title": "Destinations", "vendor_id": vendor_id, "items": [{"key": "no-ai-training"}]}
        assert coordinator.post("/v1/negotiations", json=body).status_code == 201

        def attempts() -> list[dict[str, Any]]:
            log = coordinator.get(f"/v1/subscriptions/{subscription_id}/deliveries").json()
            return [attempt for delivery in log for attempt in delivery["log"]]

        logged = wait_for(attempts, 60, "an attempt in the delivery log")
        # Then the delivery log shows the refusal, with no status and no detail of the address
        first = logged[0]
        assert first["error"] == REFUSED_IN_LOG
        assert first["status_code"] is None
        assert str(listener.port) not in json.dumps(logged)
        # And the listener was never contacted
        assert listener.accepted == 0
    finally:
        listener.close()


# -- the check itself, without the stack -----------------------------------------------------


@pytest.mark.parametrize(("url", "why"), REFUSED, ids=[url for url, _ in REFUSED])
def test_the_default_policy_refuses_each_non_public_url(url: str, why: str) -> None:
    from pydantic import HttpUrl

    normalised = str(HttpUrl(url))  # as the API stores it
    with pytest.raises(DestinationRefused, match=why.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
        DestinationPolicy().check_url(normalised, resolve=Answers().blocking)


def test_names_are_judged_by_every_address_they_resolve_to() -> None:
    policy = DestinationPolicy()
    # Public only: accepted
    policy.check_url("https://hooks.example.test/", resolve=Answers([PUBLIC_V4, PUBLIC_V6]).blocking)
    # One private address among public ones: refused, naming the kind, not the address
    with pytest.raises(DestinationRefused) as refused:
        policy.check_url("https://hooks.example.test/", resolve=Answers([PUBLIC_V4, "10.20.30.40"]).blocking)
    assert refused.value.detail == "hooks.example.test resolves to a private address; webhooks go to public addresses"
    assert refused.value.logged == NOT_PUBLIC
    # A name that does not resolve: refused at creation
    with pytest.raises(DestinationRefused, match="does not resolve"):
        policy.check_url("https://hooks.example.test/", resolve=Answers([]).blocking)


def test_the_system_resolver_reads_localhost_as_loopback_and_the_policy_refuses_it() -> None:
    addresses = resolve_blocking("localhost", 443)
    with pytest.raises(DestinationRefused, match="localhost resolves to a loopback address"):
        DestinationPolicy().judge("localhost", addresses, literal=False)


@pytest.mark.parametrize("host", ["0x7f000001", "2130706433", "0177.0.0.1", "127.1", "0x7f.1"])
async def test_at_delivery_an_odd_spelling_is_judged_as_the_system_resolver_reads_it(host: str) -> None:
    # httpx passes these on as host names; the system resolver reads them as 127.0.0.1
    with pytest.raises(DestinationRefused):
        await PinnedBackend(DestinationPolicy()).addresses(host, 443)


def test_the_operator_allow_list_admits_its_networks_and_names_only() -> None:
    policy = DestinationPolicy.from_settings("10.1.2.0/24, hooks.internal, fd00::/8", allow_http=False)
    policy.check_url("https://10.1.2.3/hook")
    policy.check_url("https://[::ffff:10.1.2.3]/hook")  # the same address in IPv6 form
    policy.check_url("https://[fd00::5]/hook")
    policy.check_url("https://hooks.internal/hook", resolve=Answers(["192.168.7.7"]).blocking)
    with pytest.raises(DestinationRefused, match="private"):
        policy.check_url("https://10.1.3.1/hook")
    with pytest.raises(DestinationRefused, match="loopback"):
        policy.check_url("https://127.0.0.1/hook")
    with pytest.raises(DestinationRefused, match="http URLs are not allowed"):
        policy.check_url("http://10.1.2.3/hook")
    DestinationPolicy.from_settings("", allow_http=True).check_url(f"http://{PUBLIC_V4}/hook")


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "not a host", "-bad.example", "1.2.3.4.5"])
def test_a_wrong_allow_list_stops_the_program_naming_the_setting(entry: str) -> None:
    with pytest.raises(SettingsError, match="KOOPKRACHT_WEBHOOK_ALLOW"):
        load_settings(webhook_allow=f"127.0.0.1,{entry}")


# -- delivery: the dispatcher's client, with an injected resolver -----------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(url)
    made = create_db_engine(url)
    yield made
    made.dispose()


def queued(engine: Any, url: str) -> tuple[Delivery, Subscription]:
    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        subscription = Subscription(id="sub_1", organisation_id="org_1", url=url, secret=SECRET, created_at=now)
        delivery = Delivery(
            subscription_id="sub_1",
            negotiation_id="n-1",
            sequence=1,
            event_type="NegotiationOpened",
            message_id="msg_1",
            payload=json.dumps({"sequence": 1}),
            next_attempt_at=now,
            created_at=now,
        )
        session.add(subscription)
        session.add(delivery)
        session.commit()
    return delivery, subscription


def logged_errors(engine: Any) -> list[str | None]:
    with Session(engine) as session:
        return [a.error for a in session.exec(select(DeliveryAttempt)).all()]


async def test_a_name_rebound_to_loopback_after_creation_is_refused_at_delivery_without_a_connection(
    engine: Any,
) -> None:
    receiver = Receiver().start()
    url = f"https://hooks.example.test:{receiver.port}/hook"
    # Given a name that resolved to a public address when the subscription was created
    dns = Answers([PUBLIC_V4], ["127.0.0.1"])
    policy = DispatchPolicy(destinations=DestinationPolicy())
    policy.destinations.check_url(url, resolve=dns.blocking)
    delivery, subscription = queued(engine, url)
    recording = Recording()
    try:
        # When it resolves to loopback at delivery
        async with webhook_client(policy, resolve=dns, inner=recording) as http:
            delivered = await Dispatcher(engine, policy).deliver(http, delivery, subscription)
        # Then the attempt failed as refused, and no connection was opened
        assert delivered is False
        assert logged_errors(engine) == [REFUSED_IN_LOG]
        assert recording.connected == []
        assert receiver.received == []
    finally:
        receiver.stop()


async def test_http_and_literal_addresses_are_refused_at_delivery_without_resolving(engine: Any) -> None:
    dns = Answers()
    policy = DispatchPolicy(destinations=DestinationPolicy())
    recording = Recording()
    async with webhook_client(policy, resolve=dns, inner=recording) as http:
        # When a plain-http URL is delivered to
        delivery, subscription = queued(engine, f"http://{PUBLIC_V4}/hook")
        assert await Dispatcher(engine, policy).deliver(http, delivery, subscription) is False
        # And, after its owner changed it, a literal link-local address (the metadata service)
        delivery, subscription = _requeued(engine, "https://169.254.169.254/latest/meta-data/")
        assert await Dispatcher(engine, policy).deliver(http, delivery, subscription) is False
    # Then both attempts are refused in the log, with nothing resolved and nothing connected
    assert logged_errors(engine) == [
        "destination refused: http URLs are not allowed; webhooks use https",
        REFUSED_IN_LOG,
    ]
    assert dns.asked == []
    assert recording.connected == []


def _requeued(engine: Any, url: str) -> tuple[Delivery, Subscription]:
    """The same subscription with another URL and its delivery, still pending."""
    with Session(engine, expire_on_commit=False) as session:
        subscription = session.get(Subscription, "sub_1")
        assert subscription is not None
        subscription.url = url
        session.add(subscription)
        session.commit()
        delivery = session.exec(select(Delivery)).one()
    return delivery, subscription


async def test_an_allowed_name_is_resolved_once_and_the_connection_goes_to_the_checked_address(
    engine: Any,
) -> None:
    receiver = Receiver().start()
    url = f"http://hooks.example.test:{receiver.port}/hook"
    # Given an operator who allows loopback over http, and a name whose answer changes every time
    dns = Answers(["127.0.0.1"], ["10.9.9.9"], ["10.9.9.9"])
    policy = DispatchPolicy(destinations=DestinationPolicy.from_settings("127.0.0.1", allow_http=True))
    delivery, subscription = queued(engine, url)
    recording = Recording()
    try:
        async with webhook_client(policy, resolve=dns, inner=recording) as http:
            delivered = await Dispatcher(engine, policy).deliver(http, delivery, subscription)
        # Then it was delivered over one connection to the address the check saw, asked once
        assert delivered is True, logged_errors(engine)
        assert dns.asked == ["hooks.example.test"]
        assert recording.connected == [("127.0.0.1", receiver.port)]
        # And the receiver saw the URL's host name, not the address
        [(headers, _)] = receiver.received
        assert headers["host"] == f"hooks.example.test:{receiver.port}"
    finally:
        receiver.stop()


@contextlib.contextmanager
def tls_receiver(ca: trustme.CA, name: str) -> Iterator[tuple[int, list[str | None], list[str]]]:
    """An HTTPS server on loopback with a certificate for ``name``: its port, the SNI names it was
    sent, and the Host headers it received."""
    sni: list[str | None] = []
    hosts: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    context.sni_callback = lambda _socket, server_name, _context: sni.append(server_name)  # type: ignore[assignment,func-returns-value]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            hosts.append(self.headers["host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], sni, hosts
    finally:
        server.shutdown()
        server.server_close()


async def test_over_tls_the_pinned_connection_verifies_the_certificate_of_the_url_host_name(engine: Any) -> None:
    ca = trustme.CA()
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    policy = DispatchPolicy(destinations=DestinationPolicy.from_settings("127.0.0.1", allow_http=False))
    with tls_receiver(ca, "hooks.example.test") as (port, sni, hosts):
        # When a delivery goes to https://hooks.example.test, which resolves to loopback
        delivery, subscription = queued(engine, f"https://hooks.example.test:{port}/hook")
        recording = Recording()
        async with webhook_client(policy, resolve=Answers(["127.0.0.1"]), verify=trusted, inner=recording) as http:
            delivered = await Dispatcher(engine, policy).deliver(http, delivery, subscription)
        # Then it connected to the address, sent the name as SNI, and the certificate for the name verified
        assert delivered is True, logged_errors(engine)
        assert recording.connected == [("127.0.0.1", port)]
        assert sni == ["hooks.example.test"]
        assert hosts == [f"hooks.example.test:{port}"]

        # When another name resolves to the same address, its certificate does not match
        _, subscription = _requeued(engine, f"https://other.example.test:{port}/hook")
        with Session(engine, expire_on_commit=False) as session:
            pending = Delivery(
                subscription_id="sub_1",
                negotiation_id="n-1",
                sequence=2,
                event_type="NegotiationOpened",
                message_id="msg_2",
                payload="{}",
                next_attempt_at=datetime.now(UTC),
                created_at=datetime.now(UTC),
            )
            session.add(pending)
            session.commit()
        async with webhook_client(policy, resolve=Answers(["127.0.0.1"]), verify=trusted) as http:
            delivered = await Dispatcher(engine, policy).deliver(http, pending, subscription)
        # Then the delivery fails on the certificate: connecting to an address skips no verification
        assert delivered is False
        assert "other.example.test" in (logged_errors(engine)[-1] or "")
        assert "certificate" in (logged_errors(engine)[-1] or "").lower()
