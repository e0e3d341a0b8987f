"""A real server's faults, against the simulated endpoint: which fail one row (with a normalised
reason) and which stop sending to the endpoint (the circuit breaker), deadlines, dropped
connections, the reasoning split, and the served identity in the cache key."""

from __future__ import annotations

import pickle
import time

import pytest

from curation.llm import ChatRequest, EndpointUnavailable
from curation.llm.failures import normalise_reason
from curation.llm.preflight import PreflightError, preflight
from sim_endpoint.server import configure_sim, sim_stats


def _req(i: int, text: str = "hello", role: str = "reasoner", **params) -> ChatRequest:
    return ChatRequest(
        role=role, messages=[{"role": "user", "content": f"{text} {i}"}], params=params, tag=f"s{i}"
    )


def _run_one(gw, request):
    """One request: its result, or the EndpointUnavailable it raised."""
    try:
        return gw.run([request])[0]
    except EndpointUnavailable as err:
        return err


def test_wrong_model_opens_the_breaker_after_n_requests_and_sends_no_more(sim, fast_endpoint, make_gateway):
    url = sim(served_models=["served-model"])
    gw = make_gateway(
        {"reasoner": fast_endpoint(url, model="wrong-model", max_in_flight=1, breaker_failures=3)}
    )
    outcomes = [_run_one(gw, _req(i)) for i in range(6)]
    # Two rows fail (a 404 is not retried), the third trips the breaker, the rest are never sent.
    assert [type(o).__name__ for o in outcomes] == ["ChatResult"] * 2 + ["EndpointUnavailable"] * 4
    assert outcomes[0].error == "HTTP 404: The model '…' does not exist."
    assert sim_stats(url)["requests"] == 3 and sim_stats(url)["model_not_found"] == 3
    err = outcomes[-1]
    assert err.role == "reasoner" and err.base_url == url and err.model == "wrong-model"
    assert "model" in err.hint and url in str(err)
    assert gw.unavailable() and gw.stats()["reasoner"]["requests"] == 3


def test_a_success_between_failures_keeps_the_breaker_closed(sim, fast_endpoint, make_gateway):
    url = sim(served_models=["m"])
    gw = make_gateway({"reasoner": fast_endpoint(url, model="m", max_in_flight=1, breaker_failures=2)})
    configure_sim(url, served_models=["other"])
    assert not _run_one(gw, _req(1)).ok
    configure_sim(url, served_models=["m"])
    assert _run_one(gw, _req(2)).ok
    configure_sim(url, served_models=["other"])
    assert not _run_one(gw, _req(3)).ok  # one failure since the last success: still sending
    assert not gw.unavailable()


def test_wrong_key_is_endpoint_wide_and_never_leaks(sim, fast_endpoint, make_gateway, api_key):
    url = sim(api_key="the-right-key")
    gw = make_gateway({"reasoner": fast_endpoint(url, breaker_failures=1)})
    err = _run_one(gw, _req(1))
    assert isinstance(err, EndpointUnavailable) and "HTTP 401" in err.reason
    assert "api_key_env" in err.hint and api_key not in str(err) + err.hint
    assert sim_stats(url)["unauthorized"] == 1


def test_prompt_too_long_fails_only_that_row_with_one_reason(sim, fast_endpoint, make_gateway):
    url = sim(max_model_len=40)
    gw = make_gateway({"reasoner": fast_endpoint(url, breaker_failures=1)})
    long_requests = [_req(i, text="word " * (60 + 7 * i)) for i in range(20)]
    results = gw.run([*long_requests, _req(99, text="short")])
    failed, short = results[:-1], results[-1]
    assert short.ok and not gw.unavailable()  # item-specific: the breaker stays closed
    assert {r.error for r in failed} == {"prompt too long for the model's context (> 40 tokens)"}
    assert all(r.attempts == 1 for r in failed)  # a 400 is not retried
    assert sim_stats(url)["context_too_long"] == 20


def test_images_to_a_text_only_model_fail_the_row_with_a_clear_reason(sim, fast_endpoint, make_gateway):
    url = sim(text_only_models=["text-model"])
    gw = make_gateway({"captioner": fast_endpoint(url, model="text-model")})
    image = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "describe"}, image]}]
    [r] = gw.run([ChatRequest(role="captioner", messages=messages, tag="s1")])
    assert not r.ok and r.error == "the model does not accept images (text-only model)"


