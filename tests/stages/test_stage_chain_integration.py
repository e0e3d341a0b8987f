"""caption -> draft -> revise through the real gateway: the tiny random Qwen2.5-VL in-process, and
the simulated OpenAI-compatible endpoint over HTTP.

The tiny model's weights are random, so its answers are junk: what is checked is that the whole path
runs (images decoded, chat template, generate, usage, cache) and that every row ends `ok` or
`failed` with a reason the stages account for, never an exception.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from stage_fakes import caption_row_for, make_extract, make_sample, video_caption_json

from curation.llm.gateway import EndpointConfig, Gateway
from curation.prompts import PROMPTS_ROOT, load_prompt
from curation.stages.caption import CaptionConfig, caption_row
from curation.stages.draft import DraftConfig, draft_row
from curation.stages.llm_common import ROW_COLUMNS
from curation.stages.revise import ReviseConfig, revise_row

pytestmark = pytest.mark.integration

ACCOUNTED_PREFIXES = (
    "truncated output (finish_reason=length)",
    "invalid caption JSON: ",
    "frame-count mismatch: ",
    "draft has no <answer>",
    "draft has no reasoning",
    "revision has no <think> block",
    "revision has an empty <think> block",
)


def _check(row: dict, fields: set[str]) -> None:
    assert set(ROW_COLUMNS) | fields <= set(row)
    assert row["status"] in ("ok", "failed")
    if row["status"] == "failed":
        assert row["reason"].startswith(ACCOUNTED_PREFIXES), row["reason"]
    else:
        assert row["reason"] == ""
    # Two samples can make the identical request (a random model writes the same junk): the second
    # is then a cache hit, sent once and paid once.
    assert row["requests"] + row["cache_hits"] >= 1
    if row["requests"]:
        assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory) -> Path:
    from training.tiny_qwen import build_tiny_qwen25vl

    return build_tiny_qwen25vl(tmp_path_factory.mktemp("tiny-qwen") / "model")


def test_tiny_qwen_chain_through_the_transformers_backend(tiny_qwen, tmp_path):
    run_dir = tmp_path / "run"
    samples = [make_sample(0), make_sample(1, problem_type="numerical")]
    extracts = [make_extract(run_dir, s, n_frames=2) for s in samples]
    prompts = {n: load_prompt(PROMPTS_ROOT / n) for n in ("caption", "draft", "revise")}
    endpoint = EndpointConfig(
        backend="transformers",
        model=str(tiny_qwen),
        max_in_flight=1,
        timeout_s=60,
        max_retries=0,
        options={"device": "cpu"},
    )
    # Stop strings end the junk early with finish_reason "stop", so the caption is parsed (and
    # repaired) instead of failing as truncated: the repair round runs through the real backend.
    cap_cfg = CaptionConfig(max_tokens=48, temperature=0.8, seed=1, extra_params={"stop": ["a", "e", "o"]})
    draft_cfg = DraftConfig(max_tokens=32, seed=2)
    rev_cfg = ReviseConfig(max_tokens=32, seed=3)

    with Gateway(
        {r: endpoint for r in ("captioner", "reasoner", "reviser")}, cache_path=tmp_path / "cache.sqlite"
    ) as gw:

        async def chain(sample, extract):
            cap = await caption_row(gw, sample, extract, run_dir, cap_cfg, prompts["caption"])
            # A random model never writes a valid description: the draft and revise steps run on a
            # canned caption and draft so that every backend path is exercised anyway.
            caption_in = cap if cap["status"] == "ok" else caption_row_for(video_caption_json(2))
            drf = await draft_row(gw, sample, caption_in, draft_cfg, prompts["draft"])
            draft_in = (
                drf
                if drf["status"] == "ok"
                else {
                    **drf,
                    "status": "ok",
                    "draft_reasoning": "The video shows a ball.",
                    "draft_answer": "A",
                }
            )
            rev = await revise_row(gw, sample, extract, draft_in, run_dir, rev_cfg, prompts["revise"])
            return cap, drf, rev

        async def both():
            return await asyncio.gather(*(chain(s, e) for s, e in zip(samples, extracts, strict=True)))

        rows = asyncio.run(both())
        stats = gw.stats()

        # Same requests again: all answered from the cache, same rows.
        again = asyncio.run(both())

    for cap, drf, rev in rows:
        _check(cap, {"caption_json", "video_caption", "n_frames"})
        _check(drf, {"draft", "draft_reasoning", "draft_answer"})
        _check(rev, {"process", "answer", "revision"})
        assert cap["model"] == str(tiny_qwen)
        assert cap["status"] == "failed" and cap["reason"].startswith("invalid caption JSON: ")
        assert cap["requests"] + cap["cache_hits"] == 2 and len(json.loads(cap["raw"])) == 2  # repair ran
    assert stats["total"]["requests"] == sum(r["requests"] for chain_rows in rows for r in chain_rows)
    assert stats["total"]["errors"] == 0
    for (cap, drf, rev), (cap2, drf2, rev2) in zip(rows, again, strict=True):
        # The second pass is answered by the cache: nothing sent (requests counts what was paid for).
        assert (cap2["requests"], drf2["requests"], rev2["requests"]) == (0, 0, 0)
        assert (cap2["cache_hits"], drf2["cache_hits"], rev2["cache_hits"]) == (2, 1, 1)
        assert (cap2["reason"], drf2["reason"], rev2["reason"]) == (
            cap["reason"],
            drf["reason"],
            rev["reason"],
        )


def test_sim_endpoint_chain(synth_dir, sim_base_url, tmp_path):
    from curation.sources import SourceConfig, read_source
    from curation.stages.extract import extract_sample
    from curation.video.config import VideoConfig

    samples = [r.sample for r in read_source(SourceConfig(path=synth_dir / "annotations.jsonl")) if r.ok][:4]
    run_dir = tmp_path / "run"
    extracts = [extract_sample(s, synth_dir, run_dir, VideoConfig(num_frames=4)) for s in samples]
    assert all(e["status"] == "ok" for e in extracts)
    endpoint = EndpointConfig(
        backend="openai", base_url=sim_base_url, model="sim", max_retries=2, backoff_base_s=0.01
    )

    with Gateway({r: endpoint for r in ("captioner", "reasoner", "reviser")}) as gw:

        async def chain(sample, extract):
            cap = await caption_row(gw, sample, extract, run_dir, CaptionConfig())
            drf = await draft_row(gw, sample, cap, DraftConfig())
            rev = await revise_row(gw, sample, extract, drf, run_dir, ReviseConfig())
            return cap, drf, rev

        async def all_rows():
            return await asyncio.gather(*(chain(s, e) for s, e in zip(samples, extracts, strict=True)))

        rows = asyncio.run(all_rows())

    for sample, (cap, drf, rev) in zip(samples, rows, strict=True):
        assert cap["status"] == "ok", cap["reason"]
        assert cap["n_frames"] == 4 and len(json.loads(cap["caption_json"])["frames"]) == 4
        assert drf["status"] == "ok", drf["reason"]
        assert drf["draft_answer"] and drf["draft_reasoning"]
        assert rev["status"] == "ok", rev["reason"]
        assert rev["process"].startswith("<think>") and rev["process"].endswith("</think>")
        assert rev["answer"] == drf["draft_answer"]  # the reviser keeps the conclusion
        assert sample.id
