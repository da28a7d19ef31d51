"""Start, watch and stop a real Apache Kafka cluster (KRaft, combined broker+controller) on loopback.

The broker jars are the ones pinned in ``infra/kafka/pom.xml``; Maven fetches them once into an
ignored cache folder. One node or three: each node gets its own folder under the data directory
with its ``server.properties``, its log4j2 configuration, its log files and a pid file, so that
``koopkracht kafka stop`` from another shell can stop a cluster that ``kafka start`` left running.

A cluster may also get a SASL_SSL listener for clients (``SaslSslListener``: TLS from a PEM
certificate chain and key, users who sign in with PLAIN or SCRAM), as a secured production
cluster has; the nodes keep talking to each other, and the launcher keeps probing them, over
their plaintext listener on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

POM = Path(__file__).with_name("pom.xml")
DEFAULT_CACHE = Path(__file__).with_name(".cache")
LOOPBACK = "127.0.0.1"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class KafkaError(RuntimeError):
    """The local Kafka could not be fetched, started, reached or stopped; the message says why."""


def cache_dir() -> Path:
    return Path(os.environ.get("KOOPKRACHT_KAFKA_CACHE", str(DEFAULT_CACHE)))


def ensure_jars(progress: Progress = _quiet) -> Path:
    """Fetch the pinned broker and its runtime with Maven, once per version of the pom.

    Returns the folder that holds the jars. Idempotent: a stamp with the pom's hash says the
    folder is complete, so an interrupted download is repeated rather than trusted.
    """
    libs = cache_dir() / "libs"
    stamp = cache_dir() / "libs.sha256"
    wanted = hashlib.sha256(POM.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == wanted and any(libs.glob("kafka_*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaError("Maven ('mvn') is not on PATH; it is needed once to fetch the Kafka jars")
    progress("fetching the pinned Apache Kafka jars with Maven (once)")
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise KafkaError("Maven could not fetch the Kafka jars:\n" + (done.stdout + done.stderr)[-3000:])
    stamp.write_text(wanted)
    return libs


SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
SASL_MECHANISMS = ("PLAIN", *SCRAM_MECHANISMS)
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
"""User names and passwords the JAAS and SCRAM notations take without quoting."""


@dataclass(frozen=True)
class SaslSslListener:
    """A listener for clients that speaks TLS and asks for a SASL user, besides the plaintext one.

    Node ``i`` listens on ``base_port + i``. The certificate chain (the node's certificate, then
    any intermediates) and its PKCS#8 private key are PEM files; every node presents the same
    certificate, so it names 127.0.0.1 (the address the nodes advertise). ``users`` sign in with
    any of ``mechanisms``: PLAIN users live in the listener's JAAS configuration, SCRAM users are
    written into the cluster's metadata when its storage is formatted (a cluster formatted
    before keeps its SCRAM users).
    """

    base_port: int
    certificate_chain: Path
    private_key: Path
    users: tuple[tuple[str, str], ...]
    """(name, password) pairs."""
    mechanisms: tuple[str, ...] = SASL_MECHANISMS

    def __post_init__(self) -> None:
        unknown = set(self.mechanisms) - set(SASL_MECHANISMS)
        if not self.mechanisms or unknown:
            raise KafkaError(f"SASL mechanisms are some of {SASL_MECHANISMS}, not {sorted(unknown) or 'none'}")
        for name, password in self.users:
            if not _SAFE.match(name) or not _SAFE.match(password):
                raise KafkaError(f"SASL user {name!r}: names and passwords are letters, digits, '.', '_' and '-'")

    def port(self, index: int) -> int:
        return self.base_port + index

    def properties(self, index: int) -> dict[str, object]:
        """What ``server.properties`` says for this listener (named SECURE) on node ``index``."""
        prefix = "listener.name.secure."
        props: dict[str, object] = {
            f"{prefix}sasl.enabled.mechanisms": ",".join(self.mechanisms),
            f"{prefix}ssl.keystore.type": "PEM",
            f"{prefix}ssl.keystore.certificate.chain": _pem(self.certificate_chain),
            f"{prefix}ssl.keystore.key": _pem(self.private_key),
        }
        if "PLAIN" in self.mechanisms:
            users = " ".join(f'user_{name}="{password}"' for name, password in self.users)
            props[f"{prefix}plain.sasl.jaas.config"] = (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
            )
        for mechanism in self.mechanisms:
            if mechanism in SCRAM_MECHANISMS:
                props[f"{prefix}{mechanism.lower()}.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                )
        return props

    def format_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments that create the SCRAM users."""
        return [
            f"--add-scram={mechanism}=[name={name},password={password}]"
            for mechanism in self.mechanisms
            if mechanism in SCRAM_MECHANISMS
            for name, password in self.users
        ]


