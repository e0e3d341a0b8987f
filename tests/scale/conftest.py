"""Curate runs of one small synthetic set on every executor, against one simulated endpoint.

Each run gets its own runs dir (so its own response cache): the requests it sends are what it
would pay for alone. The demo recipe with a small `max_in_flight`, so the run-wide bound shows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from tests.integration.conftest import REPO, deep_update, sim_recipe  # noqa: F401 - fixture

N_SAMPLES = 16
# Per role; the captioner and the reviser share one model, so the run may have 2 x 2 in flight.
MAX_IN_FLIGHT = 2
RUN_BOUND = 2 * MAX_IN_FLIGHT


@pytest.fixture(scope="package")
def scale_data(tmp_path_factory):
    from curation.sources.synthetic import generate
    from sim_endpoint.server import SimConfig, running_sim_server

    root = tmp_path_factory.mktemp("scale")
    synth = root / "synth"
    generate(synth, N_SAMPLES, seed=5)
    cfg = SimConfig(annotations=[str(synth / "annotations.jsonl")], latency_s=0.05, jitter_s=0.0)
    with running_sim_server(cfg, subprocess=True) as url:
        yield {"root": root, "synth": synth, "url": url}


@pytest.fixture(scope="package")
def threads_run(scale_data):
    """The reference: the default executor's manifest and the requests it sent."""
    from flows.curate import run_curate
    from sim_endpoint.server import reset_sim_stats, sim_stats

    reset_sim_stats(scale_data["url"])
    manifest = run_curate(recipe_file(scale_data, "threads"))
    return manifest, sim_stats(scale_data["url"])


@pytest.fixture(scope="package")
def slow_sim(scale_data):
    """The same endpoint answering in 0.4 s, so a run is still mid-stage when a test interferes."""
    from sim_endpoint.server import SimConfig, running_sim_server

    synth = scale_data["synth"]
    cfg = SimConfig(annotations=[str(synth / "annotations.jsonl")], latency_s=0.4, jitter_s=0.0)
    with running_sim_server(cfg, subprocess=True) as url:
        yield {**scale_data, "url": url}


def recipe_file(data: dict[str, Any], name: str, **patch: Any) -> Path:
    """configs/demo.yaml pointed at the package's data and endpoint, in its own runs dir."""
    recipe = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    for ep in recipe["llm"]["endpoints"].values():
        ep.update(base_url=data["url"], max_in_flight=MAX_IN_FLIGHT)
    synth, runs = data["synth"], data["root"] / name
    recipe["source"].update(path=str(synth / "annotations.jsonl"), media_root=str(synth))
    recipe["run"].update(runs_dir=str(runs), name="r", shard_size=4, max_parallel_shards=4)
    recipe.setdefault("publish", {})["out_dir"] = str(runs / "published")
    deep_update(recipe, patch)
    path = data["root"] / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def published_rows(manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Both published sets, rows sorted by id, without what names the run's folders."""
    out = {}
    for kind in ("cot_dir", "rl_dir"):
        folder = Path(manifest["publish"][kind])
        rows = [r for f in sorted(folder.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]
        out[kind] = sorted(
            (json.loads(json.dumps(r, default=str)) for r in rows), key=lambda r: json.dumps(r)
        )
    return out


def curate_cmd(recipe: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "flows.cli", "curate", str(recipe), *extra]


def start_cli(recipe: Path, *extra: str, **popen: Any) -> subprocess.Popen:
    """A CLI run in its own process group (kill_tree stops it and everything it started)."""
    return subprocess.Popen(
        curate_cmd(recipe, *extra), cwd=REPO, env=cli_env(), start_new_session=True, text=True, **popen
    )


def run_cli(recipe: Path, *extra: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        curate_cmd(recipe, *extra), cwd=REPO, capture_output=True, text=True, timeout=timeout, env=cli_env()
    )


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    return env


def manifest_of(recipe: Path) -> dict[str, Any]:
    runs = Path(yaml.safe_load(recipe.read_text())["run"]["runs_dir"])
    return json.loads((runs / "r" / "manifest.json").read_text())


def kill_tree(proc: subprocess.Popen) -> None:
    """Stop a CLI run we started and every process it started (its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def wait_until(cond, timeout: float, poll: float = 0.05) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(poll)
    return False
