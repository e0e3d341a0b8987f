"""A real local `prefect server` and the processes around it (workers), for the ops tests.

Every process started here runs in its own process group and is killed (with its descendants) at
the end, pass or fail. The test's own Prefect client calls go to the server through `api()`
(`temporary_settings`); tests/conftest.py's session PREFECT_HOME is left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Background processes, each in its own session; `stop_all` kills their whole trees."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.started.append((name, proc))
        return proc

    def log(self, name: str, tail: int = 80) -> str:
        path = self.log_dir / f"{name}.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return f"--- {name} (last {tail} lines) ---\n" + "\n".join(lines[-tail:])

    def logs(self) -> str:
        return "\n".join(self.log(name) for name, _ in self.started)

    def stop_all(self) -> None:
        import psutil

        for _, proc in reversed(self.started):
            try:
                tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                tree = []
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            _, alive = psutil.wait_procs(tree, timeout=10)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            for p in alive:  # descendants that left the group
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def wait_healthy(url: str, proc: subprocess.Popen, procs: Processes, timeout_s: float = 150) -> float:
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        if proc.poll() is not None:
            pytest.fail(f"prefect server exited with {proc.returncode}\n{procs.log('server')}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return time.time() - t0
        time.sleep(0.5)
    pytest.fail(f"prefect server not healthy after {timeout_s}s\n{procs.log('server')}")


@contextlib.contextmanager
def api(url: str) -> Iterator[None]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}):
        yield


@dataclass
class Server:
    api_url: str
    # Environment for the processes that talk to it (workers, `videorft deploy`).
    env: dict[str, str]
    healthy_after_s: float = 0.0


def start_server(procs: Processes, home: Path, **settings: str) -> tuple[subprocess.Popen, Server]:
    """Start `prefect server` on a free port with its own PREFECT_HOME (no UI); `settings` are extra
    PREFECT_* variables for the server (e.g. scheduler knobs). Call `wait_healthy` before using it."""
    port = free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    base_env.update(
        PREFECT_HOME=str(home),
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="INFO",
        DO_NOT_TRACK="1",
        PYTHONUNBUFFERED="1",
    )
    proc = procs.start(
        "server",
        [PY, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        {**base_env, **settings},
    )
    env = {
        **base_env,
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        # Workers poll every second (default 10 s); flow runs on 2 cores: one torch thread each.
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "OMP_NUM_THREADS": "1",
    }
    return proc, Server(api_url=env["PREFECT_API_URL"], env=env)


def start_worker(procs: Processes, pool: str, env: dict[str, str], *extra: str) -> subprocess.Popen:
    cmd = [
        PY,
        "-m",
        "prefect",
        "worker",
        "start",
        "--pool",
        pool,
        "--type",
        "process",
        "--name",
        f"test-{pool}",
    ]
    return procs.start(f"worker-{pool}", [*cmd, *extra], env)


def demo_recipe_for(sim_url: str, annotations: Path, work: Path) -> dict:
    """configs/demo.yaml against `sim_url` with this test's data, runs under work/runs and published
    sets under work/published (flows.demo.demo_recipe; the env var it sets is not left behind)."""
    from flows.demo import demo_recipe

    try:
        data = demo_recipe(work, annotations, sim_url)
    finally:
        os.environ.pop("VIDEORFT_SIM_URL", None)
    data["publish"]["out_dir"] = str(work / "published")
    return data


def deploy_curate(parameters: dict, schedules: list[dict] | None = None) -> str:
    """prefect.yaml's own `curate` deployment (entrypoint, steps, work pool), registered through
    flows/deploy.py with these parameters and schedules; returns its `flow/deployment` name."""
    from prefect import get_client

    from flows import deploy

    spec = deploy.load_prefect_file(REPO / "prefect.yaml")
    (curate,) = [d for d in spec["deployments"] if d["name"] == "curate"]
    spec["deployments"] = [{**curate, "schedules": schedules or [], "parameters": parameters}]
    ops = deploy.load_operations()
    pool = curate["work_pool"]["name"]
    with get_client(sync_client=True) as client:
        deploy.ensure_work_pools({pool: ops.work_pools[pool]}, client)
        (name,) = deploy.register_deployments(REPO / "prefect.yaml", spec, client)
    return name