def _pem(path: Path) -> str:
    # A properties value on one line: Java's Properties reads "\n" back as a line break.
    text = path.read_text().strip()
    if "-----BEGIN" not in text:
        raise KafkaError(f"{path} is not a PEM file")
    return text.replace("\n", "\\n")


@dataclass(frozen=True)
class ClusterSpec:
    """The shape of a local cluster: how many nodes and from which port on.

    Node ``i`` (0-based) listens for clients on ``base_port + 2i`` and for the controller
    quorum on ``base_port + 2i + 1``; with ``secure``, for clients also on its SASL_SSL port.
    """

    nodes: int = 1
    base_port: int = 19092
    heap: str = "512m"
    secure: SaslSslListener | None = None

    def __post_init__(self) -> None:
        if self.nodes not in (1, 3):
            raise KafkaError(f"a local cluster has 1 or 3 nodes, not {self.nodes}")

    def broker_port(self, index: int) -> int:
        return self.base_port + 2 * index

    def controller_port(self, index: int) -> int:
        return self.base_port + 2 * index + 1

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{LOOPBACK}:{self.broker_port(i)}" for i in range(self.nodes))

    @property
    def secure_bootstrap(self) -> str:
        """The SASL_SSL listeners' addresses (what a client of a secured cluster connects to)."""
        if self.secure is None:
            raise KafkaError("this cluster has no SASL_SSL listener")
        return ",".join(f"{LOOPBACK}:{self.secure.port(i)}" for i in range(self.nodes))

    def ports(self, index: int) -> list[int]:
        """Every port node ``index`` listens on."""
        ports = [self.broker_port(index), self.controller_port(index)]
        if self.secure is not None:
            ports.append(self.secure.port(index))
        return ports


