"""Run a launcher (`accelerate launch ...`) as a child that never outlives its parent's intent.

A multi-GPU run is a process tree: our command → `accelerate launch` → torch's elastic agent → one
process per rank, which the agent starts in *new sessions* (so a signal to our process group does
not reach them). Killing only the top leaves the ranks holding the GPUs, which is what a cancelled
Prefect flow run or a Ctrl-C used to do.

`run_supervised` starts the launcher in its own session and, when the parent is told to stop (SIGTERM,
SIGINT, or any exception raised into it, e.g. Prefect's cancellation of a flow run), sends SIGTERM to
the launcher *and every descendant it has at that moment*, waits `grace_s` for them to exit (the
elastic agent forwards SIGTERM to the ranks and cleans up), then SIGKILLs whatever is left. The
parent then re-raises: a run that was stopped never looks like a success.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

GRACE_S = 30.0


class Terminated(Exception):
    """The parent received SIGTERM while a supervised child ran (exit status 128 + 15)."""

    exit_code = 143


def _descendants(pid: int) -> list[Any]:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def terminate_tree(proc: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """SIGTERM the child and all its descendants, wait up to `grace_s`, then SIGKILL the survivors."""
    import psutil

    tree = _descendants(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    for child in tree:
        with contextlib.suppress(psutil.Error):
            child.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    # Ranks the agent started late, or that ignored SIGTERM: collect again and kill what still lives.
    tree += [p for p in _descendants(proc.pid) if p not in tree]
    _, alive = psutil.wait_procs(tree, timeout=0 if proc.poll() is None else grace_s)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.kill()
    proc.wait()
    psutil.wait_procs(alive, timeout=5)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While a child runs, SIGTERM raises `Terminated` in the main thread (the default would kill this
    process without running any cleanup). Leaves handlers alone off the main thread (Prefect's workers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: Any) -> None:  # noqa: ARG001
        raise Terminated(f"received signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_supervised(
    cmd: list[str],
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    grace_s: float = GRACE_S,
) -> int:
    """Run `cmd` to completion and return its exit status; on SIGTERM, Ctrl-C or an exception raised
    into this process, end the whole tree (see module docstring) and re-raise.

    `on_line`: receive the child's merged stdout/stderr line by line (flow logs); None lets the child
    write to this process's stdout/stderr directly."""
    popen_kwargs: dict[str, Any] = {"cwd": str(cwd) if cwd else None, "env": env, "start_new_session": True}
    if on_line is not None:
        popen_kwargs.update(
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, errors="replace"
        )
    with _sigterm_raises():
        proc = subprocess.Popen(cmd, **popen_kwargs)
        try:
            if on_line is not None:
                assert proc.stdout is not None
                for line in proc.stdout:
                    on_line(line.rstrip("\n"))
            return proc.wait()
        except BaseException:
            terminate_tree(proc, grace_s)
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
