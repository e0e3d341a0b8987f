"""The issue's "done when": the pipeline on a real local Prefect server, through deployments and workers.

A `prefect server` (its own PREFECT_HOME, no UI), `videorft deploy`, a process worker for `cpu` and
one for `gpu`; then the `pipeline` deployment curates a small synthetic set against the SIMULATED
endpoint, publishes it, and starts `train_sft` → `train_grpo` → `evaluate` as deployments on the gpu
worker with the tiny random Qwen2.5-VL. Checked through the Prefect client: the three training flow
runs COMPLETED, each with the published dataset version as a parameter, chained by checkpoint.

Every process started here runs in its own process group and is killed (with its descendants) at
the end, pass or fail. The test's own Prefect client calls go to this server through
`temporary_settings`; tests/conftest.py's session PREFECT_HOME is left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
N_SAMPLES = 8
SEED = 3  # with test_fraction 0.25: both sets get train and test rows (checked below)


def _free_port() -> int:
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


def _wait_healthy(url: str, proc: subprocess.Popen, procs: Processes, timeout_s: float = 150) -> float:
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
def _api(url: str) -> Iterator[None]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}):
        yield


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    p = Processes(log_dir)
    try:
        yield p
    finally:
        p.stop_all()


def _curate_recipe(sim_url: str, annotations: Path, work: Path) -> dict[str, Any]:
    """configs/demo.yaml with the simulated endpoint, this test's paths and a held-out split."""
    from curation.config import expand_env

    os.environ["VIDEORFT_SIM_URL"] = sim_url
    try:
        data = expand_env(yaml.safe_load((REPO / "configs" / "demo.yaml").read_text()))
    finally:
        os.environ.pop("VIDEORFT_SIM_URL", None)
    data["source"]["path"] = str(annotations)
    data["source"]["media_root"] = str(annotations.parent)
    data["run"].update(name="ops", runs_dir=str(work / "runs"), shard_size=N_SAMPLES)
    data.setdefault("publish", {}).update(out_dir=str(work / "published"), test_fraction=0.25)
    return data


