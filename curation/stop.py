"""Stopping a curate run on request (Ctrl-C, SIGTERM, a Prefect cancellation) within seconds.

A stop is a flag, not an exception thrown into other threads: the process that received the
signal sets it, and every shard task checks it before it starts and while it waits for its LLM
requests. A shard that sees it abandons its work without writing its shard file (shard files are
written whole, so a half shard never exists) and sends no further requests; answers already
received are in the response cache, so the rerun pays for none of them again.

The flag is a process-wide event *and* a marker file in the run folder (`progress/STOP`), so
shard tasks running in other processes (Dask or Ray workers) see it too.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

STOP_FILE = "STOP"
# How often a worker looks for the marker file: a stat every quarter second per shard is free.
_MARKER_POLL_S = 0.25

_EVENT = threading.Event()
_SIGNAL: list[int] = []  # the first signal that asked to stop (for the exit status)
_ACTIVE_RUNS: set[Path] = set()  # run folders of this process's runs, for the marker file
_LOCK = threading.Lock()


class Interrupted(BaseException):  # noqa: N818 - named like KeyboardInterrupt, which it behaves like
    """Raised where a run stops on request. A BaseException (like KeyboardInterrupt), so the
    `except Exception` guards that turn a row's error into a failed row never catch it."""

    def __init__(self, signum: int | None = None) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return exit_status(self.signum)


def signal_name(signum: int | None) -> str:
    if signum is None:
        return "stop requested"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_status(signum: int | None) -> int:
    """The shell's convention: 128 + signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + (signum or signal.SIGINT)


def marker_path(run_dir: Path) -> Path:
    return Path(run_dir) / "progress" / STOP_FILE


def register_run(run_dir: Path) -> None:
    """A run starts in this process: forget an earlier stop (marker and event) and remember the run
    so that a stop writes its marker."""
    run_dir = Path(run_dir)
    with _LOCK:
        if not _ACTIVE_RUNS:
            _EVENT.clear()
            _SIGNAL.clear()
        _ACTIVE_RUNS.add(run_dir)
    marker_path(run_dir).unlink(missing_ok=True)


def unregister_run(run_dir: Path) -> None:
    with _LOCK:
        _ACTIVE_RUNS.discard(Path(run_dir))


def request_stop(signum: int | None = None) -> None:
    """Ask every run of this process (and their shard tasks elsewhere) to stop."""
    with _LOCK:
        if not _SIGNAL:
            _SIGNAL.append(signum or signal.SIGINT)
        _EVENT.set()
        runs = list(_ACTIVE_RUNS)
    for run_dir in runs:
        try:
            path = marker_path(run_dir)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{signal_name(signum)} {time.time():.3f}\n")
        except OSError:  # a stop must never fail: the event alone still stops this process
            pass


def stop_requested() -> bool:
    return _EVENT.is_set()


def requested_signal() -> int | None:
    with _LOCK:
        return _SIGNAL[0] if _SIGNAL else None


class StopFlag:
    """What a shard task checks: this process's stop event, or the run folder's marker file.
    Has `is_set()` like threading.Event, so it can be handed to code that takes an event."""

    def __init__(self, run_dir: Path) -> None:
        self._marker = marker_path(run_dir)
        self._seen = False
        self._checked = 0.0

    def is_set(self) -> bool:
        if self._seen or _EVENT.is_set():
            return True
        now = time.monotonic()
        if now - self._checked >= _MARKER_POLL_S:
            self._checked = now
            self._seen = self._marker.exists()
        return self._seen

    def check(self) -> None:
        """Raise Interrupted when a stop was requested."""
        if self.is_set():
            raise Interrupted(requested_signal())
