"""Cancelling a curate flow run from Prefect (UI / API) on a real server and process worker: the
worker's SIGTERM stops the run within seconds, the run folder says `interrupted`, nothing is
published, and the flow run ends Cancelled. Progress lines reach the flow run's logs on the server
while it runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prefect_server import (
    Processes,
    api,
    demo_recipe_for,
    deploy_curate,
    start_server,
    start_worker,
    wait_healthy,
)

N_SAMPLES = 24


@pytest.mark.integration
def test_cancelling_a_deployed_curate_run_marks_it_interrupted(tmp_path: Path, procs: Processes) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.deployments import run_deployment
    from prefect.states import Cancelling

    from curation.sources.synthetic import generate
    from sim_endpoint.server import SimConfig, running_sim_server

    server, srv = start_server(procs, tmp_path / "prefect-home")
    annotations = generate(tmp_path / "synth", N_SAMPLES, seed=3)
    wait_healthy(srv.api_url, server, procs)
    # Slow answers, few in flight: the run lasts long enough to be cancelled in the middle.
    sim = SimConfig(annotations=[str(annotations)], latency_s=0.5, jitter_s=0.0)
    with running_sim_server(sim) as sim_url, api(srv.api_url):
        recipe = demo_recipe_for(sim_url, annotations, tmp_path)
        recipe["run"].update(shard_size=4, max_parallel_shards=2, progress_interval_s=1)
        for ep in recipe["llm"]["endpoints"].values():
            ep["max_in_flight"] = 2
        recipe.setdefault("filters", {})["open_ended_agreement"] = {"enabled": False}
        name = deploy_curate({"recipe": recipe, "run": "cancelme"})
        start_worker(procs, "cpu", srv.env, "--limit", "1")
        fr = run_deployment(name, timeout=0)
        run_dir = tmp_path / "runs" / "cancelme"
        with get_client(sync_client=True) as client:
            deadline = time.time() + 300
            # Cancel once LLM answers are coming in (a caption shard's progress record exists).
            while not list((run_dir / "progress").glob("caption-*.json")):
                state = client.read_flow_run(fr.id).state
                assert state is None or not state.is_final(), f"{state}\n{procs.logs()}"
                assert time.time() < deadline, procs.logs()
                time.sleep(0.5)
            time.sleep(2)  # two progress intervals
            client.set_flow_run_state(fr.id, Cancelling(), force=True)
            t0 = time.time()
            while not (state := client.read_flow_run(fr.id).state).is_final():
                assert time.time() - t0 < 60, procs.logs()
                time.sleep(0.5)
            ended_in = time.time() - t0
            # Logs reach the server in batches: wait for the flow's own last line.
            for _ in range(40):
                logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[fr.id])))
                if any(log.message.startswith("interrupted by SIGTERM") for log in logs):
                    break
                time.sleep(0.5)

    assert state.is_cancelled(), f"{state}\n{procs.logs()}"
    assert ended_in < 30, ended_in
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["interrupted"]["signal"] == "SIGTERM", manifest
    assert "publish" not in manifest and not (tmp_path / "published").exists()
    messages = [log.message for log in logs]
    assert any(m.startswith("progress caption: ") for m in messages), messages
    assert any(m.startswith("interrupted by SIGTERM") for m in messages), messages