def test_pipeline_runs_training_as_deployments_on_a_local_server(tmp_path: Path, procs: Processes) -> None:
    t_start = time.time()
    timings: dict[str, float] = {}
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    base_env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="INFO",
        DO_NOT_TRACK="1",
        PYTHONUNBUFFERED="1",
    )
    server = procs.start(
        "server",
        [PY, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        base_env,
    )
    env = {
        **base_env,
        "PREFECT_API_URL": api_url,
        # Workers poll every second (default 10 s); flow runs on 2 cores: one torch thread each.
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "OMP_NUM_THREADS": "1",
    }

    # While the server migrates its fresh database: data, tiny model, simulated endpoint.
    from curation.sources.synthetic import generate
    from sim_endpoint.server import SimConfig, running_sim_server
    from training.tiny_qwen import build_tiny_qwen25vl

    annotations = generate(tmp_path / "synth", N_SAMPLES, seed=SEED)
    model_dir = build_tiny_qwen25vl(tmp_path / "tiny-qwen")
    timings["server_healthy"] = _wait_healthy(api_url, server, procs)

    sim_cfg = SimConfig(annotations=[str(annotations)], latency_s=0.0, jitter_s=0.0)
    with running_sim_server(sim_cfg) as sim_url:
        t = time.time()
        deploy = subprocess.run(
            [PY, "-m", "flows.cli", "deploy", "--prefect-file", str(REPO / "prefect.yaml")],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        timings["deploy"] = time.time() - t
        assert deploy.returncode == 0, f"videorft deploy failed:\n{deploy.stdout}\n{deploy.stderr}"

        for pool in ("cpu", "gpu"):
            procs.start(
                f"worker-{pool}",
                [
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
                ],
                env,
            )

        from prefect import get_client
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName
        from prefect.client.schemas.sorting import FlowRunSort
        from prefect.deployments import run_deployment

        with _api(api_url):
            with get_client(sync_client=True) as client:
                # What deploy set up: pools, the GPU slot limit, the endpoint tag limit, deployments.
                assert client.read_work_pool("gpu").concurrency_limit == 1
                assert client.read_work_pool("cpu").type == "process"
                assert client.read_concurrency_limit_by_tag("llm:127.0.0.1:8765").concurrency_limit == 4
                nightly = client.read_deployment_by_name("curate/curate")
                assert nightly.work_pool_name == "cpu" and nightly.schedules[0].schedule.cron == "0 2 * * *"
                assert nightly.pull_steps == [
                    {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}
                ]
                client.pause_deployment(nightly.id)  # no stray nightly run while the test runs
                for name in ("train_sft/train-sft", "train_grpo/train-grpo", "evaluate/evaluate"):
                    dep = client.read_deployment_by_name(name)
                    assert dep.work_pool_name == "gpu", name
                    assert (
                        dep.global_concurrency_limit is not None and dep.global_concurrency_limit.limit == 1
                    )

            t = time.time()
            parameters = {
                "curate_recipe": _curate_recipe(sim_url, annotations, tmp_path),
                "curate_config": None,
                "base_model": str(model_dir),
                "output_root": str(tmp_path / "train"),
                "sft_overrides": {"max_steps": 2},
                "grpo_overrides": {"max_steps": 1},
                "eval_overrides": {"max_new_tokens": 16},
                "use_deployments": True,
                "step_timeout_s": 240,
                "poll_interval_s": 1,
            }
            pipeline_run = run_deployment(
                "pipeline/pipeline", parameters=parameters, timeout=420, poll_interval=2
            )
            timings["pipeline"] = time.time() - t
            state = pipeline_run.state
            assert state is not None and state.is_completed(), f"pipeline ended {state}\n{procs.logs()}"

            manifest = json.loads((tmp_path / "runs" / "ops" / "manifest.json").read_text())
            pub = manifest["publish"]
            version = pub["version"]
            assert pub["splits"]["cot"].get("train") and pub["splits"]["rl"].get("test"), pub["splits"]

            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=["train_sft", "train_grpo", "evaluate"])),
                    sort=FlowRunSort.START_TIME_ASC,
                    limit=20,
                )
                flows = {f.id: f.name for f in (client.read_flow(r.flow_id) for r in runs)}
                by_flow = {flows[r.flow_id]: r for r in runs}
                children = {
                    r.id
                    for r in client.read_flow_runs(sort=FlowRunSort.START_TIME_ASC, limit=50)
                    if r.parent_task_run_id is not None
                }

    assert set(by_flow) == {"train_sft", "train_grpo", "evaluate"}, [r.name for r in runs]
    assert len(runs) == 3
    for flow_name, prefix in (("train_sft", "sft"), ("train_grpo", "grpo"), ("evaluate", "eval")):
        fr = by_flow[flow_name]
        assert fr.state_type.value == "COMPLETED", (flow_name, fr.state)
        assert fr.parameters["dataset_version"] == version
        assert fr.name == f"{prefix}-{version}"
        assert fr.deployment_id is not None and fr.work_pool_name == "gpu"
        assert fr.id in children, f"{flow_name} is not linked to the pipeline run"

    sft, grpo, ev = by_flow["train_sft"], by_flow["train_grpo"], by_flow["evaluate"]
    assert sft.parameters["dataset"] == pub["cot_dir"]
    assert grpo.parameters["dataset"] == pub["rl_dir"]
    assert grpo.parameters["checkpoint"] == sft.parameters["output_dir"]
    assert ev.parameters["checkpoint"] == grpo.parameters["output_dir"]

    # Results travelled through files.
    for params in (sft.parameters, grpo.parameters, ev.parameters):
        record = json.loads((Path(params["output_dir"]) / "videorft_result.json").read_text())
        assert record["dataset_version"] == version and record["status"] == "completed"
    assert (Path(ev.parameters["output_dir"]) / "metrics.json").exists()
    summary = json.loads((tmp_path / "train" / "ops" / version / "pipeline.json").read_text())
    assert summary["grpo"]["input_model"] == summary["sft"]["checkpoint"]

    timings["total"] = time.time() - t_start
    print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
