"""Schedules fire: the `curate` deployment of prefect.yaml, on a real local Prefect server and a
process worker, with a schedule of seconds, gets flow runs from Prefect's own scheduler and they
complete. (With SQLAlchemy 2.1 the scheduler crashed every loop and no run was ever created.)

The deployment is registered by flows/deploy.py from prefect.yaml's own `curate` entry (entrypoint,
build and pull steps, work pool): only its schedule (every 10 s instead of nightly) and parameters
(a small recipe against the simulated endpoint) change. Two scheduled runs complete on the same run
folder; the second is the nightly rerun of unchanged data: everything reused, no new version.

Also here: the `make setup` check that the installed SQLAlchemy and fastapi are ones Prefect
3.8.8's server works with.
"""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from prefect_server import (
    REPO,
    Processes,
    api,
    demo_recipe_for,
    deploy_curate,
    start_server,
    start_worker,
    wait_healthy,
)

from flows import prefect_compat

INTERVAL_S = 10
N_SAMPLES = 3


# ---- versions ---------------------------------------------------------------------------------------


def test_installed_versions_are_ones_prefects_server_works_with():
    assert prefect_compat.problems() == []


def test_the_check_names_what_breaks_the_scheduler():
    bad = prefect_compat.problems({"prefect": "3.8.8", "sqlalchemy": "2.1.9", "fastapi": "0.150.0"})
    assert len(bad) == 1 and "sqlalchemy 2.1.9" in bad[0] and "scheduler" in bad[0]
    bad = prefect_compat.problems({"prefect": "3.8.8", "sqlalchemy": "2.0.58", "fastapi": "0.152.0"})
    assert len(bad) == 1 and "fastapi" in bad[0]
    assert (
        "measured for 3.8.8"
        in prefect_compat.problems({"prefect": "3.9.0", "sqlalchemy": "2.0.58", "fastapi": "0.150.0"})[0]
    )


def test_pyproject_pins_what_the_check_requires():
    from packaging.requirements import Requirement

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {(r := Requirement(d)).name.lower(): r.specifier for d in deps}
    assert str(pins["prefect"]) == f"=={prefect_compat.PREFECT_VERSION}"
    for name, (spec, _) in prefect_compat.REQUIRED.items():
        assert pins[name] == type(pins[name])(spec), name


# ---- a schedule that fires --------------------------------------------------------------------------


def _recipe(sim_url: str, annotations: Path, work: Path) -> dict[str, Any]:
    data = demo_recipe_for(sim_url, annotations, work)
    data["run"]["shard_size"] = N_SAMPLES
    # The sentence encoder of open-ended agreement costs ~10 s per run to load; not what is tested.
    data.setdefault("filters", {})["open_ended_agreement"] = {"enabled": False}
    return data


def _deploy_curate_every(seconds: int, parameters: dict[str, Any]) -> str:
    """prefect.yaml's `curate` deployment with an interval schedule, through flows/deploy.py."""
    return deploy_curate(parameters, [{"interval": seconds}])


@pytest.mark.integration
def test_a_deployed_schedule_fires_and_its_runs_complete(tmp_path: Path, procs: Processes) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    from curation.sources.synthetic import generate
    from sim_endpoint.server import SimConfig, running_sim_server

    t0 = time.time()
    # Few runs ahead (the default is up to 100 for a 10 s interval): the test needs two.
    server, srv = start_server(
        procs, tmp_path / "prefect-home", PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS="3"
    )
    annotations = generate(tmp_path / "synth", N_SAMPLES, seed=5)  # while the server migrates
    healthy = wait_healthy(srv.api_url, server, procs)

    sim = SimConfig(annotations=[str(annotations)], latency_s=0.0, jitter_s=0.0)
    with running_sim_server(sim) as sim_url, api(srv.api_url):
        name = _deploy_curate_every(
            INTERVAL_S, {"recipe": _recipe(sim_url, annotations, tmp_path), "run": "nightly"}
        )
        # One run at a time: the nightly runs share a run folder.
        start_worker(procs, "cpu", srv.env, "--limit", "1")
        with get_client(sync_client=True) as client:
            dep = client.read_deployment_by_name(name)
            assert dep.schedules and dep.schedules[0].schedule.interval.total_seconds() == INTERVAL_S
            deadline = time.time() + 300
            while True:
                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
                    sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                    limit=20,
                )
                done = [r for r in runs if r.state_type.value == "COMPLETED"]
                broken = [r for r in runs if r.state_type.value in ("FAILED", "CRASHED", "CANCELLED")]
                assert not broken, f"{broken[0].name}: {broken[0].state}\n{procs.logs()}"
                if len(done) >= 2:
                    break
                assert time.time() < deadline, (
                    f"runs: {[(r.name, r.state_name) for r in runs]}\n{procs.logs()}"
                )
                time.sleep(1)
            arts = {a.key for a in client.read_artifacts(limit=50, offset=0)}

    assert all(r.auto_scheduled for r in runs), "a run was not made by the scheduler"
    first, second = done[:2]
    # Slots of the schedule (a later slot when the worker was busy: runs wait, they are not dropped).
    gap = (second.expected_start_time - first.expected_start_time).total_seconds()
    assert gap > 0 and gap % INTERVAL_S == 0, gap
    assert {"nightly-report", "nightly-summary"} <= arts, arts

    run_dir = tmp_path / "runs" / "nightly"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    # The later run found everything done: no request, same content, the version reused.
    assert manifest["stages"]["caption"]["reused"] == manifest["stages"]["caption"]["in"] == N_SAMPLES
    assert manifest["publish"]["reused"] is True
    versions = [p for p in (tmp_path / "published" / "videorft").iterdir() if p.is_dir()]
    assert [p.name for p in versions] == [manifest["publish"]["version"]]
    card = (versions[0] / "cot" / "README.md").read_text()
    assert "simulated endpoint" in card.split("---\n", 2)[2].split("\n\n")[1]
    print(
        f"server healthy after {healthy:.1f}s; two scheduled runs completed {time.time() - t0:.1f}s after start"
    )
