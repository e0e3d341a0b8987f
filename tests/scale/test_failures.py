"""A worker process killed mid-stage loses nothing; two runs of one run folder never both write."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil
import pytest

from sim_endpoint.server import reset_sim_stats, sim_stats
from tests.scale.conftest import (
    RUN_BOUND,
    kill_tree,
    manifest_of,
    published_rows,
    recipe_file,
    run_cli,
    start_cli,
    wait_until,
)

pytestmark = pytest.mark.integration


def _dask_workers(pid: int) -> list[psutil.Process]:
    """Worker processes of the local Dask cluster a CLI run started (multiprocessing spawn children)."""
    out = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                out.append(child)
        except psutil.NoSuchProcess:
            pass
    return out


def _start_logged(tmp_path, commands) -> tuple[list[subprocess.Popen], list]:
    """Concurrent CLI runs writing to files, never to pipes: a pipe nobody reads while we wait for
    the other run fills (64 KiB) and blocks its writer, possibly while it holds request claims."""
    logs = [(tmp_path / f"run{i}.log").open("w+") for i in range(len(commands))]
    procs = [
        start_cli(*cmd, stdout=log, stderr=subprocess.STDOUT) for cmd, log in zip(commands, logs, strict=True)
    ]
    return procs, logs


def _finish(procs: list[subprocess.Popen], logs: list, claims: Path | None = None) -> list[str]:
    """Wait for every run (400 s in all); on a timeout, fail with what each run printed and the
    request claims still held (who holds them, alive or not), so a hang can be told apart."""
    deadline = time.monotonic() + 400
    try:
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.2)
        hung = [p.pid for p in procs if p.poll() is None]
        held = (
            {f.name[:12]: f.read_text() for f in sorted(claims.iterdir())}
            if claims and claims.is_dir()
            else {}
        )
    finally:
        for p in procs:
            kill_tree(p)
    outs = []
    for log in logs:
        log.seek(0)
        outs.append(log.read())
        log.close()
    assert not hung, {"still running": hung, "claims held": held, "output": [o[-4000:] for o in outs]}
    return outs


def test_a_worker_killed_mid_stage_loses_nothing_and_the_rerun_resumes(slow_sim, threads_run, tmp_path):
    base, base_stats = threads_run
    url = slow_sim["url"]
    recipe = recipe_file(slow_sim, "killed")
    reset_sim_stats(url)
    (proc,), logs = _start_logged(tmp_path, [(recipe, "--executor", "dask", "--workers", "2")])
    try:
        # Mid-LLM-stage: some answers paid for, most not yet.
        assert wait_until(lambda: sim_stats(url)["requests"] >= 8, timeout=240)
        workers = _dask_workers(proc.pid)
        assert len(workers) == 2, workers
        workers[0].kill()  # SIGKILL: no teardown, no flush, no checkpoint
    finally:
        first = _finish([proc], logs)[0][-3000:]
    # Dask retries the lost worker's shard elsewhere, or the run fails loudly: either way the same
    # command finishes it, and every answer paid for before the kill is reused.
    again = run_cli(recipe)
    assert again.returncode == 0, again.stdout + again.stderr
    manifest = manifest_of(recipe)
    assert manifest["status"] == "completed" and published_rows(manifest) == published_rows(base)
    for stage in ("sources", "extract", "caption", "draft", "revise", "filter"):
        assert manifest["stages"][stage]["accounted"], stage
    stats = sim_stats(url)
    # At most the requests in flight in the killed process were sent again.
    assert stats["resent_after_success"] <= RUN_BOUND, (first, stats)
    assert base_stats["requests"] <= stats["requests"] <= base_stats["requests"] + RUN_BOUND


def test_two_runs_of_one_run_folder_one_fails_fast_naming_the_holder(slow_sim, threads_run, tmp_path):
    base, base_stats = threads_run
    url = slow_sim["url"]
    recipe = recipe_file(slow_sim, "twice")
    reset_sim_stats(url)
    procs, logs = _start_logged(tmp_path, [(recipe,), (recipe,)])
    outs = _finish(procs, logs)
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    loser = next(o for p, o in zip(procs, outs, strict=True) if p.returncode == 2)
    winner = next(p for p in procs if p.returncode == 0)
    assert "is in use by another run" in loser and f"pid {winner.pid}" in loser, loser
    manifest = manifest_of(recipe)
    assert manifest["status"] == "completed" and published_rows(manifest) == published_rows(base)
    stats = sim_stats(url)
    assert stats["requests"] == base_stats["requests"] and stats["resent_after_success"] == 0


def test_two_runs_sharing_a_cache_at_once_pay_for_each_answer_once(slow_sim, threads_run, tmp_path):
    """Different run folders, one runs dir (so one response cache): the requests both need are
    claimed by one, and the other waits for its answer."""
    base, base_stats = threads_run
    url = slow_sim["url"]
    recipe = recipe_file(slow_sim, "shared")
    reset_sim_stats(url)
    procs, logs = _start_logged(tmp_path, [(recipe, "--run", name, "--until", "revise") for name in "ab"])
    outs = _finish(procs, logs, claims=slow_sim["root"] / "shared" / "llm_cache" / "claims")
    assert [p.returncode for p in procs] == [0, 0], outs
    stats = sim_stats(url)
    assert stats["requests"] == base_stats["requests"] and stats["resent_after_success"] == 0, stats
