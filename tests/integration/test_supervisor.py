"""``koopkracht up`` keeps the hub up: a crashed process is restarted, one that keeps crashing
stops the stack, and a signal stops everything even when nobody reads the output any more.

The first tests run the supervisor on small Python children (no Kafka); the others run the real
``koopkracht up`` as a subprocess, as an operator would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.kafka import KafkaCluster
from services.supervisor import STATUS_FILE, Child, RestartPolicy, Supervisor
from tests.conftest import free_base_port
from tests.reliability.harness import wait_for as eventually

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def status(data_dir: Path) -> dict[str, Any]:
    return json.loads((data_dir / STATUS_FILE).read_text())


# -- the supervisor, on small children -------------------------------------------------------

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
FAILING = [sys.executable, "-c", "print('boom: the database is gone', flush=True); raise SystemExit(3)"]


@contextlib.contextmanager
def supervising(tmp_path: Path, children: list[Child], policy: RestartPolicy) -> Iterator[Supervisor]:
    tmp_path.joinpath("logs").mkdir()
    supervisor = Supervisor(
        children,
        env=dict(os.environ),
        logs=tmp_path / "logs",
        status_file=tmp_path / STATUS_FILE,
        policy=policy,
        interval_s=0.02,
    )
    supervisor.start()
    try:
        yield supervisor
    finally:
        supervisor.stop(timeout_s=5)


def test_a_child_that_keeps_crashing_is_given_up_on_naming_it_and_its_log(tmp_path: Path) -> None:
    # Given a steady child and one that fails at once, under at most 3 crashes per minute
    steady, failing = Child("steady", SLEEPER), Child("failing", FAILING)
    policy = RestartPolicy(first_delay_s=0.05, max_delay_s=0.2, max_crashes=3, window_s=60)
    with supervising(tmp_path, [steady, failing], policy) as supervisor:
        steady_pid = steady.proc.pid  # type: ignore[union-attr]
        # When the failing child has crashed once more than allowed
        failure = eventually(lambda: supervisor.failure, 30, "the supervisor to give up")
        # Then the supervisor names it, its last exit, its log file and the log's last lines
        message = str(failure)
        assert "failing keeps crashing: 4 crashes within 60 s, the last with exit code 3" in message
        assert str(tmp_path / "logs" / "failing.log") in message
        assert "boom: the database is gone" in message
        # And the status file says so; it was restarted 3 times, the steady child never
        processes = status(tmp_path)["processes"]
        assert processes["failing"]["state"] == "given-up"
        assert (processes["failing"]["restarts"], processes["failing"]["last_exit_code"]) == (3, 3)
        assert (processes["steady"]["state"], processes["steady"]["restarts"]) == ("running", 0)
        assert processes["steady"]["pid"] == steady_pid
    # And stopping leaves no child running and no status file behind
    assert not alive(steady_pid)
    assert not (tmp_path / STATUS_FILE).exists()


def test_a_killed_child_is_restarted_and_one_stopped_on_purpose_is_not(tmp_path: Path) -> None:
    # Given two steady children
    first, second = Child("first", SLEEPER), Child("second", SLEEPER)
    with supervising(tmp_path, [first, second], RestartPolicy(first_delay_s=0.05)) as supervisor:
        killed = second.proc.pid  # type: ignore[union-attr]
        # When the second is SIGKILLed
        os.kill(killed, signal.SIGKILL)
        # Then it runs again under a new pid, and the status file counts one restart and says why
        restarted = eventually(
            lambda: (p := status(tmp_path)["processes"]["second"])["restarts"] == 1 and p["state"] == "running" and p,
            10,
            "the second child to be restarted",
        )
        assert restarted["pid"] not in (None, killed)
        assert alive(restarted["pid"])
        assert (restarted["last_exit_code"], restarted["last_signal"]) == (None, "SIGKILL")
        assert restarted["last_restart_at"] is not None
        # When the first is stopped on purpose
        held = first.proc.pid  # type: ignore[union-attr]
        supervisor.hold("first")
        # Then it stays stopped, whatever the supervisor looks at
        for _ in range(5):
            supervisor.tick()
        assert not alive(held)
        held_status = status(tmp_path)["processes"]["first"]
        assert (held_status["state"], held_status["restarts"], held_status["pid"]) == ("stopped", 0, None)
        # And when it is resumed, it runs again without counting as a restart
        supervisor.resume("first")
        resumed = status(tmp_path)["processes"]["first"]
        assert (resumed["state"], resumed["restarts"]) == ("running", 0)
        assert alive(resumed["pid"])
        assert supervisor.failure is None


# -- koopkracht up ---------------------------------------------------------------------------


def up_environment(data_dir: Path, api_port: int, **settings: str) -> dict[str, str]:
    """The environment of ``koopkracht up``: this test's data folder and port, nothing from the caller's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOOPKRACHT_") or k == "KOOPKRACHT_KAFKA_CACHE"}
    return {
        **env,
        "KOOPKRACHT_DATA_DIR": str(data_dir),
        "KOOPKRACHT_API_PORT": str(api_port),
        "KOOPKRACHT_TOPIC_PREFIX": f"up{uuid.uuid4().hex[:8]}",
        "KOOPKRACHT_ADMIN_TOKEN": f"admin-{uuid.uuid4().hex}",
        "KOOPKRACHT_LOG_FORMAT": "json",
        "COLUMNS": "200",
        **settings,
    }


