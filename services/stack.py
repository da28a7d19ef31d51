"""The whole stack in one foreground process: local Kafka, topics, and every service as a child.

``koopkracht up`` uses it. It migrates the read model's database, then starts the worker, the
projector, the webhook dispatcher and the API. Children get the same settings through the environment and log to
files in the data folder (``<data dir>/logs``). If a child dies, the stack
says which and stops the rest: a half-running hub is worse than a stopped one.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infra.kafka import KafkaCluster
from services.settings import Settings


class StackError(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    argv: list[str]
    ready: Callable[[], bool] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> str:
        return f"{self.name}.log"


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
    dispatcher and the HTTP API.

    The API is ready when its ``/readyz`` is: Kafka, the database and every other process answer.
    """
    exe = [sys.executable, "-m", "services"]
    return [
        Child("worker", [*exe, "worker"]),
        Child("projector", [*exe, "projector"]),
        Child("webhooks", [*exe, "webhooks"]),
        Child("api", [*exe, "api"], ready=lambda: _answers_ready(api_url(settings) + "/readyz")),
    ]


class Stack:
    def __init__(self, settings: Settings, progress: Callable[[str], None] = lambda _: None) -> None:
        self.settings = settings
        self.progress = progress
        self.cluster: KafkaCluster | None = None
        self.bootstrap = settings.kafka_bootstrap or ""
        self.children: list[Child] = []
        self.env: dict[str, str] = {}
        self.logs = (settings.data_dir / "logs").resolve()

    def start(self, timeout: float = 120.0) -> None:
        from infra.kafka import ClusterSpec, KafkaCluster, KafkaError
        from infra.kafka.topics import ensure_topics

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
                    cluster.start(progress=self.progress)
                except KafkaError as exc:
                    raise StackError(str(exc)) from None
                self.cluster = cluster  # we started it, so we stop it
        self.progress("ensuring topics")
        reports = asyncio.run(ensure_topics(self.bootstrap, self.settings.topic_prefix))
        bad = [r for r in reports if r.action == "mismatch"]
        if bad:
            raise StackError("topics differ from the registry: " + "; ".join(f"{r.name}: {r.detail}" for r in bad))
        self.progress("migrating the read model's database")
        from services.readmodel.store import upgrade

        upgrade(self.settings.sqlalchemy_url)
        env = {
            **os.environ,
            **self.settings.as_environment(),
            **self._admin_token_env(),
            "KOOPKRACHT_KAFKA_BOOTSTRAP": self.bootstrap,
        }
        self.env = env
        for child in services(self.settings):
            self.progress(f"starting {child.name}")
            self._spawn(child)
            self.children.append(child)
        deadline = time.monotonic() + timeout
        for child in self.children:
            while child.ready is not None and not child.ready():
                self._check_children()
                if time.monotonic() > deadline:
                    raise StackError(f"{child.name} did not become ready within {timeout:.0f} s")
                time.sleep(0.2)

    def _spawn(self, child: Child) -> None:
        with open(self.logs / child.log, "ab") as log:
            child.proc = subprocess.Popen(
                child.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def child(self, name: str) -> Child:
        return next(child for child in self.children if child.name == name)

    def stop_child(self, name: str) -> None:
        """Stop one service (SIGTERM, then SIGKILL after 20 s); ``start_child`` brings it back."""
        proc = self.child(name).proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def start_child(self, name: str) -> None:
        self._spawn(self.child(name))

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

    def _check_children(self) -> None:
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None:
                tail = (self.logs / child.log).read_text(errors="replace").splitlines()[-20:]
                raise StackError(
                    f"{child.name} exited with code {child.proc.returncode}; its log ends with:\n" + "\n".join(tail)
                )

    def banner(self) -> str:
        url = api_url(self.settings)
        lines = [f"Koopkracht is ready: the API at {url} (interactive docs at {url}/docs)", f"Kafka: {self.bootstrap}"]
        if self.settings.admin_token is None:
            lines.append(f"The admin token (KOOPKRACHT_ADMIN_TOKEN) is in {self.admin_token_file}")
        lines += [f"{c.name}: running (log {self.logs / c.log})" for c in self.children]
        lines.append("Press Ctrl-C to stop.")
        return "\n".join(lines)

    def wait(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            self._check_children()

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            if child.proc is None:
                continue
            try:
                child.proc.wait(20)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait(5)
        self.children.clear()
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
