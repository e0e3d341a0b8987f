"""A stopping run: the gateway sends nothing new, and answers already on their way reach the cache."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import CancelledError
from typing import Any

import pytest

from curation.llm.gateway import ChatRequest, EndpointConfig, Gateway


class SlowBackend:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls: list[str] = []

    async def chat(self, messages, params, *, timeout, headers):  # noqa: ARG002
        text = messages[-1]["content"]
        self.calls.append(text)
        await asyncio.sleep(self.delay)
        return {
            "model": "served",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"re {text}"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        }

    async def aclose(self) -> None:
        pass


def _gateway(tmp_path, backend: SlowBackend) -> Gateway:
    cfg = EndpointConfig(backend="openai", base_url="http://127.0.0.1:9/v1", model="m", max_in_flight=2)
    return Gateway({"reasoner": cfg}, cache_path=tmp_path / "c.sqlite", backend_factory=lambda _c: backend)


def _req(i: int) -> ChatRequest:
    return ChatRequest(role="reasoner", messages=[{"role": "user", "content": f"q{i}"}], params={})


def test_stop_sends_nothing_new_and_in_flight_answers_are_cached(tmp_path):
    backend = SlowBackend(delay=0.5)
    gw = _gateway(tmp_path, backend)
    stop = threading.Event()
    outcome: dict[str, Any] = {}

    def shard() -> None:
        t0 = time.monotonic()
        try:
            gw.run_coroutines([gw.complete(_req(i)) for i in range(6)], stop=stop)
        except CancelledError:
            outcome["cancelled_after_s"] = time.monotonic() - t0

    th = threading.Thread(target=shard)
    th.start()
    time.sleep(0.1)  # two requests in flight (max_in_flight=2), four waiting for a slot
    stop.set()
    th.join(timeout=5)
    assert outcome["cancelled_after_s"] < 0.45  # the caller is released before the answers arrive
    gw.close()  # grace: the two answers on their way land in the cache; the four queued never go out
    assert sorted(backend.calls) == ["q0", "q1"]

    again = SlowBackend(delay=0.0)
    gw2 = _gateway(tmp_path, again)
    try:
        results = gw2.run([_req(i) for i in range(6)])
    finally:
        gw2.close()
    assert [r.cached for r in results] == [True, True, False, False, False, False]
    assert sorted(again.calls) == ["q2", "q3", "q4", "q5"]  # nothing paid twice


@pytest.mark.parametrize("stopped", [False, True])
def test_run_coroutines_without_a_stop_returns_everything(tmp_path, stopped):
    backend = SlowBackend(delay=0.0)
    gw = _gateway(tmp_path, backend)
    stop = threading.Event()
    try:
        if stopped:
            stop.set()
            with pytest.raises(CancelledError):
                gw.run_coroutines([gw.complete(_req(i)) for i in range(3)], stop=stop)
        else:
            out = gw.run_coroutines([gw.complete(_req(i)) for i in range(3)], stop=stop)
            assert [r.content for r in out] == ["re q0", "re q1", "re q2"]
    finally:
        gw.close()
