"""`--executor dask|ray --workers 2` publish what threads publish, pay for the same requests, keep
the endpoint's bound for the whole run, and account for every stage in one manifest."""

from __future__ import annotations

import pytest

from flows.curate import curate, run_curate
from sim_endpoint.server import reset_sim_stats, sim_stats
from tests.scale.conftest import RUN_BOUND, published_rows, recipe_file

pytestmark = pytest.mark.integration

ALL_STAGES = ("sources", "extract", "caption", "draft", "revise", "filter", "publish")


def _check_like_threads(manifest, stats, threads_run, workers: int) -> None:
    base, base_stats = threads_run
    assert manifest["status"] == "completed"
    assert set(ALL_STAGES) <= set(manifest["stages"]), manifest["stages"].keys()
    for stage in ALL_STAGES[:-1]:
        d, b = manifest["stages"][stage], base["stages"][stage]
        assert d["accounted"] and (d["in"], d["ok"], d["rejected"], d["failed"]) == (
            b["in"],
            b["ok"],
            b["rejected"],
            b["failed"],
        ), stage
    # The flow wrote what every process did: sources, publish and report are all there.
    assert manifest["publish"]["cot_rows"] == base["publish"]["cot_rows"] > 0
    assert manifest.get("report") and manifest["worker_processes"] == workers
    assert published_rows(manifest) == published_rows(base)
    assert stats["requests"] == base_stats["requests"] > 0 and stats["resent_after_success"] == 0
    assert (
        sum(manifest["stages"][s]["llm_requests"] for s in ("caption", "draft", "revise"))
        == stats["requests"]
    )
    # max_in_flight holds for the run, not per worker process.
    assert stats["max_in_flight"] <= RUN_BOUND


def test_dask_worker_processes_publish_what_threads_publish(scale_data, threads_run):
    reset_sim_stats(scale_data["url"])
    manifest = run_curate(recipe_file(scale_data, "dask", run={"executor": "dask", "workers": 2}))
    _check_like_threads(manifest, sim_stats(scale_data["url"]), threads_run, workers=2)


def test_ray_worker_processes_publish_what_threads_publish(scale_data, threads_run):
    """Through the flow's own parameters, as the `curate` deployment passes them: the flow starts
    the Ray task runner itself (a subflow)."""
    reset_sim_stats(scale_data["url"])
    manifest = curate(config=str(recipe_file(scale_data, "ray")), executor="ray", workers=2)
    _check_like_threads(manifest, sim_stats(scale_data["url"]), threads_run, workers=2)
