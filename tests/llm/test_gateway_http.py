"""The gateway over real HTTP against the simulated endpoint: faults, cache, bounds, secrets."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from sim_endpoint.server import FaultRates, SimConfig, reset_sim_stats, running_sim_server, sim_stats

pytestmark = pytest.mark.integration

# The openai client's two transports: both must behave the same under every fault.
transports = pytest.mark.parametrize("transport", ["aiohttp", "httpx"])


@transports
def test_server_errors_are_retried_to_success(sim, make_gateway, fast_endpoint, stage_request, transport):
    url = sim(fault_script=["server_error", "server_error"])
    gw = make_gateway({"reasoner": fast_endpoint(url, options={"http_client": transport})})
    [r] = gw.run([stage_request("draft", 1)])
    assert r.ok and r.attempts == 3 and r.content.startswith("<answer>")
    assert sim_stats(url)["server_error"] == 2
    assert gw.stats()["reasoner"]["failures"] == {"http_500": 2}


def test_rate_limits_wait_for_retry_after(sim, make_gateway, fast_endpoint, stage_request):
    url = sim(fault_script=["rate_limited"], retry_after_s=0.6)
    gw = make_gateway({"reasoner": fast_endpoint(url)})  # own backoff would be ~10 ms
    t0 = time.monotonic()
    [r] = gw.run([stage_request("draft", 1)])
    assert r.ok and r.attempts == 2
    assert time.monotonic() - t0 >= 0.6


def test_rate_limits_with_an_http_date_retry_after(sim, make_gateway, fast_endpoint, stage_request):
    url = sim(fault_script=["rate_limited"], retry_after_s=1.0, retry_after_http_date=True)
    gw = make_gateway({"reasoner": fast_endpoint(url)})
    [r] = gw.run([stage_request("draft", 1)])
    assert r.ok and r.attempts == 2 and gw.stats()["reasoner"]["failures"] == {"http_429": 1}


@transports
def test_a_hanging_request_times_out_and_is_retried(
    sim, make_gateway, fast_endpoint, stage_request, transport
):
    url = sim(fault_script=["hang"], hang_s=30)
    gw = make_gateway({"reasoner": fast_endpoint(url, timeout_s=0.5, options={"http_client": transport})})
    t0 = time.monotonic()
    [r] = gw.run([stage_request("draft", 1)])
    assert r.ok and r.attempts == 2 and time.monotonic() - t0 < 5
    assert gw.stats()["reasoner"]["failures"] == {"timeout": 1}


@transports
def test_connection_refused_is_retried_until_the_server_comes_up(
    make_gateway, fast_endpoint, stage_request, transport
):
    with socket.socket() as s:  # a free port nobody listens on (yet)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    gw = make_gateway(
        {
            "reasoner": fast_endpoint(
                url, max_retries=30, backoff_base_s=0.1, backoff_max_s=0.2, options={"http_client": transport}
            )
        }
    )
    results = []
    runner = threading.Thread(target=lambda: results.extend(gw.run([stage_request("draft", 1)])))
    runner.start()
    time.sleep(0.5)
    with running_sim_server(SimConfig(port=port)):
        runner.join(20)
    [r] = results
    assert r.ok and r.attempts >= 2
    assert gw.stats()["reasoner"]["failures"]["connection"] == r.attempts - 1


@transports
def test_client_errors_are_not_retried(sim, make_gateway, fast_endpoint, stage_request, transport):
    url = sim()
    gw = make_gateway(
        {
            "reasoner": fast_endpoint(url, options={"http_client": transport}),
            "reviser": fast_endpoint(url.replace("/v1", "/nope/v1"), options={"http_client": transport}),
        }
    )
    bad = stage_request("draft", 1)
    bad.messages = []  # rejected with 400
    [r400] = gw.run([bad])
    [r404] = gw.run([stage_request("revise", 2, role="reviser")])
    assert not r400.ok and r400.attempts == 1 and r400.error.startswith("HTTP 400")
    assert not r404.ok and r404.attempts == 1 and r404.error.startswith("HTTP 404")
    assert sim_stats(url)["requests"] == 1  # the 404 never reached the chat route


def test_cache_makes_a_second_run_free_even_from_a_new_gateway(
    sim, make_gateway, fast_endpoint, stage_request
):
    url = sim()
    requests = [stage_request("draft", i) for i in range(6)]
    first = make_gateway({"reasoner": fast_endpoint(url)}).run(requests)
    assert all(r.ok and not r.cached for r in first)
    reset_sim_stats(url)
    fresh = make_gateway({"reasoner": fast_endpoint(url)})  # same cache file, new instance
    second = fresh.run(requests)
    assert sim_stats(url)["requests"] == 0
    assert all(r.cached for r in second) and [r.content for r in second] == [r.content for r in first]
    assert fresh.stats()["reasoner"]["cache_hits"] == 6 and fresh.stats()["reasoner"]["requests"] == 0


@transports
def test_malformed_body_is_retried_and_reported_when_it_persists(
    sim, make_gateway, fast_endpoint, stage_request, transport
):
    url = sim(fault_script=["malformed"])
    gw = make_gateway({"reasoner": fast_endpoint(url, options={"http_client": transport})})
    [r] = gw.run([stage_request("draft", 1)])
    assert r.ok and r.attempts == 2

    always = sim(fault_script=["malformed"] * 10)
    gw2 = make_gateway(
        {"reasoner": fast_endpoint(always, max_retries=2, options={"http_client": transport})}, cache=False
    )
    [bad] = gw2.run([stage_request("draft", 1)])
    assert not bad.ok and bad.error.startswith("malformed response:") and bad.attempts == 3


def test_truncated_output_comes_back_ok_with_finish_reason_length(
    sim, make_gateway, fast_endpoint, stage_request
):
    url = sim(fault_script=["truncated"])
    gw = make_gateway({"reasoner": fast_endpoint(url)})
    [r] = gw.run([stage_request("draft", 1)])
    assert r.ok and r.finish_reason == "length" and r.attempts == 1
    [again] = gw.run([stage_request("draft", 1)])
    assert again.cached and again.finish_reason == "length" and sim_stats(url)["requests"] == 1


@pytest.mark.parametrize("mode", ["inline", "field"])
def test_reasoning_arrives_apart_from_the_answer(sim, make_gateway, mode, fast_endpoint, stage_request):
    url = sim(reasoning_mode=mode)
    gw = make_gateway({"reasoner": fast_endpoint(url)}, cache=False)
    [r] = gw.run([stage_request("draft", 1)])
    assert r.content.startswith("<answer>") and "<think>" not in r.content
    assert r.reasoning_content and "<think>" not in r.reasoning_content
    assert (r.usage["reasoning_tokens"] > 0) == (mode == "field")
    assert r.model == "videorft-simulated-endpoint (not a model)"


def test_in_flight_requests_stay_within_the_endpoint_bound(sim, make_gateway, fast_endpoint, stage_request):
    url = sim(latency_s=0.05, capacity=64)
    endpoints = {
        "captioner": fast_endpoint(url, max_in_flight=4),
        "reviser": fast_endpoint(url, max_in_flight=4),
    }
    gw = make_gateway(endpoints, cache=False)

    def shard(t: int) -> None:
        role = "captioner" if t % 2 else "reviser"
        assert all(
            r.ok for r in gw.run([stage_request("caption", 100 * t + i, role=role) for i in range(12)])
        )

    threads = [threading.Thread(target=shard, args=(t,)) for t in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    stats = sim_stats(url)
    assert stats["requests"] == 36 and stats["max_in_flight"] == 4


def test_the_api_key_value_never_leaves_the_client(
    sim, make_gateway, caplog, tmp_path, fast_endpoint, stage_request, api_key
):
    caplog.set_level(logging.DEBUG)
    url = sim(fault_script=["server_error", "rate_limited", "malformed"], retry_after_s=0)
    gw = make_gateway({"reasoner": fast_endpoint(url), "reviser": fast_endpoint(url.replace("/v1", "/x/v1"))})
    results = gw.run(
        [stage_request("draft", i) for i in range(3)] + [stage_request("revise", 9, role="reviser")]
    )
    assert any(not r.ok for r in results)  # the 404 produced an error string to inspect
    gw.close()
    blobs = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "llm_cache" in str(p)]
    assert blobs and all(api_key.encode() not in b for b in blobs)
    assert api_key not in caplog.text
    assert all(api_key not in r.error and api_key not in repr(r) for r in results)
    assert (
        api_key not in repr(gw)
        and api_key not in repr(gw.endpoint("reasoner"))
        and api_key not in str(gw.stats())
    )


def test_with_faults_of_every_kind_each_request_ends_once(sim, make_gateway, fast_endpoint, stage_request):
    # 20% of arrivals get a fault, 4% of each kind. The client timeout only has to beat the
    # simulated hang, so it is generous: a loaded test machine must not turn answers into timeouts.
    url = sim(faults=FaultRates.spread(0.2), retry_after_s=0.05, hang_s=30, seed=3)
    gw = make_gateway({"reasoner": fast_endpoint(url, timeout_s=1.5, max_retries=6, max_in_flight=32)})
    requests = [stage_request("draft", i) for i in range(150)]
    results = gw.run(requests)
    stats, gstats = sim_stats(url), gw.stats()["reasoner"]
    assert all(r.ok or r.error for r in results)
    assert sum(r.ok for r in results) >= 145
    # Nothing answered successfully was ever asked again, and every attempt reached the server.
    assert stats["resent_after_success"] == 0
    assert stats["distinct_requests"] == 150 and stats["requests"] == gstats["attempts"]
    assert min(stats[k] for k in ("server_error", "rate_limited", "hang", "malformed", "truncated")) > 0
    assert gstats["truncated"] == stats["truncated"] == sum(r.truncated for r in results)
    # A rerun is served from the cache: zero requests.
    reset_sim_stats(url)
    again = gw.run(requests)
    assert sim_stats(url)["requests"] == sum(not r.ok for r in results)
    assert [r.content for r in again if r.cached] == [r.content for r in results if r.ok]
