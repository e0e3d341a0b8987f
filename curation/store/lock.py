"""One run folder, one writer: `runs/<name>/.lock`.

Two runs of one run folder overlapping used to pay for the same answers twice and overwrite each
other's shards. The lock file is created with O_EXCL (atomic on local and network filesystems)
and names its holder: host, pid, start time and command line. A second run fails at once with a
message naming the holder, or waits for it when asked (`--wait-for-lock`, `run.wait_for_lock`). A
lock left by a process that died (same host, pid gone) is taken over; a lock from another host is
never guessed stale: the message says which file to remove once that run is known to be gone.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from curation.user_errors import UserError

LOCK_FILE = ".lock"

# Locks this process holds, by run folder, with a count: the CLI takes the lock before Prefect
# starts (fail fast) and the flow takes it again (deployments call the flow directly).
_HELD: dict[Path, int] = {}
_HELD_LOCK = threading.Lock()


class RunLockedError(UserError):
    """Another live run holds the run folder."""


def _holder_line(h: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(h.get("started", 0))))
    return f"pid {h.get('pid')} on {h.get('host')}, started {started}: {h.get('command', '?')}"


def read_holder(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(run_dir) / LOCK_FILE).read_text() or "{}")
    except FileNotFoundError:
        return None
    except ValueError:
        return {}


def _alive(holder: dict[str, Any]) -> bool:
    if not holder:  # being written right now, or by a holder killed mid-write: judged by age
        return True
    if holder.get("host") != socket.gethostname():
        return True
    return pid_alive(int(holder.get("pid") or 0))


def pid_alive(pid: int) -> bool:
    """A process with this pid runs on this host. An exited process its parent has not reaped yet
    (a zombie: a run started by a script that waits on another run first) holds nothing: signal 0
    still reaches it, so its state is asked too."""
    if pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # exists, owned by another user
        return True


def acquire(run_dir: Path, *, wait: bool = False, poll_s: float = 1.0, command: str | None = None) -> None:
    """Take the run folder's lock (re-entrant within this process) or raise RunLockedError."""
    run_dir = Path(run_dir).resolve()
    with _HELD_LOCK:
        if run_dir in _HELD:
            _HELD[run_dir] += 1
            return
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    me = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": time.time(),
        "command": command or " ".join(sys.argv),
    }
    waited = False
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = read_holder(run_dir)
            if holder is None:
                continue  # released between our open and our read
            torn = holder == {} and time.time() - _mtime(path) > 10
            if torn or not _alive(holder):
                _break(path, holder)
                continue
            if not wait:
                raise RunLockedError(
                    f"run folder {run_dir} is in use by another run: {_holder_line(holder)}",
                    "wait for it to finish (or pass --wait-for-lock to wait), or use another --run "
                    f"name; if that run is gone, remove {path}",
                ) from None
            if not waited:
                print(
                    f"waiting for the run folder {run_dir}: held by {_holder_line(holder)}", file=sys.stderr
                )
                waited = True
            time.sleep(poll_s)
            continue
        try:
            os.write(fd, json.dumps(me).encode("utf-8"))
        except OSError:  # a full disk: leave no holder-less lock behind
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        with _HELD_LOCK:
            _HELD[run_dir] = 1
        return


def release(run_dir: Path) -> None:
    run_dir = Path(run_dir).resolve()
    with _HELD_LOCK:
        count = _HELD.get(run_dir, 0)
        if count > 1:
            _HELD[run_dir] = count - 1
            return
        _HELD.pop(run_dir, None)
    holder = read_holder(run_dir)
    if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        (run_dir / LOCK_FILE).unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


def _break(path: Path, dead: dict[str, Any]) -> None:
    """Remove a dead holder's lock. Renamed aside first and checked: when two processes break it at
    once, the slower one may have moved the faster one's fresh lock, and puts it back."""
    aside = path.with_name(f"{LOCK_FILE}.stale-{os.getpid()}-{time.time_ns()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    try:
        moved = json.loads(aside.read_text() or "{}")
    except ValueError:
        moved = {}
    if moved != dead:
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
    aside.unlink(missing_ok=True)
