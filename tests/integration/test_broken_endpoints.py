"""`videorft curate` against broken endpoints, as a user meets them: nothing listening, a wrong key
(401), a wrong model name (404), a server that accepts and never answers, a server that drops every
connection mid-run. Each run stops non-zero in well under two minutes, names the endpoint, and
publishes nothing; once the endpoint is fixed the same command completes and pays only for rows
never answered (the simulated endpoint's own counters)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from curation.sources.synthetic import generate
from sim_endpoint.server import SimConfig, configure_sim, running_sim_server, sim_stats

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
N = 40
KEY_ENV = "VIDEORFT_TEST_ENDPOINT_KEY"


@pytest.fixture(scope="module")
def synth40(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth40")
    generate(out, N, seed=13)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recipe(tmp_path: Path, vlm_url: str, reasoner_url: str, **endpoint) -> Path:
    data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    for role, ep in data["llm"]["endpoints"].items():
        ep["base_url"] = reasoner_url if role == "reasoner" else vlm_url
        ep.update(timeout_s=5, max_retries=2, backoff_base_s=0.05, backoff_max_s=0.2, **endpoint)
    data["publish"] = {**(data.get("publish") or {}), "out_dir": str(tmp_path / "published")}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _curate(recipe: Path, synth: Path, tmp_path: Path) -> tuple[int, float, str]:
    """`videorft curate` as a user runs it, in its own process: (exit status, seconds, stdout +
    stderr); the last line of stdout is kept apart in LAST."""
    args = [sys.executable, "-m", "flows.cli", "curate", str(recipe)]
    args += ["--source", str(synth / "annotations.jsonl"), "--media-root", str(synth)]
    args += ["--runs-dir", str(tmp_path / "runs"), "--run", "r"]
    t0 = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ), cwd=REPO, timeout=600)
    elapsed = time.monotonic() - t0
    LAST[:] = proc.stdout.strip().splitlines()[-1:]
    return proc.returncode, elapsed, proc.stdout + proc.stderr


LAST: list[str] = []


def _manifest(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "runs" / "r" / "manifest.json").read_text())


def _published(tmp_path: Path) -> list[Path]:
    out = tmp_path / "published"
    return sorted(out.rglob("*.parquet")) + sorted(out.rglob("*.arrow")) if out.exists() else []


BROKEN = {
    # case: (SimConfig fields while broken, the fix, what the message says)
    "nothing listening": ({}, None, "nothing listening"),
    "wrong key": ({"api_key": "the-server-key"}, "key", "refused the API key"),
    "wrong model": (
        {"served_models": ["some-other-model"]},
        {"served_models": []},
        "does not serve this model",
    ),
    "hung server": ({"hang_all": True, "hang_s": 600}, {"hang_all": False}, "no answer within"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_endpoint_stops_the_run_then_the_fixed_one_completes(case, synth40, tmp_path, monkeypatch):
    broken, fix, says = BROKEN[case]
    monkeypatch.setenv(KEY_ENV, "a-wrong-key")
    annotations = [str(synth40 / "annotations.jsonl")]
    with contextlib.ExitStack() as stack:
        if case == "nothing listening":
            port = _free_port()
            url = f"http://127.0.0.1:{port}/v1"
        else:
            url = stack.enter_context(running_sim_server(SimConfig(annotations=annotations, **broken)))
        recipe = _recipe(tmp_path, url, url, api_key_env=KEY_ENV)
        rc, elapsed, out = _curate(recipe, synth40, tmp_path)

        assert rc == 3, out  # endpoint unavailable
        assert elapsed < 120, elapsed
        assert url in out and says in out and "captioner" in out and "fix:" in out
        assert "a-wrong-key" not in out
        assert not _published(tmp_path)
        m = _manifest(tmp_path)
        assert m["status"] == "failed" and m["exit_status"] == 3
        report = (tmp_path / "runs" / "r" / "report.html").read_text()
        assert 'id="run-status">failed' in report and "Nothing of this run was published" in report
        if case != "nothing listening":
            assert sim_stats(url)["requests"] == 0  # stopped before paying for anything

        if case == "nothing listening":
            cfg = SimConfig(annotations=annotations, port=port)
            url = stack.enter_context(running_sim_server(cfg))
        elif fix == "key":
            monkeypatch.setenv(KEY_ENV, "the-server-key")
        else:
            configure_sim(url, **fix)
        rc, _, out = _curate(recipe, synth40, tmp_path)
        assert rc == 0, out
        assert "run r: completed" in out and LAST[0].startswith("  videorft train grpo")
        st = sim_stats(url)
        m = _manifest(tmp_path)
        assert m["status"] == "completed" and _published(tmp_path)
        report = (tmp_path / "runs" / "r" / "report.html").read_text()
        assert 'id="run-status">completed' in report and "run-status-banner" not in report
        assert st["resent_after_success"] == 0
        paid = sum(
            m["stages"][s]["llm_requests"] + m["stages"][s]["llm_retries"]
            for s in ("caption", "draft", "revise")
        )
        assert paid == st["requests"] > 0


def test_an_endpoint_dropping_connections_mid_run_leaves_rows_pending(synth40, tmp_path):
    annotations = [str(synth40 / "annotations.jsonl")]
    with (
        running_sim_server(SimConfig(annotations=annotations)) as vlm,
        running_sim_server(SimConfig(annotations=annotations, drop_all=True)) as reasoner,
    ):
        recipe = _recipe(tmp_path, vlm, reasoner)
        rc, elapsed, out = _curate(recipe, synth40, tmp_path)
        assert rc == 3, out
        assert elapsed < 120
        assert f"reasoner ({reasoner}" in out and "connection dropped" in out and "pending" in out
        assert not _published(tmp_path)
        # Rows whose requests the breaker stopped are pending (absent), not failed: at most the
        # requests that tripped it (breaker_failures - 1) are written as failed.
        draft_dir = tmp_path / "runs" / "r" / "draft"
        drafts = pd.read_parquet(draft_dir) if draft_dir.exists() and any(draft_dir.iterdir()) else None
        failed = 0 if drafts is None else int((drafts["status"] == "failed").sum())
        assert failed <= 2
        answered_captions = sim_stats(vlm)["ok"]
        assert sim_stats(reasoner)["dropped"] > 0
        # What the failed run got through is in its manifest and its last lines: the shards that
        # finished, each stage's counts (a draft shard the breaker stopped did not finish).
        m = _manifest(tmp_path)
        assert m["status"] == "failed" and m["stages"]["extract"]["in"] == N
        caption = m["stages"]["caption"]
        assert caption["llm_requests"] > 0 and caption["accounted"] and caption["shards_total"] >= 1
        draft = m["stages"].get("draft")
        assert draft is None or draft["partial"] is True
        assert any(re.match(r"│ caption( \(\d+ of \d+ shards\))? +│ +\d+ ", ln) for ln in out.splitlines()), (
            out
        )

        configure_sim(reasoner, drop_all=False)
        rc, _, out = _curate(recipe, synth40, tmp_path)
        assert rc == 0, out
        vlm_st, reasoner_st = sim_stats(vlm), sim_stats(reasoner)
        m = _manifest(tmp_path)
        # Nothing answered was paid for twice; the captions answered before the stop were reused.
        assert vlm_st["resent_after_success"] == 0 == reasoner_st["resent_after_success"]
        assert m["stages"]["caption"]["llm_requests"] == N - answered_captions
        assert m["stages"]["draft"]["ok"] == m["stages"]["draft"]["in"]
        assert m["status"] == "completed" and _published(tmp_path)