def readyz(port: int) -> tuple[int, dict[str, Any]] | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    except httpx.HTTPError:
        return None
    return response.status_code, response.json()


def logs_of(data_dir: Path, lines: int = 15) -> str:
    out = []
    for path in sorted((data_dir / "logs").glob("*.log")):
        out.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
    return "\n".join(out)


def wait_ready(
    up: subprocess.Popen[bytes], port: int, data_dir: Path, said: Callable[[], str], timeout: float = 120
) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        assert up.poll() is None, f"koopkracht up exited with {up.returncode}:\n{said()}\n{logs_of(data_dir)}"
        answer = readyz(port)
        return answer[1] if answer is not None and answer[0] == 200 else None

    return eventually(ready, timeout, lambda: f"/readyz to answer 200:\n{said()}\n{logs_of(data_dir)}")


def stop_for_good(up: subprocess.Popen[bytes], data_dir: Path) -> None:
    """After a test: whatever it left running (nothing, when it passed) is killed."""
    if up.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(up.pid, signal.SIGKILL)
        up.wait(10)
    with contextlib.suppress(OSError, json.JSONDecodeError, KeyError):
        for process in status(data_dir)["processes"].values():
            if process["pid"] and alive(process["pid"]):
                os.kill(process["pid"], signal.SIGKILL)
    cluster = KafkaCluster(data_dir)
    if cluster.running():
        cluster.stop(timeout=10)