def test_a_hung_server_costs_the_deadline_not_retries_times_timeout(sim, fast_endpoint, make_gateway):
    url = sim(hang_all=True, hang_s=30)
    cfg = fast_endpoint(url, timeout_s=1.0, max_retries=10, deadline_s=2.5, breaker_failures=5)
    gw = make_gateway({"reasoner": cfg})
    t0 = time.monotonic()
    [r] = gw.run([_req(1)])
    elapsed = time.monotonic() - t0
    assert not r.ok and r.kind in ("timeout", "deadline")
    assert elapsed < 5, elapsed  # 11 attempts × 1 s without the deadline
    assert r.attempts <= 3


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_a_dropped_connection_is_reported_as_such(sim, fast_endpoint, make_gateway, transport):
    url = sim(drop_all=True)
    gw = make_gateway({"reasoner": fast_endpoint(url, max_retries=1, options={"http_client": transport})})
    [r] = gw.run([_req(1)])
    assert not r.ok and r.kind == "dropped" and r.error == "connection dropped by the server mid-request"
    assert gw.stats()["reasoner"]["failures"] == {"dropped": 2}
    assert sim_stats(url)["dropped"] == 2


def test_think_is_split_only_for_reasoners_without_a_reasoning_field(sim, fast_endpoint, make_gateway):
    from curation.llm.gateway import result_from_response

    def response(content, reasoning=None):
        message = {"role": "assistant", "content": content}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        return {"choices": [{"message": message, "finish_reason": "stop"}]}

    caption = '{"caption": "a sign reading </think> on the wall"}'
    assert (
        result_from_response(response(caption), key="k", cached=False, attempts=1, split=False).content
        == caption
    )
    r = result_from_response(response("<think>why</think>B"), key="k", cached=False, attempts=1, split=True)
    assert (r.reasoning_content, r.content) == ("why", "B")
    # The server separated the reasoning: the content is the answer as written.
    r = result_from_response(response("B </think>", "why"), key="k", cached=False, attempts=1, split=True)
    assert (r.reasoning_content, r.content) == ("why", "B </think>")
    # Through the gateway: the captioner keeps `</think>` inside its JSON.
    url = sim(reasoning_mode="inline")
    gw = make_gateway({"captioner": fast_endpoint(url), "reasoner": fast_endpoint(url)})
    assert gw._split("reasoner") and not gw._split("captioner")


def test_another_checkpoint_under_the_same_name_is_a_cache_miss(sim, fast_endpoint, make_gateway, tmp_path):
    url = sim()
    cfg = {"reasoner": fast_endpoint(url)}
    a = make_gateway(cfg, cache=str(tmp_path / "c.sqlite"), served_identity={"reasoner": "/ckpt/step-100"})
    assert a.run([_req(1)])[0].ok
    same = make_gateway(cfg, cache=str(tmp_path / "c.sqlite"), served_identity={"reasoner": "/ckpt/step-100"})
    assert same.run([_req(1)])[0].cached
    other = make_gateway(
        cfg, cache=str(tmp_path / "c.sqlite"), served_identity={"reasoner": "/ckpt/step-200"}
    )
    assert not other.run([_req(1)])[0].cached
    assert sim_stats(url)["requests"] == 2


def test_errors_cross_process_boundaries():
    err = EndpointUnavailable("reasoner", "http://h:1/v1", "m", "connection failed", "start it")
    back = pickle.loads(pickle.dumps(err))
    assert (back.role, back.base_url, back.model, back.reason, back.hint) == (
        "reasoner",
        "http://h:1/v1",
        "m",
        "connection failed",
        "start it",
    )
    assert str(back) == str(err)


def test_normalised_reasons_of_vllm_bodies():
    old = (
        'HTTP 400: {"object": "error", "message": "This model\'s maximum context length is 2048 tokens. '
        'However, you requested 3001 tokens (2001 in the messages, 1000 in the completion)."}'
    )
    assert normalise_reason("http_400", old) == "prompt too long for the model's context (> 2048 tokens)"
    too_many = "HTTP 400: 'max_tokens' is too large: 4096. This model's maximum context length is 2048 tokens"
    assert (
        normalise_reason("http_400", too_many) == "max_tokens too large for the model's context (2048 tokens)"
    )
    a = normalise_reason("http_400", 'HTTP 400: {"message": "bad value 17 for \'top_k\'"}')
    b = normalise_reason("http_400", 'HTTP 400: {"message": "bad value 23 for \'top_k\'"}')
    assert a == b == "HTTP 400: bad value N for '…'"


