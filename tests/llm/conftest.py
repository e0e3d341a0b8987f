"""Fixtures for the gateway tests: simulated endpoints started per test, gateways closed after it.

Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from curation.llm.gateway import ChatRequest, EndpointConfig, Gateway
from sim_endpoint.server import SimConfig, running_sim_server

SECRET = "sk-test-SECRET-123"
KEY_ENV = "VIDEORFT_TEST_API_KEY"


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The API key's value, set in the environment variable the endpoints name."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


@pytest.fixture
def sim() -> Iterator[Callable[..., str]]:
    """`sim(**SimConfig fields) -> base_url`: a simulated endpoint for this test only."""
    with contextlib.ExitStack() as stack:

        def start(**fields: Any) -> str:
            return stack.enter_context(running_sim_server(SimConfig(**fields)))

        yield start


def _fast_endpoint(base_url: str, **overrides: Any) -> EndpointConfig:
    """An endpoint config with test-sized timeouts and backoff."""
    fields: dict[str, Any] = dict(
        base_url=base_url,
        model="test-model",
        api_key_env=KEY_ENV,
        max_in_flight=8,
        timeout_s=2.0,
        max_retries=3,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
    )
    fields.update(overrides)
    return EndpointConfig(**fields)


@pytest.fixture
def make_gateway(tmp_path, api_key) -> Iterator[Callable[..., Gateway]]:
    """`make_gateway(endpoints, cache=True) -> Gateway`, closed at the end of the test."""
    made: list[Gateway] = []

    def make(endpoints: dict[str, EndpointConfig], cache: bool | str = True, **kw: Any) -> Gateway:
        path = tmp_path / "llm_cache.sqlite" if cache is True else (cache or None)
        gw = Gateway(endpoints, cache_path=path, **kw)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()


def _stage_request(
    stage: str, i: int, *, role: str = "reasoner", tag: str | None = None, **params: Any
) -> ChatRequest:
    """A small request carrying the stage marker the simulated endpoint recognises."""
    messages = [
        {"role": "system", "content": f"You are a careful assistant.\n[videorft-stage: {stage}]"},
        {"role": "user", "content": f"Question {i}: which option?\nA. left\nB. right"},
    ]
    return ChatRequest(
        role=role, messages=messages, params={"temperature": 0.6, **params}, tag=tag or f"sample-{i}"
    )


@pytest.fixture
def fast_endpoint(api_key) -> Callable[..., EndpointConfig]:
    """`fast_endpoint(base_url, **overrides)`: test-sized timeouts/backoff, key from the env."""
    return _fast_endpoint


@pytest.fixture
def stage_request() -> Callable[..., ChatRequest]:
    """`stage_request(stage, i, role=..., tag=..., **params)`: a small marked request."""
    return _stage_request