@pytest.mark.slow
def test_up_restarts_a_killed_projector_and_readyz_counts_the_restart(kafka_bootstrap: str, tmp_path: Path) -> None:
    # Given `koopkracht up` on the session's Kafka, ready
    port = free_base_port(1)
    console = tmp_path / "console.txt"
    with console.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "services", "up"],
            env=up_environment(tmp_path, port, KOOPKRACHT_KAFKA_BOOTSTRAP=kafka_bootstrap),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        before = wait_ready(up, port, tmp_path, lambda: console.read_text(errors="replace"))
        assert before["processes"] is not None
        assert {name: (p["state"], p["restarts"]) for name, p in before["processes"].items()} == {
            name: ("running", 0) for name in ("worker", "projector", "webhooks", "scheduler", "api")
        }
        assert "pid" not in before["processes"]["projector"]  # /readyz is public: no pids
        # And /readyz?own=true (a load balancer's question) asks only what the API needs to serve
        own = httpx.get(f"http://127.0.0.1:{port}/readyz", params={"own": "true"}, timeout=5)
        assert (own.status_code, sorted(own.json()["checks"])) == (200, ["database", "kafka"])
        projector = status(tmp_path)["processes"]["projector"]["pid"]

        # When the projector is SIGKILLed
        os.kill(projector, signal.SIGKILL)

        # Then /readyz is ready again with the projector restarted once, and nothing else restarted
        def restarted_and_ready() -> dict[str, Any] | None:
            answer = readyz(port)
            if answer is None or answer[0] != 200 or answer[1]["processes"]["projector"]["restarts"] != 1:
                return None
            return answer[1]

        after = eventually(restarted_and_ready, 90, lambda: f"the projector to be back\n{logs_of(tmp_path)}")
        assert after["processes"]["projector"]["last_signal"] == "SIGKILL"
        assert after["processes"]["projector"]["state"] == "running"
        assert {name: p["restarts"] for name, p in after["processes"].items()} == {
            "worker": 0,
            "projector": 1,
            "webhooks": 0,
            "scheduler": 0,
            "api": 0,
        }
        assert after["checks"]["processes"] == "ok: 5 running, 1 restart(s)"
        assert after["checks"]["projector"].startswith("ok")
        new_pid = status(tmp_path)["processes"]["projector"]["pid"]
        assert new_pid != projector
        assert alive(new_pid)
        # And the supervisor's log says which process exited how, the attempt and the delay
        lines = [json.loads(line) for line in (tmp_path / "logs" / "supervisor.log").read_text().splitlines()]
        exited = next(line for line in lines if line["event"] == "supervisor.child_exited")
        assert (exited["child"], exited["signal"], exited["attempt"], exited["delay_s"]) == (
            "projector",
            "SIGKILL",
            1,
            0.5,
        )
        assert any(line["event"] == "supervisor.child_restarted" and line["pid"] == new_pid for line in lines)
        # And so does the console
        eventually(
            lambda: (
                "projector exited (killed by SIGKILL); restarting it in 0.5 s (attempt 1)"
                in console.read_text(errors="replace")
            ),
            10,
            "the console to tell of the restart",
        )

        # When `up` gets SIGTERM
        pids = [p["pid"] for p in status(tmp_path)["processes"].values()]
        up.send_signal(signal.SIGTERM)
        # Then it exits cleanly, with every child gone and the status file removed
        assert up.wait(60) == 0, console.read_text(errors="replace")[-3000:]
        assert not [pid for pid in pids if alive(pid)]
        assert not (tmp_path / STATUS_FILE).exists()
    finally:
        stop_for_good(up, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "how",
    [
        pytest.param("ctrl-c", id="SIGINT to the process group, as Ctrl-C in a terminal"),
        pytest.param("sigterm", id="SIGTERM to koopkracht up alone"),
    ],
)
def test_up_stops_kafka_and_every_child_when_its_output_pipe_is_closed(how: str, tmp_path: Path) -> None:
    # Given `koopkracht up` with a local Kafka of its own, its output (stdout and stderr) going
    # into a pipe, as in `koopkracht up 2>&1 | tee log`
    base = free_base_port(3)  # Kafka's client and controller ports, then the API's
    reader, writer = os.pipe()
    up = subprocess.Popen(
        [sys.executable, "-m", "services", "up"],
        env=up_environment(tmp_path, base + 2, KOOPKRACHT_KAFKA_BASE_PORT=str(base)),
        cwd=ROOT,
        stdout=writer,
        stderr=writer,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(writer)
    os.set_blocking(reader, False)
    said = bytearray()

    def output() -> str:
        with contextlib.suppress(BlockingIOError):
            said.extend(os.read(reader, 1 << 16))
        return said.decode(errors="replace")

    try:
        wait_ready(up, base + 2, tmp_path, output)
        eventually(lambda: "Koopkracht is ready" in output(), 30, lambda: f"the banner; `up` said:\n{output()}")
        children = {name: p["pid"] for name, p in status(tmp_path)["processes"].items()}
        kafka = int((tmp_path / "kafka" / "node-1" / "pid").read_text())
        assert all(alive(pid) for pid in [*children.values(), kafka])

        # When the pipe's reader goes away (tee killed by Ctrl-C) and then the signal comes
        os.close(reader)
        reader = -1
        if how == "ctrl-c":
            os.killpg(up.pid, signal.SIGINT)
        else:
            up.send_signal(signal.SIGTERM)

        # Then `up` stops, without an error, and neither a child nor Kafka is left running
        assert up.wait(90) == 0, logs_of(tmp_path)
        assert {name: pid for name, pid in children.items() if alive(pid)} == {}
        assert not alive(kafka)
        assert not KafkaCluster(tmp_path).running()
        events = [json.loads(line)["event"] for line in (tmp_path / "logs" / "supervisor.log").read_text().splitlines()]
        assert "supervisor.stopped" in events
    finally:
        if reader >= 0:
            os.close(reader)
        stop_for_good(up, tmp_path)