# ---- preflight ---------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_preflight_names_each_broken_endpoint_and_what_to_fix(sim, fast_endpoint, api_key):
    good = sim(served_models=["m"], model_roots={"m": "/weights/m-v2"})
    wrong_model = sim(served_models=["other-a", "other-b"])
    wrong_key = sim(api_key="not-the-key-we-have")
    nobody = f"http://127.0.0.1:{_free_port()}/v1"
    endpoints = {
        "captioner": fast_endpoint(good, model="m"),
        "reviser": fast_endpoint(good, model="m"),
        "reasoner": fast_endpoint(wrong_model, model="m"),
        "judge": fast_endpoint(wrong_key, model="m"),
        "extra": fast_endpoint(nobody, model="m"),
    }
    with pytest.raises(PreflightError) as info:
        preflight(endpoints, ["captioner", "reviser", "reasoner", "judge", "extra"])
    by_url = {c.base_url: c for c in info.value.checks}
    assert set(by_url) == {wrong_model, wrong_key, nobody}  # the good endpoint is not reported
    assert "other-a, other-b" in by_url[wrong_model].problem and by_url[wrong_model].roles == ["reasoner"]
    assert "HTTP 401" in by_url[wrong_key].problem and "api_key_env" in by_url[wrong_key].hint
    assert "nothing listening" in by_url[nobody].problem
    assert api_key not in str(info.value)
    assert pickle.loads(pickle.dumps(info.value)).checks[0].base_url == info.value.checks[0].base_url
    checked = preflight(endpoints, ["captioner", "reviser"])
    assert checked["captioner"]["served_root"] == "/weights/m-v2" == checked["reviser"]["served_root"]


def test_preflight_of_a_hung_server_and_an_unset_key(sim, fast_endpoint, monkeypatch):
    hung = sim(hang_all=True, hang_s=30)
    t0 = time.monotonic()
    with pytest.raises(PreflightError) as info:
        preflight({"reasoner": fast_endpoint(hung)}, ["reasoner"], timeout_s=1.0)
    assert "no answer within 1s" in str(info.value) and time.monotonic() - t0 < 10
    monkeypatch.delenv("VIDEORFT_TEST_API_KEY")
    with pytest.raises(PreflightError, match="VIDEORFT_TEST_API_KEY"):
        preflight({"reasoner": fast_endpoint(sim())}, ["reasoner"])


def test_sim_server_command_takes_its_own_options():
    from flows.cli import _sim_server_argv
    from sim_endpoint.server import parse_args

    assert _sim_server_argv(["sim-server", "--port", "18123"]) == ["--port", "18123"]
    assert _sim_server_argv(["-v", "sim-server", "--port", "1"]) == ["--port", "1"]
    assert _sim_server_argv(["curate", "x.yaml"]) is None
    assert parse_args(["--port", "18123"])[1] == 18123


def test_preflight_without_a_model_list_asks_for_one_token(sim, fast_endpoint):
    url = sim(models_route=False, served_models=["m"])
    checked = preflight({"reasoner": fast_endpoint(url, model="m")}, ["reasoner"])
    assert checked["reasoner"]["served_root"]  # the answer's `model` field
    assert sim_stats(url)["requests"] == 1
    with pytest.raises(PreflightError, match="does not serve this model"):
        preflight({"reasoner": fast_endpoint(url, model="other")}, ["reasoner"])


def test_requests_log_no_info_line_each(sim, fast_endpoint, make_gateway, caplog):
    import logging

    url = sim()
    gw = make_gateway({"reasoner": fast_endpoint(url, options={"http_client": "httpx"})})
    with caplog.at_level(logging.INFO):
        assert all(r.ok for r in gw.run([_req(i) for i in range(5)]))
    noisy = [r for r in caplog.records if r.name.split(".")[0] in ("httpx", "httpx2", "httpcore", "openai")]
    assert noisy == []
