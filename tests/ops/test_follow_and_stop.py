"""`videorft curate` as a person runs it without a terminal: progress lines while it runs, Ctrl-C
that stops it within seconds, and a rerun that says what it resumes and pays for nothing twice.

A real `videorft curate` process (stdout and stderr to a file, as under nohup) against the
simulated endpoint with latency, so the run lasts several progress intervals.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROGRESS = re.compile(
    r"progress (?P<stage>\w+): (?P<done>\d+)/~?(?P<total>\d+) rows \(\d+%\), (?P<rate>[\d.]+) rows/s, "
    r"ETA (?P<eta>[\d:]+|unknown), .*failed \d+, shards \d+/\d+ done"
)


def _recipe(tmp_path: Path, synth: Path, base_url: str) -> Path:
    data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    for ep in data["llm"]["endpoints"].values():
        ep.update(base_url=base_url, max_in_flight=2)
    data["source"].update(path=str(synth / "annotations.jsonl"), media_root=str(synth))
    # Small shards, two at a time, a 1 s progress interval: a run of a dozen seconds shows many lines.
    data["run"].update(
        runs_dir=str(tmp_path / "runs"),
        name="follow",
        shard_size=4,
        max_parallel_shards=2,
        progress_interval_s=1,
    )
    data["video"].update(num_frames=4, max_frames=4)
    data.setdefault("publish", {})["out_dir"] = str(tmp_path / "datasets")
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _start(recipe: Path, log: Path, tmp_path: Path) -> subprocess.Popen:
    # PREFECT_LOGGING_LEVEL as a user has it (the test session quiets it to WARNING).
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_LOGGING_LEVEL": "INFO"}
    with log.open("w") as out:  # no terminal: stdout and stderr to a file
        return subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "curate", str(recipe)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


@pytest.mark.integration
def test_progress_lines_while_it_runs_ctrl_c_within_seconds_and_a_rerun_that_resumes(tmp_path, synth_dir):
    from sim_endpoint.server import SimConfig, running_sim_server, sim_stats

    cfg = SimConfig(annotations=[str(synth_dir / "annotations.jsonl")], latency_s=0.25, jitter_s=0.05)
    with running_sim_server(cfg) as base_url:
        recipe = _recipe(tmp_path, synth_dir, base_url)
        log = tmp_path / "run1.log"
        proc = _start(recipe, log, tmp_path)
        try:
            # Progress arrives while the run works, not at its end: lines seen at different
            # moments, the process still running each time.
            seen_at: dict[str, float] = {}
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and proc.poll() is None:
                for line in log.read_text().splitlines():
                    if PROGRESS.search(line) and line not in seen_at:
                        seen_at[line] = time.monotonic()
                llm_done = [
                    m
                    for m in map(PROGRESS.search, seen_at)
                    if m and m["stage"] == "caption" and int(m["done"]) > 0
                ]
                if llm_done and max(seen_at.values()) - min(seen_at.values()) >= 2:
                    break
                time.sleep(0.2)
            assert proc.poll() is None, log.read_text()
            assert max(seen_at.values()) - min(seen_at.values()) >= 2, log.read_text()
            for m in map(PROGRESS.search, seen_at):
                assert int(m["done"]) <= int(m["total"]) and float(m["rate"]) >= 0 and m["eta"]
            assert any(m["eta"] != "unknown" and float(m["rate"]) > 0 for m in map(PROGRESS.search, seen_at))

            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=30)
            stopped_in = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out = log.read_text()
        assert rc == 130, out
        assert stopped_in < 10, (stopped_in, out)
        assert "Traceback" not in out
        assert (
            [ln for ln in out.splitlines() if ln.startswith("interrupted (SIGINT)")]
            == [
                ln
                for ln in out.splitlines()
                if "interrupted (SIGINT): run 'follow' stopped, nothing published" in ln
            ]
            != []
        )
        manifest = json.loads((tmp_path / "runs" / "follow" / "manifest.json").read_text())
        assert manifest["status"] == "interrupted" and manifest["interrupted"]["signal"] == "SIGINT"
        assert "publish" not in manifest
        assert not (tmp_path / "datasets").exists()
        assert 'id="interrupted-banner"' in (tmp_path / "runs" / "follow" / "report.html").read_text()
        paid_first = sim_stats(base_url)["requests"]
        # Answers the first run received (the response cache) and requests it abandoned in flight
        # (sent, no answer within the stop's grace: at most the in-flight bound, 2 per endpoint).
        from curation.config import load_recipe
        from curation.llm.cache import ResponseCache

        cache = ResponseCache(load_recipe(recipe).cache_path)
        try:
            received = len(cache)
        finally:
            cache.close()
        abandoned = paid_first - received
        assert 0 <= abandoned <= 4, (paid_first, received)

        rerun_log = tmp_path / "run2.log"
        proc2 = _start(recipe, rerun_log, tmp_path)
        rc2 = proc2.wait(timeout=300)
        out2 = rerun_log.read_text()
        assert rc2 == 0, out2
        resumed = re.findall(r"resuming: (\d+) of ~?(\d+) (\w+) rows already done", out2)
        assert resumed and any(int(done) > 0 for done, _, _ in resumed), out2
        stats = sim_stats(base_url)
    # No answer paid twice: the rerun sent again at most the requests the first run abandoned in
    # flight (whose answers it never received); everything it received came from the cache.
    assert stats["requests"] - stats["distinct_requests"] <= abandoned, (stats, abandoned)
    manifest = json.loads((tmp_path / "runs" / "follow" / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["publish"]["cot_rows"] > 0
    # No claim on the rerun's cache hits: run 1 may have recorded every received answer's row done
    # before the stop (the rerun then skips those rows and hits nothing), which is right.
    assert paid_first > 0
