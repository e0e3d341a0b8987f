"""The run-folder lock: a live holder is named, a dead one is taken over, `wait` waits."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from curation.store import lock


def _hold(run_dir, pid: int, host: str | None = None) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    holder = {
        "host": host or socket.gethostname(),
        "pid": pid,
        "started": time.time(),
        "command": "videorft curate x",
    }
    (run_dir / lock.LOCK_FILE).write_text(json.dumps(holder))


def test_a_live_holder_makes_the_second_run_fail_with_its_name(tmp_path):
    _hold(tmp_path / "r", os.getppid())
    with pytest.raises(lock.RunLockedError) as err:
        lock.acquire(tmp_path / "r")
    assert f"pid {os.getppid()} on {socket.gethostname()}" in str(err.value)
    assert "videorft curate x" in str(err.value) and "--wait-for-lock" in err.value.hint


def test_a_holder_on_another_machine_is_never_guessed_dead(tmp_path):
    _hold(tmp_path / "r", 1, host="other-machine")
    with pytest.raises(lock.RunLockedError, match="on other-machine"):
        lock.acquire(tmp_path / "r")


def test_a_dead_holders_lock_is_taken_over_and_released(tmp_path):
    _hold(tmp_path / "r", 2**22 + 4321)  # above any pid_max in use here: no such process
    lock.acquire(tmp_path / "r")
    assert lock.read_holder(tmp_path / "r")["pid"] == os.getpid()
    lock.acquire(tmp_path / "r")  # re-entrant: the CLI and then the flow in one process
    lock.release(tmp_path / "r")
    assert (tmp_path / "r" / lock.LOCK_FILE).exists()
    lock.release(tmp_path / "r")
    assert not (tmp_path / "r" / lock.LOCK_FILE).exists()


def test_wait_takes_the_lock_when_the_holder_lets_go(tmp_path):
    _hold(tmp_path / "r", os.getppid())
    threading.Timer(0.3, lambda: (tmp_path / "r" / lock.LOCK_FILE).unlink()).start()
    t0 = time.time()
    lock.acquire(tmp_path / "r", wait=True, poll_s=0.05)
    assert time.time() - t0 >= 0.25 and lock.read_holder(tmp_path / "r")["pid"] == os.getpid()
    lock.release(tmp_path / "r")
