"""Gateway policy without HTTP: retries, failures as results, parsing, bounds, threads.

A scripted in-process backend stands in for the server, so these run in milliseconds.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

import pytest

from curation.llm.backends.openai_backend import parse_completion_body, parse_retry_after
from curation.llm.errors import MalformedResponseError, PermanentError, TransientError
from curation.llm.gateway import (
    ChatRequest,
    EndpointConfig,
    Gateway,
    backoff_delay,
    result_from_response,
    split_think,
)


def completion(content: str, finish: str = "stop", **message: Any) -> dict[str, Any]:
    return {
        "model": "served-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, **message},
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": 7,
            "completion_tokens": 5,
            "completion_tokens_details": {"reasoning_tokens": 3},
        },
    }


class ScriptedBackend:
    """Answers from a script per request text: each call pops the next outcome (exception or dict)."""

    def __init__(self, script: dict[str, list[Any]] | None = None, delay: float = 0.0) -> None:
        self.script = script or {}
        self.delay = delay
        self.calls: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.active = 0
        self.max_active = 0

    async def chat(self, messages, params, *, timeout, headers):
        text = messages[-1]["content"]
        self.calls.append(text)
        self.headers.append(headers)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.delay)
            outcomes = self.script.get(text)
            outcome = outcomes.pop(0) if outcomes else completion(f"answer to {text}")
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        finally:
            self.active -= 1

    async def aclose(self):
        pass


def cfg(**kw: Any) -> EndpointConfig:
    fields = dict(backend="openai", base_url="http://127.0.0.1:9/v1", model="m", max_retries=3,
                  backoff_base_s=0.001, backoff_max_s=0.002, timeout_s=5.0)  # fmt: skip
    fields.update(kw)
    return EndpointConfig(**fields)


def req(text: str, role: str = "reasoner", tag: str = "s1") -> ChatRequest:
    return ChatRequest(
        role=role, messages=[{"role": "user", "content": text}], params={"temperature": 0}, tag=tag
    )


@pytest.fixture
def gateway_with(tmp_path):
    made = []

    def make(
        backend: ScriptedBackend, endpoints: dict[str, EndpointConfig] | None = None, cache: bool = True
    ):
        gw = Gateway(
            endpoints or {"reasoner": cfg()},
            cache_path=tmp_path / "c.sqlite" if cache else None,
            backend_factory=lambda _cfg: backend,
        )
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()


# ---- parsing -------------------------------------------------------------------------------------


def test_split_think_separates_leading_reasoning_from_the_answer():
    assert split_think("<think>step 1. step 2.</think>\n<answer>B</answer>") == (
        "step 1. step 2.",
        "<answer>B</answer>",
    )
    assert split_think("  <think>only reasoning</think>") == ("only reasoning", "")
    # R1 chat templates open <think> in the prompt: only the closing tag comes back.
    assert split_think("reasoning here</think>final") == ("reasoning here", "final")
    assert split_think("<answer>A</answer>") == (None, "<answer>A</answer>")
    assert split_think("<think>cut off mid-way") == ("cut off mid-way", "")


def test_result_keeps_server_reasoning_content_apart_and_reads_reasoning_tokens():
    r = result_from_response(
        completion("<answer>A</answer>", reasoning_content="thinking"), key="k", cached=False, attempts=1
    )
    assert (r.ok, r.content, r.reasoning_content) == (True, "<answer>A</answer>", "thinking")
    assert r.usage == {"prompt_tokens": 7, "completion_tokens": 5, "reasoning_tokens": 3}
    assert r.model == "served-model" and r.full_text() == "<think>thinking</think><answer>A</answer>"


def test_parse_retry_after_accepts_seconds_milliseconds_and_http_dates():
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    now = 1_800_000_000.0
    date = "Fri, 15 Jan 2027 08:00:05 GMT"  # 1_800_000_005
    assert parse_retry_after({"Retry-After": date}, now=now) == pytest.approx(5.0)
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_malformed_bodies_are_recognised():
    with pytest.raises(MalformedResponseError):
        parse_completion_body('{"id": "x", "choices": [')
    with pytest.raises(MalformedResponseError):
        parse_completion_body('{"id": "x", "choices": []}')
    assert parse_completion_body('{"choices": [{"message": {"content": "ok"}}]}')["choices"][0]


def test_backoff_is_full_jitter_capped_and_retry_after_is_a_floor():
    c = cfg(backoff_base_s=1.0, backoff_max_s=4.0)
    rng = random.Random(0)
    delays = [backoff_delay(attempt, c, None, rng) for attempt in range(1, 8) for _ in range(50)]
    assert min(delays) >= 0 and max(delays) <= 4.0
    assert all(2.5 <= backoff_delay(2, c, 2.5, rng) <= 3.5 for _ in range(20))
    assert backoff_delay(1, cfg(max_retry_after_s=10), 999.0, rng) <= 10.0 + 0.001


# ---- retry policy --------------------------------------------------------------------------------


def test_transient_errors_are_retried_until_success(gateway_with):
    backend = ScriptedBackend(
        {"q": [TransientError("HTTP 500", kind="http_500"), TransientError("t/o", kind="timeout")]}
    )
    gw = gateway_with(backend)
    [r] = gw.run([req("q")])
    assert r.ok and r.attempts == 3 and r.content == "answer to q"
    s = gw.stats()["reasoner"]
    assert (s["requests"], s["attempts"], s["retries"], s["errors"]) == (1, 3, 2, 0)
    assert s["failures"] == {"http_500": 1, "timeout": 1}


def test_permanent_errors_fail_the_row_at_once(gateway_with):
    backend = ScriptedBackend({"bad": [PermanentError("HTTP 400: context too long", kind="http_400")]})
    gw = gateway_with(backend)
    [r] = gw.run([req("bad")])
    assert not r.ok and r.attempts == 1 and r.error == "HTTP 400: context too long"
    assert backend.calls == ["bad"]


def test_exhausted_retries_record_the_last_error(gateway_with):
    backend = ScriptedBackend({"q": [TransientError("HTTP 503", kind="http_503")] * 10})
    gw = gateway_with(backend)
    [r] = gw.run([req("q")])
    assert not r.ok and r.attempts == 4 and r.error == "HTTP 503" and r.kind == "http_503"


def test_malformed_bodies_are_retried_then_reported_and_never_cached(gateway_with, tmp_path):
    backend = ScriptedBackend({"q": [MalformedResponseError("invalid JSON")] * 10})
    gw = gateway_with(backend)
    [r] = gw.run([req("q")])
    assert not r.ok and r.error.startswith("malformed response: invalid JSON")
    [again] = gw.run([req("q")])
    assert not again.cached and gw.stats()["reasoner"]["cache_hits"] == 0


def test_truncated_output_is_a_result_not_an_error(gateway_with):
    backend = ScriptedBackend({"q": [completion("<think>half a thou", finish="length")]})
    gw = gateway_with(backend)
    [r] = gw.run([req("q")])
    assert r.ok and r.finish_reason == "length" and r.truncated and r.attempts == 1
    assert gw.stats()["reasoner"]["truncated"] == 1
    [again] = gw.run([req("q")])  # paid for, so cached like any answer
    assert again.cached and again.truncated


def test_backend_bug_fails_the_row_with_its_message(gateway_with):
    backend = ScriptedBackend({"q": [KeyError("choices")]})
    gw = gateway_with(backend)
    [r, ok] = gw.run([req("q"), req("fine")])
    assert not r.ok and "KeyError" in r.error and ok.ok


def test_per_attempt_timeout_applies_to_a_backend_that_hangs(gateway_with):
    class Hanging(ScriptedBackend):
        async def chat(self, messages, params, *, timeout, headers):
            if len(self.calls) == 0:
                self.calls.append("hang")
                await asyncio.sleep(60)
            return completion("late but fine")

    gw = gateway_with(Hanging(), {"reasoner": cfg(timeout_s=0.05)})
    t0 = time.monotonic()
    [r] = gw.run([req("q")])
    assert r.ok and r.attempts == 2 and time.monotonic() - t0 < 5
    assert gw.stats()["reasoner"]["failures"] == {"timeout": 1}


# ---- cache, tag, accounting ----------------------------------------------------------------------


def test_tag_goes_in_a_header_but_not_in_the_cache_key(gateway_with):
    backend = ScriptedBackend()
    gw = gateway_with(backend)
    first, second = gw.run([req("same", tag="sample-a")]), gw.run([req("same", tag="sample-b")])
    assert backend.headers == [{"X-Videorft-Sample-Id": "sample-a"}]
    assert second[0].cached and second[0].key == first[0].key
    s = gw.stats()["reasoner"]
    assert (s["requests"], s["cache_hits"], s["prompt_tokens"]) == (1, 1, 7)


def test_results_come_back_in_input_order(gateway_with):
    backend = ScriptedBackend(delay=0.001)
    gw = gateway_with(backend, cache=False)
    results = gw.run([req(f"q{i}", tag=f"s{i}") for i in range(30)])
    assert [r.content for r in results] == [f"answer to q{i}" for i in range(30)]


def test_unknown_role_is_a_programming_error(gateway_with):
    gw = gateway_with(ScriptedBackend())
    with pytest.raises(ValueError, match="no endpoint configured for role 'critic'"):
        gw.run([req("q", role="critic")])


# ---- concurrency ---------------------------------------------------------------------------------


def test_shard_threads_share_one_bound_per_endpoint(gateway_with):
    backend = ScriptedBackend(delay=0.01)
    endpoints = {"captioner": cfg(max_in_flight=3), "reviser": cfg(max_in_flight=5)}  # same url + model
    gw = gateway_with(backend, endpoints, cache=False)
    assert gw.in_flight_bound("captioner") == gw.in_flight_bound("reviser") == 3

    def shard(t: int) -> None:
        role = "captioner" if t % 2 else "reviser"
        results = gw.run([req(f"t{t}-{i}", role=role) for i in range(10)])
        assert all(r.ok for r in results)

    threads = [threading.Thread(target=shard, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(backend.calls) == 40 and backend.max_active == 3


def test_complete_and_run_coroutines_work_from_foreign_loops(gateway_with):
    gw = gateway_with(ScriptedBackend(), cache=False)

    async def stage_row(i: int) -> str:
        result = await gw.complete(req(f"q{i}"))
        return result.content.upper()

    assert gw.run_coroutines([stage_row(1), stage_row(2)]) == ["ANSWER TO Q1", "ANSWER TO Q2"]
    assert asyncio.run(gw.complete(req("x"))).content == "answer to x"
    assert [r.content for r in asyncio.run(gw.complete_many([req("y"), req("z")]))] == [
        "answer to y",
        "answer to z",
    ]


def test_close_is_idempotent_and_refuses_new_work(tmp_path):
    gw = Gateway(
        {"reasoner": cfg()}, cache_path=tmp_path / "c.sqlite", backend_factory=lambda c: ScriptedBackend()
    )
    gw.run([req("q")])
    gw.close()
    gw.close()
    with pytest.raises(RuntimeError, match="closed"):
        gw.run([req("q")])


def test_missing_api_key_variable_fails_at_construction(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ValueError, match="NO_SUCH_KEY_VAR"):
        Gateway({"reasoner": cfg(api_key_env="NO_SUCH_KEY_VAR")})


def test_endpoint_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="max_inflight"):
        EndpointConfig(model="m", max_inflight=4)


def test_openai_backend_options_are_checked():
    from curation.llm.backends.openai_backend import OpenAIBackend

    assert OpenAIBackend(cfg(options={"http_client": "httpx"})).transport == "httpx"
    with pytest.raises(ValueError, match="unknown option"):
        OpenAIBackend(cfg(options={"device": "cuda"}))
    with pytest.raises(ValueError, match="http_client must be one of"):
        OpenAIBackend(cfg(options={"http_client": "curl"}))
