"""Keeps the hub's processes running: a crashed one is restarted after a back-off.

``koopkracht up`` (``services.stack``) runs the worker, the projector, the webhook dispatcher, the
scheduler and the API as children of one :class:`Supervisor`. A child that exits is started again after a delay
that doubles with each crash in a row (0.5 s, 1 s, 2 s … at most 30 s) and starts over once the
child has stayed up for a minute. A child that keeps crashing (more than 5 crashes within 120 s)
is given up on: the supervisor stops tending the children and reports which one, with its log, so
that the stack stops rather than serving half a hub.

What the supervisor knows is also written, atomically, to ``<data dir>/supervisor.json`` (see
:func:`write_status`), so that the API's ``/readyz`` can report every process's restarts and say
"not ready" while one is down.

:class:`RestartPolicy` and :class:`Backoff` decide when to restart and when to give up; they are
pure (the clock comes in as an argument) and tested without processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import structlog

log = structlog.get_logger("koopkracht.supervisor")

STATUS_FILE = "supervisor.json"

Clock = Callable[[], float]
State = Literal["running", "backing-off", "stopped", "given-up"]


# -- the policy: pure ------------------------------------------------------------------------


@dataclass(frozen=True)
class RestartPolicy:
    """When a crashed child is started again, and when the supervisor stops trying."""

    first_delay_s: float = 0.5
    max_delay_s: float = 30.0
    stable_after_s: float = 60.0
    """A child up this long before it crashes starts its back-off over from ``first_delay_s``."""
    max_crashes: int = 5
    window_s: float = 120.0
    """More than ``max_crashes`` crashes within ``window_s`` and the supervisor gives up."""

    def __post_init__(self) -> None:
        if self.first_delay_s < 0 or self.max_delay_s < self.first_delay_s:
            raise ValueError("need 0 <= first_delay_s <= max_delay_s")
        if self.max_crashes < 1 or self.window_s <= 0 or self.stable_after_s < 0:
            raise ValueError("need max_crashes >= 1, window_s > 0 and stable_after_s >= 0")


@dataclass(frozen=True)
class RestartDecision:
    give_up: bool
    delay_s: float
    """How long to wait before starting the child again (0 when giving up)."""
    attempt: int
    """This restart's number in the current run of crashes (1 after a stable spell)."""
    recent_crashes: int
    """Crashes within the policy's window, this one included."""


