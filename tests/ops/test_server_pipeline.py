"""The issue's "done when": the pipeline on a real local Prefect server, through deployments and workers.

A `prefect server` (its own PREFECT_HOME, no UI), `videorft deploy`, a process worker for `cpu` and
one for `gpu`; then the `pipeline` deployment curates a small synthetic set against the SIMULATED
endpoint, publishes it, and starts `train_sft` → `train_grpo` → `evaluate` as deployments on the gpu
worker with the tiny random Qwen2.5-VL. Checked through the Prefect client: the three training flow
runs COMPLETED, each with the published dataset version as a parameter, chained by checkpoint.

Servers and workers: tests/ops/prefect_server.py (killed at the end, pass or fail).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from prefect_server import PY, REPO, Processes, api, demo_recipe_for, start_server, start_worker, wait_healthy

pytestmark = pytest.mark.integration

N_SAMPLES = 8
SEED = 3  # with test_fraction 0.25: both sets get train and test rows (checked below)


def _curate_recipe(sim_url: str, annotations: Path, work: Path) -> dict[str, Any]:
    """configs/demo.yaml with the simulated endpoint, this test's paths and a held-out split."""
    data = demo_recipe_for(sim_url, annotations, work)
    data["run"].update(name="ops", runs_dir=str(work / "runs"), shard_size=N_SAMPLES)
    data["publish"]["test_fraction"] = 0.25
    return data


def test_pipeline_runs_training_as_deployments_on_a_local_server(tmp_path: Path, procs: Processes) -> None:
    t_start = time.time()
    timings: dict[str, float] = {}
    server, srv = start_server(procs, tmp_path / "prefect-home")
    api_url, env = srv.api_url, srv.env

    # While the server migrates its fresh database: data, tiny model, simulated endpoint.
    from curation.sources.synthetic import generate
    from sim_endpoint.server import SimConfig, running_sim_server
    from training.tiny_qwen import build_tiny_qwen25vl

    annotations = generate(tmp_path / "synth", N_SAMPLES, seed=SEED)
    model_dir = build_tiny_qwen25vl(tmp_path / "tiny-qwen")
    timings["server_healthy"] = wait_healthy(api_url, server, procs)

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
            start_worker(procs, pool, env)

        from prefect import get_client
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName
        from prefect.client.schemas.sorting import FlowRunSort
        from prefect.deployments import run_deployment

        with api(api_url):
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
