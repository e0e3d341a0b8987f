"""Ctrl-C and SIGTERM for curate runs: stop within seconds, record it, say it in one line.

Why stopping used to take 150 s with six tracebacks: a terminal's Ctrl-C goes to the whole
process group, so Prefect's temporary API server (a child process) died with it; the flow's
last state updates then failed and retried against a dead server, and the task runner waited
for every shard thread to finish its LLM requests. Now:

- the temporary server starts with SIGINT blocked (the mask is inherited), so Ctrl-C reaches only
  `videorft` and the server stays up to record how the run ended (`shield_local_server`);
- the first SIGINT/SIGTERM sets the stop flag (curation/stop.py: shard tasks cancel their
  requests in flight and write nothing) and raises `Interrupted` in the main thread; the flow
  marks the run `interrupted` and ends in Prefect's Cancelled state; a second signal exits at once;
- the CLI prints one line and exits 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from curation.stop import Interrupted, exit_status, request_stop, signal_name, stop_requested

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The state message of a shard task abandoned by a stop (flows/curate.py).
ABANDONED = "abandoned: the run was stopped"


class RunInterrupted(Exception):
    """A curate run stopped on request and was recorded as interrupted (what run_curate raises)."""

    def __init__(self, signum: int | None, manifest: dict[str, Any]) -> None:
        super().__init__(f"run {manifest.get('run_name')!r} interrupted by {signal_name(signum)}")
        self.signum = signum
        self.manifest = manifest

    @property
    def exit_status(self) -> int:
        return exit_status(self.signum)


def _handler(signum: int, frame: Any) -> None:  # noqa: ARG001 - signal handler signature
    if stop_requested():
        # Second signal: the person wants out now. Shard files are written atomically, so even
        # this leaves no half file; the manifest may still say `running`.
        os.write(2, f"\n{signal_name(signum)} again: exiting now\n".encode())
        os._exit(exit_status(signum))
    request_stop(signum)
    raise Interrupted(signum)


def install_stop_handlers() -> Callable[[], None]:
    """From now on SIGINT and SIGTERM stop the run; returns the function that puts the previous
    handlers back. A no-op outside the main thread, where Python cannot install handlers (there,
    Prefect's own SIGTERM handling still applies)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, _handler)

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)

    return restore


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """`install_stop_handlers` for the duration of a block."""
    restore = install_stop_handlers()
    try:
        yield
    finally:
        restore()


def interrupt_signal(err: BaseException) -> int | None:
    """The signal behind an exception that means "stop" (ours, Ctrl-C, Prefect's termination), or
    None for any other exception."""
    if isinstance(err, Interrupted):
        return err.signum or signal.SIGINT
    if isinstance(err, KeyboardInterrupt):
        return signal.SIGINT
    try:
        from prefect.exceptions import TerminationSignal
    except ImportError:  # pragma: no cover - prefect is a dependency
        return None
    if isinstance(err, TerminationSignal):
        return int(getattr(err, "signal", signal.SIGTERM))
    return None


def prefect_owns_termination() -> bool:
    """A worker/runner sent this SIGTERM with an intent (cancel a flow run, reschedule it): the
    engine must see its TerminationSignal to set the state the runner expects."""
    try:
        from prefect._internal.control_listener import get_intent
    except ImportError:
        return False
    try:
        return get_intent() is not None
    except Exception:  # noqa: BLE001 - a private API; without it, we set the state ourselves
        return False


# Run in the temporary server's process before it becomes uvicorn: on Linux, ask the kernel for
# SIGTERM when our process dies (kept across exec), and leave at once if it already has.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(0)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class _ServerDiesWithUs:
    """`subprocess` as Prefect's server module sees it, except that the temporary server it spawns
    ends when this process ends, however it ends. Prefect stops that server from an atexit hook;
    a process killed (SIGKILL, the OOM killer) or aborted (SIGABRT from native code) runs no hook,
    and the server stayed up for good, holding its port, ~250 MB and our stdout (a caller
    reading our output until EOF then waited forever)."""

    def __getattr__(self, name: str) -> Any:
        import subprocess

        return getattr(subprocess, name)

    @staticmethod
    def Popen(args: list[str], **kwargs: Any) -> Any:  # noqa: N802 - subprocess's own name
        import subprocess

        return subprocess.Popen([sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *args], **kwargs)


def shield_local_server() -> None:
    """Start Prefect's temporary API server now (when no PREFECT_API_URL is set), with SIGINT
    blocked while it is spawned, so that a terminal's Ctrl-C does not take it down with us, and
    (on Linux) tied to this process's life, so that a crash does not leave it behind."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value() or threading.current_thread() is not threading.main_thread():
        return
    try:
        from prefect.server.api import server as server_module
        from prefect.server.api.server import SubprocessASGIServer
    except ImportError:  # pragma: no cover - prefect[server] is a dependency
        return
    server = SubprocessASGIServer()  # the instance Prefect's local mode uses
    if server.running:
        return
    if sys.platform.startswith("linux"):
        # The death signal goes to the child when the *thread* that forked it ends: this is the
        # main thread (checked above), which lives as long as the process.
        server_module.subprocess = _ServerDiesWithUs()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        server.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def print_interrupted(err: RunInterrupted, file: Any = None) -> None:
    """The one line the CLI prints for an interrupted run."""
    m = err.manifest
    out = file or sys.stderr
    run_dir = m.get("run_dir") or "?"
    print(
        f"interrupted ({signal_name(err.signum)}): run {m.get('run_name')!r} stopped, nothing published; "
        f"finished shards and paid LLM answers are kept in {run_dir}. Run the same command again to resume.",
        file=out,
        flush=True,
    )


class _QuietAbandoned(logging.Filter):
    """Drops Prefect's per-task error lines about shards a stop abandoned: the flow logs one line
    for the whole stop, and the task runs still show their state in the UI."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a filter must never break logging
            return True
        if ABANDONED in message:
            return False
        # Shard tasks still queued when the flow returned are cancelled by Prefect's task runner
        # (state Crashed, "cancelled by the task runner"): expected after a stop, not news.
        return not (stop_requested() and "cancelled by the task runner" in message)


_QUIET = _QuietAbandoned()


def quiet_abandoned_shards() -> None:
    logger = logging.getLogger("prefect.task_runs")
    if _QUIET not in logger.filters:
        logger.addFilter(_QUIET)


def exit_now(status: int) -> None:
    """End the CLI process after an interrupted run, without Prefect's exit handlers.

    Everything of ours is on disk by now (shard files, manifest, report, response cache). What the
    exit handlers would still do is drain Prefect's event queue to the *temporary* server and then
    wait up to 5 s for that server's graceful shutdown; it goes away with this process anyway, and
    on a loaded machine that took 5-6 of the seconds a stop may take. So stop the server at once
    and leave.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:  # noqa: BLE001
            pass
    try:
        from prefect.server.api.server import SubprocessASGIServer

        for server in list(SubprocessASGIServer._instances.values()):
            proc = server.server_process
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=1.0)
                except Exception:  # noqa: BLE001 - not gone in a second: kill it
                    proc.kill()
                    proc.wait()
    except Exception:  # noqa: BLE001 - leaving matters more than tidying
        pass
    os._exit(status)
