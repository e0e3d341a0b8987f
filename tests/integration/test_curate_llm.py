"""The LLM stages end to end through the curate flow against the simulated endpoint."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from curation.sources.synthetic import generate
from flows.curate import run_curate
from sim_endpoint.server import SimConfig, reset_sim_stats, running_sim_server, sim_stats

pytestmark = pytest.mark.integration

LLM_STAGES = ("caption", "draft", "revise")


def _accounted(manifest: dict, stages) -> None:
    for stage in stages:
        d = manifest["stages"][stage]
        assert d["in"] == d["ok"] + d["rejected"] + d["failed"], (stage, d)


def test_200_samples_until_revise_then_rerun_is_all_cache_hits(tmp_path, sim_recipe):
    synth = tmp_path / "S"
    generate(synth, 200, seed=11)
    cfg = SimConfig(annotations=[str(synth / "annotations.jsonl")], latency_s=0.01, capacity=64)
    with running_sim_server(cfg) as url:
        recipe = sim_recipe(synth, url, tmp_path / "runs", run="big")
        recipe.run.shard_size = 25
        t0 = time.time()
        m1 = run_curate(recipe=recipe, until="revise")
        t1 = time.time() - t0
        first = sim_stats(url)
        _accounted(m1, ("sources", "extract", *LLM_STAGES))
        assert m1["stages"]["sources"]["in"] == 200
        for stage in LLM_STAGES:
            d = m1["stages"][stage]
            assert d["in"] == 200 and d["ok"] == 200, (stage, d)
            assert d["llm_requests"] == 200 and d["llm_cache_hits"] == 0
        assert first["requests"] == 600 and first["resent_after_success"] == 0

        reset_sim_stats(url)
        t0 = time.time()
        m2 = run_curate(recipe=recipe, until="revise")
        t2 = time.time() - t0
        assert sim_stats(url)["requests"] == 0
        for stage in ("extract", *LLM_STAGES):
            d = m2["stages"][stage]
            assert d["llm_requests"] == 0 and d["reused"] == 200, (stage, d)
        _accounted(m2, ("sources", "extract", *LLM_STAGES))
    # The rerun only pays fixed start-up costs: no shard is recomputed, nothing is sent.
    assert t2 < t1, (t1, t2)
    for stage in ("extract", *LLM_STAGES):
        assert m2["stages"][stage]["shards_skipped"] == m2["stages"][stage]["shards"], stage


def test_faults_of_every_kind_lose_nothing_and_pay_nothing_twice(tmp_path, synth_dir, sim_recipe):
    cfg = SimConfig(
        annotations=[str(synth_dir / "annotations.jsonl")],
        faults={
            "server_error": 0.04,
            "rate_limited": 0.04,
            "hang": 0.04,
            "malformed": 0.04,
            "truncated": 0.04,
        },
        retry_after_s=0.05,
        hang_s=3.0,
        seed=5,
    )
    endpoint = {"timeout_s": 1.0, "max_retries": 10, "backoff_base_s": 0.02, "backoff_max_s": 0.1}
    with running_sim_server(cfg) as url:
        patch = {"llm": {"endpoints": {r: dict(endpoint) for r in ("captioner", "reasoner", "reviser")}}}
        recipe = sim_recipe(synth_dir, url, tmp_path / "runs", run="faults", **patch)
        m = run_curate(recipe=recipe, until="revise")
        st = sim_stats(url)
        n = m["stages"]["sources"]["ok"]
        _accounted(m, ("sources", "extract", *LLM_STAGES))
        # Faults happened, and every transient one was retried to success.
        assert st["server_error"] + st["rate_limited"] + st["hang"] + st["malformed"] > 0
        assert st["resent_after_success"] == 0
        # The manifest's counters are what the endpoint itself saw: every request and retry
        # arrived, every failed attempt was an error (or a hang) it served.
        stages = [m["stages"][s] for s in LLM_STAGES]
        assert sum(d["llm_requests"] + d["llm_retries"] for d in stages) == st["requests"]
        assert sum(d["llm_errors"] for d in stages) == st["errors"] > 0
        kinds = {k: sum(d["llm_errors_by_kind"].get(k, 0) for d in stages) for k in ("http_500", "http_429")}
        assert kinds == {"http_500": st["server_error"], "http_429": st["rate_limited"]}
        assert sum(d["llm_errors_by_kind"].get("malformed", 0) for d in stages) == st["malformed"]
        assert sum(d["llm_errors_by_kind"].get("timeout", 0) for d in stages) == st["hang"]
        for stage in LLM_STAGES:
            df = pd.read_parquet(tmp_path / "runs" / "faults" / stage)
            assert df["id"].is_unique
            failed = df[df["status"] == "failed"]
            # Only permanent faults fail a row: a truncated answer (paid, cached, not retried).
            assert all("truncated" in r for r in failed["reason"]), failed["reason"].tolist()
        assert m["stages"]["caption"]["in"] == n

        # A rerun sends nothing for what already succeeded and reproduces the same verdicts.
        reset_sim_stats(url)
        m2 = run_curate(recipe=recipe, until="revise")
        st2 = sim_stats(url)
        assert st2["resent_after_success"] == 0
        for stage in LLM_STAGES:
            assert m2["stages"][stage]["failed"] == m["stages"][stage]["failed"]
        assert st2["ok"] == 0
