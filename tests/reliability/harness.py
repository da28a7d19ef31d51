"""The hub as deployed, for fault tests: a 3-broker Kafka and every service as its own OS process.

``Hub`` starts (or reuses) a local 3-broker cluster, creates the topics with ``koopkracht topics
ensure`` and migrates the read model (SQLite, or the database ``HubSettings.database_url`` names)
with ``koopkracht db upgrade``, then starts each service with its own command line: two workers of
one group, the projector, the webhook dispatcher, the scheduler and the API; ``HubSettings`` can ask
for more API processes (each on its own port), dispatchers and projectors. Each process logs JSON
lines (structlog) to its own file, so a test can wait for what a process says ("partitions
assigned", "tables recovered") rather than for a while.

A supervisor thread plays the deployment's restart policy: a process that exits on its own (not
one the test killed or stopped) is started again, and the exit is recorded with its log's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient

from infra.kafka import ClusterSpec, KafkaCluster
from tests.conftest import free_base_port

ROOT = Path(__file__).resolve().parents[2]
log = structlog.get_logger("koopkracht.reliability")

LogLine = dict[str, Any]


class HarnessError(AssertionError):
    """A condition the harness waited for did not come within its timeout."""


def wait_for(condition: Callable[[], Any], timeout: float, what: str | Callable[[], str], poll: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy (which is returned); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise HarnessError(
                f"timed out after {timeout:.0f} s waiting for {what if isinstance(what, str) else what()}"
            )
        time.sleep(poll)


@dataclass
class Exit:
    """A process that exited on its own (the supervisor restarted it)."""

    service: str
    code: int | None
    at: float
    log_tail: str


@dataclass
class Service:
    """One process of the hub: its command line, its log file, and the signals a test sends it."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path = ROOT
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    expected_down: bool = True
    """Set while the test holds the process down (killed or stopped on purpose)."""
    starts: int = 0
    started_at: float = 0.0

    def start(self) -> int:
        """Start the process; returns the log's size before it, to wait for lines of this run."""
        mark = self.mark()
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.cwd
            )
        self.expected_down = False
        self.starts += 1
        self.started_at = time.monotonic()
        log.info("service started", service=self.name, pid=self.proc.pid)
        return mark

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.expected_down = True
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            log.info("service killed", service=self.name, pid=self.proc.pid)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (after SIGCONT, should it be stopped), then SIGKILL for what hangs past ``timeout``."""
        self.expected_down = True
        if not self.alive():
            return
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        log.info("service stopped with SIGSTOP", service=self.name, pid=self.proc.pid)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        log.info("service continued with SIGCONT", service=self.name, pid=self.proc.pid)

    # -- the log -----------------------------------------------------------------------------
    def mark(self) -> int:
        """The log's current size: lines after it are lines written from now on."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def lines(self, since: int = 0) -> list[LogLine]:
        """The JSON lines logged after byte ``since`` (other lines as ``{"event": <text>}``)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                raw = f.read()
        except FileNotFoundError:
            return []
        out: list[LogLine] = []
        for text in raw.decode(errors="replace").splitlines():
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            out.append(parsed if isinstance(parsed, dict) else {"event": text})
        return out

    def find(self, event: str, since: int = 0, where: Callable[[LogLine], bool] = lambda _: True) -> list[LogLine]:
        return [line for line in self.lines(since) if line.get("event") == event and where(line)]

    def wait_log(
        self, event: str, since: int, timeout: float, where: Callable[[LogLine], bool] = lambda _: True
    ) -> LogLine:
        """The first line ``event`` logged after ``since`` for which ``where`` holds."""
        found: LogLine = wait_for(
            lambda: next(iter(self.find(event, since, where)), None),
            timeout,
            lambda: f"{self.name} to log {event!r}; its log ends with:\n{self.tail()}",
        )
        return found

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def assigned_partitions(line: LogLine) -> set[int]:
    return set(line.get("partitions") or ())


@dataclass
class HubSettings:
    workers: int = 2
    apis: int = 1
    """API processes, on consecutive ports: ``api``, ``api-2`` …"""
    dispatchers: int = 1
    """Webhook dispatchers: ``webhooks``, ``webhooks-2`` …"""
    projectors: int = 1
    """Projectors: ``projector``, ``projector-2`` … (one writes, the others wait)."""
    database_url: str | None = None
    """The read model's database; a SQLite file in the hub's folder when None."""
    command_timeout_s: float = 10.0
    extra_env: dict[str, str] = field(default_factory=dict)
    code_root: Path | None = None
    """Run the services from this source tree (another checkout) instead of this one."""

    @property
    def cwd(self) -> Path:
        return (self.code_root or ROOT).resolve()


class Hub:
    """The whole hub as separate processes; see the module docstring. Use as a context manager."""

    def __init__(self, root: Path, cluster: KafkaCluster | None = None, settings: HubSettings | None = None) -> None:
        self.root = root.resolve()
        self.settings = settings or HubSettings()
        self.cluster = cluster
        self._own_cluster = cluster is None
        self.prefix = f"rel{uuid.uuid4().hex[:8]}"
        self.admin_token = f"admin-{uuid.uuid4().hex}"
        self.api_port = free_base_port(self.settings.apis)
        """The first API's port; API ``i`` (from 0) listens on ``api_port + i``."""
        self.logs = self.root / "logs"
        self.services: dict[str, Service] = {}
        self.exits: list[Exit] = []
        self._lock = threading.RLock()
        self._supervising = threading.Event()
        self._supervisor: threading.Thread | None = None

    # -- the cluster -------------------------------------------------------------------------
    @staticmethod
    def new_cluster(root: Path) -> KafkaCluster:
        cluster = KafkaCluster(root.resolve(), ClusterSpec(nodes=3, base_port=free_base_port(6)))
        cluster.start(timeout=120)
        return cluster

    @property
    def bootstrap(self) -> str:
        assert self.cluster is not None
        return self.cluster.bootstrap

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def api_urls(self) -> list[str]:
        """Every API process's address, the first one's (``base_url``) first."""
        return [f"http://127.0.0.1:{self.api_port + i}" for i in range(self.settings.apis)]

    @property
    def database_url(self) -> str:
        return self.settings.database_url or f"sqlite:///{self.root / 'readmodel.db'}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "KOOPKRACHT_KAFKA_BOOTSTRAP": self.bootstrap,
            "KOOPKRACHT_DATA_DIR": str(self.root / "data"),
            "KOOPKRACHT_DATABASE_URL": self.database_url,
            "KOOPKRACHT_ADMIN_TOKEN": self.admin_token,
            "KOOPKRACHT_TOPIC_PREFIX": self.prefix,
            "KOOPKRACHT_API_PORT": str(self.api_port),
            "KOOPKRACHT_LOG_FORMAT": "json",
            "KOOPKRACHT_LOG_LEVEL": "info",
            "KOOPKRACHT_COMMAND_TIMEOUT_S": str(self.settings.command_timeout_s),
            **({"PYTHONPATH": str(self.settings.cwd)} if self.settings.code_root else {}),
            **self.settings.extra_env,
        }

    def koopkracht(self, *args: str, timeout: float = 120) -> str:
        """Run one ``koopkracht`` command to its end (``python -m services ...``); its output."""
        done = subprocess.run(
            [sys.executable, "-m", "services", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.settings.cwd,
            check=False,
        )
        if done.returncode != 0:
            raise HarnessError(f"koopkracht {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done.stdout + done.stderr

    # -- start and stop ----------------------------------------------------------------------
    def start(self, timeout: float = 120) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        if self.cluster is None:
            self.cluster = self.new_cluster(self.root / "kafka")
        else:
            self.cluster.start(timeout=120)  # restarts any node a previous scenario left down
        self.koopkracht("topics", "ensure")
        self.koopkracht("db", "upgrade")
        exe = [sys.executable, "-m", "services"]
        env = self.env()

        def name(kind: str, i: int) -> str:
            return kind if i == 0 else f"{kind}-{i + 1}"

        commands: list[tuple[str, list[str]]] = [
            *[(f"worker-{i + 1}", [*exe, "worker"]) for i in range(self.settings.workers)],
            *[(name("projector", i), [*exe, "projector"]) for i in range(self.settings.projectors)],
            *[(name("webhooks", i), [*exe, "webhooks"]) for i in range(self.settings.dispatchers)],
            ("scheduler", [*exe, "scheduler"]),
            *[(name("api", i), [*exe, "api", "--port", str(self.api_port + i)]) for i in range(self.settings.apis)],
        ]
        for name, argv in commands:
            self.services[name] = Service(name, argv, env, self.logs / f"{name}.log", self.settings.cwd)
        for service in self.services.values():
            service.start()
        self._supervising.set()
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._supervisor.start()
        for worker in self.workers():
            worker.wait_log("tables recovered", 0, timeout)
        self.wait_ready(timeout)

    def stop(self) -> None:
        """Stop every process and, when the hub started it, the cluster. Never raises."""
        self._supervising.clear()
        if self._supervisor is not None:
            self._supervisor.join(5)
        for service in reversed(list(self.services.values())):
            try:
                service.stop()
            except Exception as exc:  # keep stopping the rest
                log.error("service did not stop", service=service.name, error=repr(exc))
        if self.cluster is not None and self._own_cluster:
            try:
                self.cluster.stop()
            except Exception as exc:
                log.error("cluster did not stop", error=repr(exc))

    def __enter__(self) -> Hub:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _supervise(self) -> None:
        while self._supervising.is_set():
            with self._lock:
                for service in self.services.values():
                    if service.expected_down or service.proc is None or service.proc.poll() is None:
                        continue
                    code = service.proc.returncode
                    self.exits.append(Exit(service.name, code, time.monotonic(), service.tail(80)))
                    log.warning("service exited on its own; restarting it", service=service.name, code=code)
                    service.start()
            time.sleep(0.2)

    # -- the processes ------------------------------------------------------------------------
    def workers(self) -> list[Service]:
        return [s for name, s in self.services.items() if name.startswith("worker-")]

    def add_worker(self) -> tuple[Service, int]:
        """Start one more worker of the group; returns it and its log mark."""
        with self._lock:
            name = f"worker-{len(self.workers()) + 1}"
            argv = [sys.executable, "-m", "services", "worker"]
            service = Service(name, argv, self.env(), self.logs / f"{name}.log", self.settings.cwd)
            self.services[name] = service
            return service, service.start()

    def kill(self, name: str) -> None:
        with self._lock:
            self.services[name].kill()

    def restart(self, name: str) -> int:
        """Start a process the test killed; returns the log mark of the new run."""
        with self._lock:
            service = self.services[name]
            if service.alive():
                service.kill()
            return service.start()

    def ready(self, url: str | None = None) -> bool:
        """Whether the API at ``url`` (the first one by default) answers 200 on /readyz."""
        try:
            with urllib.request.urlopen((url or self.base_url) + "/readyz", timeout=3) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.HTTPError):
            return False

    def wait_ready(self, timeout: float = 90) -> None:
        """Until every API process answers 200 on /readyz."""
        for url in self.api_urls:
            wait_for(lambda: self.ready(url), timeout, lambda: f"{url}/readyz to answer 200\n" + self.tails(), poll=0.2)

    def tails(self, lines: int = 15) -> str:
        return "\n".join(f"--- {s.name}\n{s.tail(lines)}" for s in self.services.values())

    # -- Kafka facts -------------------------------------------------------------------------
    def topic(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    def leaders(self, suffix: str) -> dict[int, int]:
        """Partition -> node id of its leader (node ids are 1-based: node index + 1)."""

        async def describe() -> dict[int, int]:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.live_bootstrap())
            await admin.start()
            try:
                (description,) = await admin.describe_topics([self.topic(suffix)])
                return {p["partition"]: p["leader"] for p in description["partitions"]}
            finally:
                await admin.close()

        return asyncio.run(describe())

    def coordinator(self, group_suffix: str = "worker") -> int:
        """The node id of the group coordinator of ``<prefix>-<group_suffix>``."""

        async def find() -> int:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.live_bootstrap())
            await admin.start()
            try:
                return int(await admin.find_coordinator(f"{self.prefix}-{group_suffix}"))
            finally:
                await admin.close()

        return asyncio.run(find())

    def live_bootstrap(self) -> str:
        assert self.cluster is not None
        return ",".join(f"127.0.0.1:{n.broker_port}" for n in self.cluster.status() if n.alive)

    def kill_broker(self, node_id: int) -> None:
        assert self.cluster is not None
        self.cluster.kill_node(node_id - 1)
        log.info("broker killed", node=node_id)

    def restart_brokers(self, timeout: float = 120) -> None:
        assert self.cluster is not None
        self.cluster.start(timeout=timeout)
        log.info("brokers running", bootstrap=self.bootstrap)


@contextlib.contextmanager
def paused(service: Service) -> Iterator[None]:
    """SIGSTOP the process for the block; SIGCONT it after, whatever happens."""
    service.pause()
    try:
        yield
    finally:
        if service.alive():
            service.resume()
