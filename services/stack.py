"""The whole stack in one foreground process: local Kafka, topics, and every service as a child.

``koopkracht up`` (and ``koopkracht demo``) use it. It starts the local Kafka (unless
``KOOPKRACHT_KAFKA_BOOTSTRAP`` names one), ensures the topics, migrates the read model's database,
then starts the worker, the projector, the webhook dispatcher, the scheduler and the API under a
:class:`~services.supervisor.Supervisor`, and waits until the API's ``/readyz`` says every part
answers. Children get the same settings through the environment and log to files in the data
folder (``<data dir>/logs``); the supervisor logs to ``supervisor.log`` there. Each child but the
API serves its metrics and probes on a port of its own (``metrics_port_env``).

A child that dies is restarted after a back-off that doubles with each crash in a row (0.5 s,
1 s, 2 s … at most ``KOOPKRACHT_RESTART_BACKOFF_MAX_S``, 30 s), and starts over once the child has
stayed up for a minute; each restart is logged and told on the console. Only a child that keeps
crashing (more than ``KOOPKRACHT_RESTART_MAX_CRASHES``, 5, within ``KOOPKRACHT_RESTART_WINDOW_S``,
120 s) stops the stack, naming the child and its log. The supervisor writes what it knows to
``<data dir>/supervisor.json``, which the API's ``/readyz`` reports. ``stop`` stops every child
and the Kafka the stack started, whatever happened before.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import structlog

from infra.kafka import KafkaCluster
from services.settings import DEFAULT_METRICS_PORTS, Settings
from services.supervisor import STATUS_FILE, Child, RestartPolicy, Supervisor

__all__ = ["Child", "Stack", "StackError", "api_url", "restart_policy", "services"]

log = structlog.get_logger("koopkracht.stack")


class StackError(RuntimeError):
    pass


def api_url(settings: Settings) -> str:
    return f"http://{settings.api_host}:{settings.api_port}"


def _answers_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


def services(settings: Settings) -> list[Child]:
    """The processes of the hub: the negotiation worker, the read-model projector, the webhook
    dispatcher, the scheduler (ticks for commitments past their due dates) and the HTTP API.

    The API is ready when its ``/readyz`` is: Kafka, the database and every other process answer.
    """
    exe = [sys.executable, "-m", "services"]
    return [
        Child("worker", [*exe, "worker"], env=metrics_port_env(settings, "worker")),
        Child("projector", [*exe, "projector"], env=metrics_port_env(settings, "projector")),
        Child("webhooks", [*exe, "webhooks"], env=metrics_port_env(settings, "webhooks")),
        Child("scheduler", [*exe, "scheduler"], env=metrics_port_env(settings, "scheduler")),
        Child("api", [*exe, "api"], ready=lambda: _answers_ready(api_url(settings) + "/readyz")),
    ]


def metrics_port_env(settings: Settings, process: str) -> dict[str, str]:
    """Each process of the stack serves its metrics on a port of its own: its default (9101 …)
    when ``KOOPKRACHT_METRICS_PORT`` is unset, none when it is 0, else that port plus the process's
    place (worker +0, projector +1, webhooks +2, scheduler +3)."""
    port = settings.metrics_port
    if port is None:
        port = DEFAULT_METRICS_PORTS[process]
    elif port:
        port += list(DEFAULT_METRICS_PORTS).index(process)
    return {"KOOPKRACHT_METRICS_PORT": str(port)}


def restart_policy(settings: Settings) -> RestartPolicy:
    return RestartPolicy(
        max_delay_s=settings.restart_backoff_max_s,
        max_crashes=settings.restart_max_crashes,
        window_s=settings.restart_window_s,
    )


class Stack:
    def __init__(
        self,
        settings: Settings,
        progress: Callable[[str], None] = lambda _: None,
        policy: RestartPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.progress = progress
        self.policy = policy or restart_policy(settings)
        self.cluster: KafkaCluster | None = None
        self.bootstrap = settings.kafka_bootstrap or ""
        self.children: list[Child] = []
        self.supervisor: Supervisor | None = None
        self.env: dict[str, str] = {}
        self.logs = (settings.data_dir / "logs").resolve()

    @property
    def supervisor_log(self) -> Path:
        return self.logs / "supervisor.log"

    @property
    def status_file(self) -> Path:
        """Where the supervisor says how each child fares (``/readyz`` reads it)."""
        return (self.settings.data_dir / STATUS_FILE).resolve()

    def start(self, timeout: float = 120.0, stop: threading.Event | None = None) -> None:
        """Start everything and wait until the API is ready.

        Returns early, with whatever started still running (``stop`` stops it), once ``stop`` is set.
        """
        from infra.kafka import ClusterSpec, KafkaCluster, KafkaError
        from infra.kafka.topics import ensure_topics

        def stopping() -> bool:
            return stop is not None and stop.is_set()

        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        if self.settings.local_kafka:
            spec = ClusterSpec(nodes=self.settings.kafka_nodes, base_port=self.settings.kafka_base_port)
            cluster = KafkaCluster(self.settings.data_dir, spec)
            self.bootstrap = cluster.bootstrap
            if cluster.running():
                self.progress(f"using the local Kafka already running at {cluster.bootstrap}")
                cluster.wait_ready()
            else:
                try:
                    cluster.start(progress=self.progress)  # a failed start stops what it started
                except KafkaError as exc:
                    raise StackError(str(exc)) from None
                self.cluster = cluster  # we started it, so we stop it
        if stopping():
            return
        self.progress("ensuring topics")
        reports = _run_to_end(ensure_topics(self.settings.kafka_connection(self.bootstrap), self.settings.topic_prefix))
        bad = [r for r in reports if r.action == "mismatch"]
        if bad:
            raise StackError("topics differ from the registry: " + "; ".join(f"{r.name}: {r.detail}" for r in bad))
        self.progress("migrating the read model's database")
        from services.readmodel.store import upgrade

        upgrade(self.settings.sqlalchemy_url)
        if stopping():
            return
        self.env = {
            **os.environ,
            **self.settings.as_environment(),
            **self._admin_token_env(),
            "KOOPKRACHT_KAFKA_BOOTSTRAP": self.bootstrap,
        }
        self.children = services(self.settings)
        self.supervisor = Supervisor(
            self.children,
            env=self.env,
            logs=self.logs,
            status_file=self.status_file,
            policy=self.policy,
            progress=self.progress,
        )
        self.supervisor.start()
        deadline = time.monotonic() + timeout
        for child in self.children:
            while child.ready is not None and not child.ready():
                self.check()
                if stopping():
                    return
                if time.monotonic() > deadline:
                    raise StackError(f"{child.name} did not become ready within {timeout:.0f} s")
                time.sleep(0.2)

    def check(self) -> None:
        """Raise ``StackError`` when a child keeps crashing (the supervisor gave up on it)."""
        if self.supervisor is not None and self.supervisor.failure is not None:
            raise StackError(str(self.supervisor.failure))

    def child(self, name: str) -> Child:
        return next(child for child in self.children if child.name == name)

    def stop_child(self, name: str) -> None:
        """Stop one service (SIGTERM, then SIGKILL after 20 s) and keep it stopped; ``start_child`` brings it back."""
        assert self.supervisor is not None, "the stack has not started"
        self.supervisor.hold(name)

    def start_child(self, name: str) -> None:
        assert self.supervisor is not None, "the stack has not started"
        self.supervisor.resume(name)

    def _admin_token_env(self) -> dict[str, str]:
        """Without KOOPKRACHT_ADMIN_TOKEN the stack makes one, kept in a file only its owner reads."""
        if self.settings.admin_token is not None:
            return {}
        path = self.admin_token_file
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        return {"KOOPKRACHT_ADMIN_TOKEN": path.read_text().strip()}

    @property
    def admin_token(self) -> str:
        """The admin token the stack's API accepts (the configured one, or the one it made)."""
        if self.settings.admin_token is not None:
            return self.settings.admin_token.get_secret_value()
        return self._admin_token_env()["KOOPKRACHT_ADMIN_TOKEN"]

    @property
    def admin_token_file(self) -> Path:
        return (self.settings.data_dir / "admin-token").resolve()

    def banner(self) -> str:
        url = api_url(self.settings)
        lines = [f"Koopkracht is ready: the API at {url} (interactive docs at {url}/docs)", f"Kafka: {self.bootstrap}"]
        if self.settings.admin_token is None:
            lines.append(f"The admin token (KOOPKRACHT_ADMIN_TOKEN) is in {self.admin_token_file}")
        for c in self.children:
            pid = c.proc.pid if c.proc is not None else "-"
            lines.append(f"{c.name}: running (pid {pid}, log {self.logs / c.log})")
        policy = self.policy
        lines.append(
            f"A process that exits is restarted; more than {policy.max_crashes} crashes of one within "
            f"{policy.window_s:g} s stop the stack (log {self.supervisor_log})."
        )
        lines.append("Press Ctrl-C to stop.")
        return "\n".join(lines)

    def wait(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set; raise ``StackError`` when a child keeps crashing."""
        while not stop.wait(0.2):
            self.check()

    def stop(self) -> None:
        """Stop every child, then the Kafka this stack started. Each step runs even if one before failed."""
        log.info("stack.stopping", kafka=self.cluster is not None)
        try:
            if self.supervisor is not None:
                self.supervisor.stop()
        except Exception:
            log.exception("stack.stop_children_failed")
        finally:
            self.supervisor = None
            self.children = []
            if self.cluster is not None:
                try:
                    self.cluster.stop()
                    log.info("stack.kafka_stopped")
                except Exception:
                    log.exception("stack.stop_kafka_failed")
                self.cluster = None


T = TypeVar("T")


def _run_to_end(work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(work)``, also when the calling thread already runs an event loop (a program
    that embeds the stack, such as a browser driven from the same thread): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()
