"""When the supervisor restarts a crashed process, and when it gives up (the pure policy, on a fake
clock); and what of its status file ``/readyz`` shows."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from services.api.app import supervised_processes
from services.supervisor import STATUS_FILE, Backoff, RestartPolicy, describe_exit, read_status, write_status


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def crash_right_after_each_restart(backoff: Backoff, clock: FakeClock, times: int) -> list[float]:
    """Crash, wait the delay, restart, crash again …: the delays asked for."""
    delays = []
    for _ in range(times):
        decision = backoff.crashed()
        assert not decision.give_up
        delays.append(decision.delay_s)
        clock.advance(decision.delay_s)
        backoff.started()
    return delays


def test_the_delay_doubles_with_each_crash_in_a_row_up_to_the_cap() -> None:
    # Given a process that crashes at once each time, under a generous crash budget
    clock = FakeClock()
    backoff = Backoff(RestartPolicy(first_delay_s=0.5, max_delay_s=30, max_crashes=100, window_s=120), clock)
    # When it crashes ten times in a row
    delays = crash_right_after_each_restart(backoff, clock, 10)
    # Then the delays double from 0.5 s and stop growing at 30 s
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]


def test_the_back_off_starts_over_once_the_process_stayed_up_long_enough() -> None:
    # Given a process that crashed three times in a row
    clock = FakeClock()
    backoff = Backoff(RestartPolicy(stable_after_s=60), clock)
    assert crash_right_after_each_restart(backoff, clock, 3) == [0.5, 1, 2]
    # When it then stays up for a minute before it crashes again
    clock.advance(60)
    decision = backoff.crashed()
    # Then it is restarted after the first delay again, as attempt 1
    assert (decision.give_up, decision.delay_s, decision.attempt) == (False, 0.5, 1)


def test_a_process_up_for_less_than_the_stable_time_keeps_its_back_off() -> None:
    # Given a process that crashed twice in a row
    clock = FakeClock()
    backoff = Backoff(RestartPolicy(stable_after_s=60), clock)
    crash_right_after_each_restart(backoff, clock, 2)
    # When it stays up for 59 s and crashes
    clock.advance(59)
    decision = backoff.crashed()
    # Then the delay keeps doubling
    assert (decision.delay_s, decision.attempt) == (2, 3)


def test_more_crashes_than_allowed_within_the_window_give_up() -> None:
    # Given at most 5 crashes within 120 s
    clock = FakeClock()
    backoff = Backoff(RestartPolicy(max_crashes=5, window_s=120), clock)
    # When the process crashes five times, each soon after its restart
    crash_right_after_each_restart(backoff, clock, 5)
    # Then the sixth crash within the window gives up
    decision = backoff.crashed()
    assert decision.give_up
    assert decision.recent_crashes == 6
    assert decision.delay_s == 0


def test_crashes_older_than_the_window_do_not_count() -> None:
    # Given at most 2 crashes within 10 s, and a process that stays up 6 s each time (under the stable time)
    clock = FakeClock()
    backoff = Backoff(RestartPolicy(first_delay_s=0.1, max_delay_s=1, max_crashes=2, window_s=10), clock)
    verdicts = []
    # When it crashes every 6 s, twenty times
    for _ in range(20):
        clock.advance(6)
        decision = backoff.crashed()
        verdicts.append(decision.give_up)
        clock.advance(decision.delay_s)
        backoff.started()
    # Then never more than two crashes fall in one window, and it is never given up
    assert not any(verdicts)


@pytest.mark.parametrize(
    "arguments",
    [{"first_delay_s": -1}, {"first_delay_s": 5, "max_delay_s": 1}, {"max_crashes": 0}, {"window_s": 0}],
)
def test_a_policy_that_cannot_work_is_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="need"):
        RestartPolicy(**arguments)  # type: ignore[arg-type]


def test_an_exit_is_told_by_its_code_or_by_its_signal() -> None:
    assert describe_exit(3) == (3, None, "exit code 3")
    assert describe_exit(-9) == (None, "SIGKILL", "killed by SIGKILL")
    assert describe_exit(None) == (None, None, "could not be started")


def status_document(supervisor_pid: int) -> dict[str, object]:
    process = {
        "pid": 4242,
        "state": "backing-off",
        "restarts": 2,
        "last_exit_code": None,
        "last_signal": "SIGKILL",
        "last_exit_at": "2026-01-05T10:00:00+00:00",
        "last_restart_at": "2026-01-05T09:59:59+00:00",
        "log": "/somewhere/logs/projector.log",
    }
    updated_at = "2026-01-05T10:00:00+00:00"
    return {"supervisor_pid": supervisor_pid, "updated_at": updated_at, "processes": {"projector": process}}


def test_the_status_of_a_running_supervisor_is_read_without_pids_or_log_paths(tmp_path: Path) -> None:
    # Given a status file written by a supervisor that runs (this process)
    write_status(tmp_path / STATUS_FILE, status_document(os.getpid()))
    # When the API reads it
    status = read_status(tmp_path / STATUS_FILE)
    assert status is not None
    processes = supervised_processes(status)
    # Then it shows each process's state and restarts, and neither its pid nor its log's path
    shown = processes["projector"].model_dump(mode="json")
    assert shown["state"] == "backing-off"
    assert (shown["restarts"], shown["last_signal"]) == (2, "SIGKILL")
    assert "pid" not in shown
    assert "log" not in shown
    # And the file was replaced whole: no temporary file is left beside it
    assert [path.name for path in tmp_path.iterdir()] == [STATUS_FILE]


def test_without_a_supervisor_there_is_no_status(tmp_path: Path) -> None:
    # Given no status file, then one left behind by a supervisor that no longer runs
    assert read_status(tmp_path / STATUS_FILE) is None
    gone = subprocess.Popen(["true"])
    gone.wait()
    write_status(tmp_path / STATUS_FILE, status_document(gone.pid))
    # Then there is no status either
    assert read_status(tmp_path / STATUS_FILE) is None