class Backoff:
    """One child's crash history under a :class:`RestartPolicy`, on an injected monotonic clock."""

    def __init__(self, policy: RestartPolicy, clock: Clock = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self._started_at = clock()
        self._in_a_row = 0
        self._crashes: deque[float] = deque()

    def started(self) -> None:
        """The child was (re)started now: its uptime counts from here."""
        self._started_at = self.clock()

    def crashed(self) -> RestartDecision:
        """The child exited now: restart it after ``delay_s``, or give up."""
        now = self.clock()
        policy = self.policy
        if now - self._started_at >= policy.stable_after_s:
            self._in_a_row = 0
        self._crashes.append(now)
        while self._crashes and self._crashes[0] <= now - policy.window_s:
            self._crashes.popleft()
        recent = len(self._crashes)
        if recent > policy.max_crashes:
            return RestartDecision(give_up=True, delay_s=0.0, attempt=self._in_a_row + 1, recent_crashes=recent)
        delay = min(policy.first_delay_s * 2**self._in_a_row, policy.max_delay_s)
        self._in_a_row += 1
        return RestartDecision(give_up=False, delay_s=delay, attempt=self._in_a_row, recent_crashes=recent)


# -- the processes ---------------------------------------------------------------------------


@dataclass
class Child:
    """One process of the hub: its name, its command line, and (when it has one) its readiness probe."""

    name: str
    argv: list[str]
    ready: Callable[[], bool] | None = None
    env: dict[str, str] = field(default_factory=dict)
    """What this child's environment adds to the supervisor's (its metrics port)."""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> str:
        return f"{self.name}.log"


@dataclass
class _Tended:
    child: Child
    backoff: Backoff
    state: State = "running"
    restarts: int = 0
    restart_at: float | None = None
    last_exit_code: int | None = None
    last_signal: str | None = None
    last_exit_at: datetime | None = None
    last_restart_at: datetime | None = None


def describe_exit(returncode: int | None) -> tuple[int | None, str | None, str]:
    """(exit code, signal name, words) of a ``Popen.returncode`` (negative: killed by that signal)."""
    if returncode is None:
        return None, None, "could not be started"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return None, name, f"killed by {name}"
    return returncode, None, f"exit code {returncode}"


class ChildKeepsCrashing(RuntimeError):
    """A child crashed more often than the policy allows; the message names it and its log."""


class Supervisor:
    """Starts the children, restarts those that exit, and stops them all at the end.

    A thread watches the children every ``interval_s``. ``failure`` is set (and the thread ends)
    when a child keeps crashing; the owner then stops the whole stack. ``hold`` and ``resume``
    stop and start one child on purpose, without it counting as a crash.
    """

    def __init__(
        self,
        children: list[Child],
        *,
        env: dict[str, str],
        logs: Path,
        status_file: Path,
        policy: RestartPolicy | None = None,
        progress: Callable[[str], None] = lambda _: None,
        clock: Clock = time.monotonic,
        interval_s: float = 0.1,
    ) -> None:
        self.policy = policy or RestartPolicy()
        self.env = env
        self.logs = logs
        self.status_file = status_file
        self.progress = progress
        self.clock = clock
        self.interval_s = interval_s
        self.failure: ChildKeepsCrashing | None = None
        self._tended = {child.name: _Tended(child, Backoff(self.policy, clock)) for child in children}
        self._lock = threading.RLock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def children(self) -> list[Child]:
        return [tended.child for tended in self._tended.values()]

    def start(self) -> None:
        """Start every child, in order, and the thread that keeps them running."""
        with self._lock:
            for tended in self._tended.values():
                self._say(f"starting {tended.child.name}")
                self._spawn(tended)
                log.info("supervisor.child_started", child=tended.child.name, pid=self._pid(tended))
            self._write_status()
        self._thread = threading.Thread(target=self._watch, name="koopkracht-supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._halt.wait(self.interval_s):
            try:
                self.tick()
            except Exception:
                log.exception("supervisor.error")
            if self.failure is not None:
                return

    def tick(self) -> None:
        """Look at every child once: note the ones that exited, start the ones whose delay is over."""
        with self._lock:
            if self._halt.is_set() or self.failure is not None:
                return
            changed = False
            for tended in self._tended.values():
                proc = tended.child.proc
                if tended.state == "running" and proc is not None and proc.poll() is not None:
                    self._crashed(tended, proc.returncode)
                    changed = True
                    if self.failure is not None:
                        break
                elif (
                    tended.state == "backing-off"
                    and tended.restart_at is not None
                    and self.clock() >= tended.restart_at
                ):
                    self._restart(tended)
                    changed = True
            if changed:
                self._write_status()

    def _crashed(self, tended: _Tended, returncode: int | None) -> None:
        name = tended.child.name
        code, signal_name, words = describe_exit(returncode)
        tended.last_exit_code, tended.last_signal = code, signal_name
        tended.last_exit_at = datetime.now(UTC)
        decision = tended.backoff.crashed()
        log_path = self.logs / tended.child.log
        exit_facts = {"child": name, "exit_code": code, "signal": signal_name, "log_file": str(log_path)}
        if decision.give_up:
            tended.state = "given-up"
            tended.restart_at = None
            log.error(
                "supervisor.gave_up", **exit_facts, crashes=decision.recent_crashes, window_s=self.policy.window_s
            )
            self._say(f"{name} keeps crashing ({words}): giving up; its log is {log_path}")
            self.failure = ChildKeepsCrashing(
                f"{name} keeps crashing: {decision.recent_crashes} crashes within {self.policy.window_s:g} s, "
                f"the last with {words}. Its log is {log_path}; it ends with:\n{_tail(log_path)}"
            )
            return
        tended.state = "backing-off"
        tended.restart_at = self.clock() + decision.delay_s
        log.warning(
            "supervisor.child_exited",
            **exit_facts,
            attempt=decision.attempt,
            delay_s=decision.delay_s,
            recent_crashes=decision.recent_crashes,
        )
        self._say(f"{name} exited ({words}); restarting it in {decision.delay_s:g} s (attempt {decision.attempt})")

    def _restart(self, tended: _Tended) -> None:
        tended.restarts += 1
        tended.last_restart_at = datetime.now(UTC)
        tended.restart_at = None
        if not self._spawn(tended):
            return
        log.info("supervisor.child_restarted", child=tended.child.name, pid=self._pid(tended), restarts=tended.restarts)
        self._say(f"{tended.child.name} restarted (pid {self._pid(tended)}, restart {tended.restarts})")

    def _spawn(self, tended: _Tended) -> bool:
        """Start the child; a child that cannot even be started counts as a crash."""
        child = tended.child
        try:
            with open(self.logs / child.log, "ab") as out:
                env = {**self.env, **child.env}
                child.proc = subprocess.Popen(
                    child.argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
        except OSError as exc:
            log.error("supervisor.spawn_failed", child=child.name, error=str(exc))
            child.proc = None
            self._crashed(tended, None)
            return False
        tended.state = "running"
        tended.backoff.started()
        return True

    @staticmethod
    def _pid(tended: _Tended) -> int | None:
        return tended.child.proc.pid if tended.child.proc is not None else None

    def _say(self, message: str) -> None:
        # The console may be gone (a closed pipe); the supervisor goes on regardless.
        try:
            self.progress(message)
        except Exception:
            log.debug("supervisor.progress_failed", message=message)

    # -- on purpose ------------------------------------------------------------------------

    def hold(self, name: str, timeout_s: float = 20.0) -> None:
        """Stop one child (SIGTERM, SIGKILL after ``timeout_s``) and leave it stopped until ``resume``."""
        with self._lock:
            tended = self._tended[name]
            tended.state = "stopped"
            tended.restart_at = None
            self._write_status()
            proc = tended.child.proc
        if proc is not None:
            _terminate([proc], timeout_s)
        log.info("supervisor.child_held", child=name)

    def resume(self, name: str) -> None:
        """Start a child that ``hold`` stopped (not a restart: it does not count as one)."""
        with self._lock:
            tended = self._tended[name]
            if tended.state == "running" and tended.child.proc is not None and tended.child.proc.poll() is None:
                return
            self._spawn(tended)
            self._write_status()
        log.info("supervisor.child_resumed", child=name, pid=self._pid(tended))

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop watching, then stop every child (in reverse order); SIGKILL what hangs past ``timeout_s``."""
        self._halt.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        with self._lock:
            procs = []
            for tended in reversed(list(self._tended.values())):
                tended.state = "stopped"
                if tended.child.proc is not None:
                    procs.append(tended.child.proc)
            _terminate(procs, timeout_s)
            with contextlib.suppress(OSError):
                self.status_file.unlink(missing_ok=True)
        log.info("supervisor.stopped")

    # -- the status file -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``supervisor.json`` holds: the supervisor's pid and, per child, its state and restarts."""
        with self._lock:
            return {
                "supervisor_pid": os.getpid(),
                "updated_at": datetime.now(UTC).isoformat(),
                "processes": {
                    name: {
                        "pid": self._pid(tended) if tended.state == "running" else None,
                        "state": tended.state,
                        "restarts": tended.restarts,
                        "last_exit_code": tended.last_exit_code,
                        "last_signal": tended.last_signal,
                        "last_exit_at": _iso(tended.last_exit_at),
                        "last_restart_at": _iso(tended.last_restart_at),
                        "log": str(self.logs / tended.child.log),
                    }
                    for name, tended in self._tended.items()
                },
            }

    def _write_status(self) -> None:
        try:
            write_status(self.status_file, self.status())
        except OSError as exc:  # a full disk must not stop the supervisor; /readyz goes stale
            log.warning("supervisor.status_not_written", path=str(self.status_file), error=str(exc))


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _terminate(procs: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """SIGTERM each running process, then wait for all; SIGKILL those still running after ``timeout_s``."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


def write_status(path: Path, document: dict[str, Any]) -> None:
    """Write the status file atomically: a reader sees the old document or the new one, never half."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=2))
    os.replace(temporary, path)


def read_status(path: Path) -> dict[str, Any] | None:
    """The supervisor's status document, or None when no supervisor runs (no file, or its writer is gone)."""
    try:
        document: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    if not _alive(int(document["supervisor_pid"])):
        return None  # left behind by a supervisor that was killed: nothing tends the processes
    return document


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