def _server_properties(spec: ClusterSpec, index: int, log_dir: Path) -> str:
    voters = ",".join(f"{i + 1}@{LOOPBACK}:{spec.controller_port(i)}" for i in range(spec.nodes))
    replication = 3 if spec.nodes == 3 else 1
    min_isr = 2 if spec.nodes == 3 else 1
    listeners = [f"PLAINTEXT://{LOOPBACK}:{spec.broker_port(index)}"]
    protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    if spec.secure is not None:
        listeners.append(f"SECURE://{LOOPBACK}:{spec.secure.port(index)}")
        protocols.append("SECURE:SASL_SSL")
    props: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": index + 1,
        "controller.quorum.voters": voters,
        "listeners": ",".join([*listeners, f"CONTROLLER://{LOOPBACK}:{spec.controller_port(index)}"]),
        "advertised.listeners": ",".join(listeners),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": ",".join(protocols),
        "log.dirs": str(log_dir),
        "num.partitions": 1,
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": 12,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": 12,
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        # Tests and the demo start consumer groups all the time; nobody waits for stragglers.
        "group.initial.rebalance.delay.ms": 0,
        # Topics come from the registry (`koopkracht topics ensure`) or from faust's own
        # declarations, never from a typo in a producer.
        "auto.create.topics.enable": "false",
        "log.retention.hours": -1,
        "unclean.leader.election.enable": "false",
    }
    if spec.secure is not None:
        props |= spec.secure.properties(index)
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _log4j2(node_dir: Path) -> str:
    return (
        "status = warn\n"
        "appender.file.type = File\n"
        "appender.file.name = file\n"
        f"appender.file.fileName = {node_dir / 'server.log'}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.file.ref = file\n"
        "logger.state.name = state.change.logger\n"
        "logger.state.level = WARN\n"
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _pid_alive(pid: int, node_dir: str) -> bool:
    """True when ``pid`` runs and is the broker of this node folder (not a recycled pid)."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    try:
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except IndexError:
        return False
    return _node_argument(node_dir).encode() in arguments


def _node_argument(node_dir: str) -> str:
    # Marks the process as this node's, so status and stop never touch another process.
    return f"-Dkoopkracht.node={node_dir}"


@dataclass
class NodeStatus:
    index: int
    pid: int | None
    alive: bool
    broker_port: int


class KafkaCluster:
    """A local Kafka cluster whose files live under ``data_dir/kafka``."""

    def __init__(self, data_dir: Path, spec: ClusterSpec | None = None) -> None:
        self.root = Path(data_dir).resolve() / "kafka"
        saved = self.saved_spec()
        self.spec = spec or saved or ClusterSpec()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    # -- files -----------------------------------------------------------------------------
    def saved_spec(self) -> ClusterSpec | None:
        path = self.root / "cluster.json"
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        return ClusterSpec(nodes=raw["nodes"], base_port=raw["base_port"], heap=raw["heap"])

    def node_dir(self, index: int) -> Path:
        return self.root / f"node-{index + 1}"

    def _pid(self, index: int) -> int | None:
        path = self.node_dir(index) / "pid"
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def bootstrap(self) -> str:
        return self.spec.bootstrap

    def log_tail(self, index: int, lines: int = 30) -> str:
        out = []
        for name in ("stdout.log", "server.log"):
            path = self.node_dir(index) / name
            if path.exists():
                out.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(out[-lines:])

    # -- status ----------------------------------------------------------------------------
    def status(self) -> list[NodeStatus]:
        result = []
        for i in range(self.spec.nodes):
            pid = self._pid(i)
            proc = self._procs.get(i)
            if proc is not None and proc.pid == pid:
                # Our own child: ask it directly (its /proc entry changes while the JVM starts).
                alive = proc.poll() is None
            else:
                alive = pid is not None and _pid_alive(pid, str(self.node_dir(i)))
            result.append(NodeStatus(i, pid, alive, self.spec.broker_port(i)))
        return result

    def running(self) -> bool:
        return any(n.alive for n in self.status())

    # -- start -----------------------------------------------------------------------------
    def start(self, timeout: float = 90.0, progress: Progress = _quiet) -> None:
        """Start every node that is not running yet and wait until the cluster answers."""
        saved = self.saved_spec()
        reshaped = saved is not None and (saved.nodes, saved.base_port) != (self.spec.nodes, self.spec.base_port)
        if saved is not None and reshaped and KafkaCluster(self.root.parent, saved).running():
            raise KafkaError(
                f"a {saved.nodes}-node cluster from port {saved.base_port} already runs from {self.root}; "
                "stop it first (`koopkracht kafka stop`)"
            )
        libs = ensure_jars(progress)
        self.root.mkdir(parents=True, exist_ok=True)
        cluster_id_file = self.root / "cluster-id"
        if reshaped:
            # A different shape cannot reuse formatted storage.
            for i in range(3):
                shutil.rmtree(self.node_dir(i), ignore_errors=True)
            cluster_id_file.unlink(missing_ok=True)
        if not cluster_id_file.exists():
            cluster_id_file.write_text(_cluster_id())
        cluster_id = cluster_id_file.read_text().strip()
        (self.root / "cluster.json").write_text(
            json.dumps({"nodes": self.spec.nodes, "base_port": self.spec.base_port, "heap": self.spec.heap})
        )
        to_start = [n.index for n in self.status() if not n.alive]
        for i in to_start:
            for port in self.spec.ports(i):
                if not _port_free(port):
                    raise KafkaError(
                        f"port {port} on {LOOPBACK} is in use; another Kafka may be running "
                        "(see `koopkracht kafka status`), or choose other ports"
                    )
        formats = []
        for i in to_start:
            node = self.node_dir(i)
            data = node / "data"
            data.mkdir(parents=True, exist_ok=True)
            (node / "server.properties").write_text(_server_properties(self.spec, i, data))
            (node / "server.properties").chmod(0o600)  # a secure listener's key and users are in it
            (node / "log4j2.properties").write_text(_log4j2(node))
            if not (data / "meta.properties").exists():
                formats.append(
                    subprocess.Popen(
                        [
                            *self._java(libs, i, "kafka.tools.StorageTool"),
                            "format",
                            f"--cluster-id={cluster_id}",
                            "-c",
                            str(node / "server.properties"),
                            "--ignore-formatted",
                            *(self.spec.secure.format_arguments() if self.spec.secure is not None else []),
                        ],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                    )
                )
        if formats:
            progress("formatting KRaft storage")
        for proc in formats:
            try:
                out, _ = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise KafkaError("formatting KRaft storage did not finish within 120 s") from None
            if proc.returncode != 0:
                raise KafkaError("formatting KRaft storage failed:\n" + out.decode(errors="replace")[-3000:])
        for i in to_start:
            node = self.node_dir(i)
            with open(node / "stdout.log", "ab") as log:
                proc = subprocess.Popen(
                    [*self._java(libs, i, "kafka.Kafka"), str(node / "server.properties")],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            self._procs[i] = proc
            (node / "pid").write_text(str(proc.pid))
        progress(f"waiting for {self.spec.nodes} broker(s) at {self.bootstrap}")
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop(only=to_start)  # leave nothing half-started behind; nodes that ran stay
            raise

    def _java(self, libs: Path, index: int, main: str) -> list[str]:
        node = self.node_dir(index)
        java = shutil.which("java")
        if java is None:
            raise KafkaError("Java ('java', 17 or newer) is not on PATH; the local Kafka needs it")
        return [
            java,
            "-Xms128m",
            f"-Xmx{self.spec.heap}",
            "-XX:+UseG1GC",
            # Short-lived tools start faster without the optimising compiler.
            *(["-XX:TieredStopAtLevel=1"] if main != "kafka.Kafka" else []),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={node / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={node}",
            _node_argument(str(node)),
            "-cp",
            str(libs / "*"),
            main,
        ]

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until every node runs and the cluster reports all its brokers in metadata."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            for node in self.status():
                if not node.alive:
                    raise KafkaError(
                        f"Kafka node {node.index + 1} is not running; its log ends with:\n" + self.log_tail(node.index)
                    )
            try:
                brokers = asyncio.run(_broker_count(self.bootstrap))
                if brokers == self.spec.nodes:
                    return
                last_error = f"{brokers} of {self.spec.nodes} brokers registered"
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.25)
        raise KafkaError(f"Kafka did not become ready within {timeout:.0f} s ({last_error})")

    # -- stop ------------------------------------------------------------------------------
    def kill_node(self, index: int) -> None:
        """SIGKILL one node, as a crash would (for failure tests)."""
        pid = self._pid(index)
        if pid is not None and _pid_alive(pid, str(self.node_dir(index))):
            os.kill(pid, signal.SIGKILL)
            self._reap(index, pid, 10)

    def stop(self, timeout: float = 30.0, only: list[int] | None = None) -> None:
        """Stop every node (or ``only`` these): SIGTERM, then SIGKILL for what hangs past ``timeout``."""
        pids = {
            n.index: n.pid for n in self.status() if n.alive and n.pid is not None and (only is None or n.index in only)
        }
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for index, pid in pids.items():
            self._reap(index, pid, max(0.1, deadline - time.monotonic()))
        for index in range(self.spec.nodes):
            if only is None or index in only:
                (self.node_dir(index) / "pid").unlink(missing_ok=True)

    def _reap(self, index: int, pid: int, timeout: float) -> None:
        marker = str(self.node_dir(index))
        proc = self._procs.pop(index, None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return
            if proc is None and not _pid_alive(pid, marker):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(10)
            return
        deadline = time.monotonic() + 10
        while _pid_alive(pid, marker):
            if time.monotonic() > deadline:
                raise KafkaError(f"Kafka node {index + 1} (pid {pid}) did not exit after SIGKILL")
            time.sleep(0.05)

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cluster_id() -> str:
    """A fresh KRaft cluster id, as Kafka's own `Uuid.randomUuid` makes one.

    URL-safe base64 of a random UUID; like Kafka, draw again when it starts with "-", which
    the storage tool's argument parser would take for an option (1 start in 64).
    """
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


async def _broker_count(bootstrap: str) -> int:
    import logging

    from aiokafka.admin import AIOKafkaAdminClient

    # While the broker boots, "connection refused" is expected, not an error worth printing.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    await asyncio.wait_for(admin.start(), 5)
    try:
        cluster = await asyncio.wait_for(admin.describe_cluster(), 5)
        return len(cluster["brokers"])
    finally:
        await admin.close()
        logging.getLogger("aiokafka").setLevel(logging.NOTSET)
