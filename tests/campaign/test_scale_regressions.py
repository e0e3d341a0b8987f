"""Regression tests for what the scale benchmark (benchmarks/bench_scale.py) found.

1. The flow's (stage x shard) grid used to be submitted at once with `wait_for`: a waiting task
   holds a thread of the task runner, so most of `max_parallel_shards` threads sat blocked and the
   endpoint saw one shard's requests at a time. Now several shards are in LLM stages at once.
2. Identical requests in flight at the same time (the caption of one video asked by many samples)
   were each sent and paid: now the gateway sends one and the others wait for its answer.
3. Many questions on one video: the video is decoded once per run and config, and its frames are
   stored once, in one folder its samples share (per-sample folders of hard links cost 8 KiB of
   directories per sample: 785 MiB of the 876 MiB run store at N = 100,000).
"""

from __future__ import annotations

import json

import pytest

from curation.llm.gateway import ChatRequest, EndpointConfig, Gateway
from sim_endpoint.server import SimConfig, running_sim_server, sim_stats


def test_identical_requests_in_flight_are_sent_once(tmp_path):
    with running_sim_server(SimConfig(latency_s=0.2, capacity=64)) as url:
        cfg = EndpointConfig(base_url=url, model="m", max_in_flight=16, timeout_s=10, max_retries=0)
        with Gateway({"captioner": cfg}, cache_path=tmp_path / "cache.sqlite") as gw:
            msgs = [{"role": "user", "content": "[videorft-stage: none] the same question"}]
            reqs = [ChatRequest("captioner", msgs, {"temperature": 0}, tag=f"s{i}") for i in range(12)]
            results = gw.run(reqs)
            st = gw.stats()["captioner"]
        assert all(r.ok for r in results)
        assert len({r.content for r in results}) == 1
        assert sim_stats(url)["requests"] == 1
        assert st["requests"] == 1 and st["cache_hits"] == 11
        assert sum(not r.cached for r in results) == 1


def test_a_failed_leader_lets_the_waiting_requests_try_themselves(tmp_path):
    # Every first arrival of a request fails with a 500; max_retries=0: the leader gives up, and a
    # waiting identical request then sends its own (second arrival: ok).
    with running_sim_server(SimConfig(latency_s=0.1, fault_script=["server_error"])) as url:
        cfg = EndpointConfig(base_url=url, model="m", max_in_flight=4, timeout_s=10, max_retries=0)
        with Gateway({"captioner": cfg}, cache_path=tmp_path / "cache.sqlite") as gw:
            msgs = [{"role": "user", "content": "[videorft-stage: none] hello"}]
            results = gw.run([ChatRequest("captioner", msgs, {}) for _ in range(3)])
        assert [r.ok for r in results].count(False) == 1
        assert sum(r.ok for r in results) == 2
        assert sim_stats(url)["resent_after_success"] == 0


@pytest.mark.integration
def test_pipelined_flow_keeps_several_shards_busy_and_decodes_each_video_once(tmp_path, sim_recipe):
    from curation.sources.synthetic import generate
    from flows.curate import run_curate

    synth = tmp_path / "S"
    generate(synth, 4, seed=3)
    rows = [json.loads(x) for x in (synth / "annotations.jsonl").read_text().splitlines() if x.strip()]
    with open(synth / "annotations.jsonl", "w") as fh:  # 48 questions on 4 videos
        for i in range(48):
            row = dict(rows[i % 4])
            row["problem"] = f"{row['problem']} [variant {i}]"
            fh.write(json.dumps(row) + "\n")
    cfg = SimConfig(annotations=[str(synth / "annotations.jsonl")], latency_s=0.3, capacity=256)
    with running_sim_server(cfg) as url:
        recipe = sim_recipe(synth, url, tmp_path / "runs", run="p")
        recipe.run.shard_size = 4
        recipe.run.max_parallel_shards = 4
        m = run_curate(recipe=recipe, until="revise")
        st = sim_stats(url)
    assert m["stages"]["revise"]["ok"] == 48
    # Several shards' requests at once (the blocked grid never exceeded one shard: 4).
    assert st["max_in_flight"] > 4, st
    # One caption request per distinct video, although 12 samples of each were in flight together.
    assert st["stages"]["caption"] == 4, st
    assert st["resent_after_success"] == 0
    # The 48 samples' frames are 4 decodes in 4 folders.
    import pandas as pd

    ex = pd.read_parquet(tmp_path / "runs" / "p" / "extract")
    assert len({tuple(paths) for paths in ex["frame_paths"]}) == 4
    assert len(list((tmp_path / "runs" / "p" / "frames").iterdir())) == 4
