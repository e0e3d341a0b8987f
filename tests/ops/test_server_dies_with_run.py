"""A `videorft curate` process that dies without running its exit hooks (SIGKILL, the OOM killer,
a native abort) takes Prefect's temporary API server with it, instead of leaving it running for
good (holding a port, memory, and the dead run's stdout: a caller reading that output to its end
waited forever, which hung CI once)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the death signal is Linux's"),
]

SCRIPT = """
import os, sys, time
os.environ.pop("PREFECT_API_URL", None)
from flows.interrupt import shield_local_server
from prefect.server.api.server import SubprocessASGIServer

shield_local_server()
print(SubprocessASGIServer().server_process.pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_temporary_server_ends_when_the_run_is_killed(repo_root):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], cwd=repo_root, env=env, stdout=subprocess.PIPE, text=True
    )
    server_pid = None
    try:
        server_pid = int(proc.stdout.readline())
        server = psutil.Process(server_pid)
        assert server.ppid() == proc.pid and "uvicorn" in " ".join(server.cmdline())
        proc.send_signal(signal.SIGKILL)  # no atexit hook runs
        proc.wait(30)
        deadline = time.monotonic() + 30
        while not _gone(server_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _gone(server_pid), "the temporary Prefect server outlived its run"
        # Its output pipe is closed: a reader of the run's output gets EOF, not a hang.
        assert proc.stdout.read() == ""
    finally:
        proc.kill()
        if server_pid is not None and not _gone(server_pid):
            os.kill(server_pid, signal.SIGKILL)
