"""The simulated OpenAI-compatible endpoint: answers for synthetic samples from their ground truth.

NOT A MODEL. It names itself so in every response's `model` field and in an
`X-Videorft-Simulated: true` header, so nothing downstream can mistake its output for a model's.
It serves the demo, the tests and the benchmarks:

- `POST /v1/chat/completions`: finds the sample by the `X-Videorft-Sample-Id` header among the
  synthetic `annotations.jsonl` files it loaded, the stage by the `[videorft-stage: ...]` marker
  in the prompt, and answers from the sample's `meta` (see answers.py). Unknown samples get a
  valid, clearly generic answer.
- Transport realism: latency (mean ± jitter), a capacity (requests in service at once; the rest
  queue), and faults (500, 429 + Retry-After, hang past the client's timeout, malformed JSON body,
  truncated output with finish_reason "length"), each decided by hashing (request, arrival number)
  so a retry of the same request can succeed and the request order does not matter.
- A misconfigured or broken real server, switchable at runtime (`POST /sim/configure` with a JSON
  object of SimConfig fields): only some model names served (404 with vLLM's body), an API key
  (401), a context length (400 with vLLM's wording), text-only models (400 for images), hanging
  on every request, dropping every connection mid-response.
- `GET /v1/models` (with vLLM's `root`), `GET /health`, `GET /sim/stats` (counters: `requests`
  is chat arrivals, `errors` every chat arrival not answered 200), `POST /sim/reset`.

Run: `videorft sim-server --port 8000 --annotations data/annotations.jsonl`, or in tests
`with running_sim_server(SimConfig(...)) as base_url: ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import hashlib
import json
import logging
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from curation.records import sample_id
from sim_endpoint import answers
from sim_endpoint.config import (
    FAULT_KINDS,
    SIM_MODEL_NAME,
    FaultRates,
    Plants,
    SimConfig,
    latency_for,
    plants,
    transport_fault,
    unit_hash,
)
from sim_endpoint.scene import scene_from_meta

__all__ = [
    "FAULT_KINDS",
    "SIM_MODEL_NAME",
    "FaultRates",
    "Plants",
    "SimConfig",
    "build_app",
    "configure_sim",
    "load_samples",
    "main",
    "plants",
    "request_hash",
    "reset_sim_stats",
    "running_sim_server",
    "serve",
    "sim_stats",
    "transport_fault",
    "unit_hash",
]

log = logging.getLogger(__name__)

SAMPLE_ID_HEADER = "x-videorft-sample-id"  # same as curation.llm.gateway.SAMPLE_ID_HEADER
# Faults of a misconfigured / broken server (counted per kind in the stats).
SERVER_FAULTS = ("unauthorized", "model_not_found", "context_too_long", "images_to_text_model", "dropped")
ERROR_KINDS = ("bad_request", "server_error", "rate_limited", "hang", "malformed", *SERVER_FAULTS)
_READY_LINE = "videorft-sim listening on "


def load_samples(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Synthetic annotation rows by sample id (id computed as curation.records.sample_id does)."""
    samples: dict[str, dict[str, Any]] = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                row = json.loads(line)
                sid = sample_id(row.get("data_source", ""), row.get("media_path", ""), row.get("problem", ""))
                samples[sid] = row
                if row.get("id"):
                    samples[str(row["id"])] = row
    return samples


def request_hash(body: bytes, tag: str) -> str:
    """Identity of a request for fault decisions: its exact body plus the sample tag."""
    return hashlib.sha256(tag.encode("utf-8") + b"\n" + body).hexdigest()


class SimState:
    """Counters and per-request arrival numbers; touched only on the server's event loop."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.samples = load_samples(cfg.annotations)
        self._capacity: asyncio.Semaphore | None = None
        self.reset()

    def reset(self) -> None:
        self.arrivals: Counter[str] = Counter()
        self.succeeded: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.stages: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.in_service = 0
        self.max_in_service = 0
        # Busy slot-seconds per wall-clock second since the first request entered service: how full
        # the endpoint was over time (benchmarks judge saturation on it, fill and drain apart).
        self.busy_by_second: list[float] = []
        self._t0: float | None = None
        self._t_last = 0.0

    def change_in_service(self, delta: int) -> None:
        """Move `in_service` by `delta`, integrating the occupancy up to now first."""
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = self._t_last = now
        start, end = self._t_last - self._t0, now - self._t0
        while self.in_service and start < end:  # split the interval at whole seconds
            second = int(start)
            if second >= len(self.busy_by_second):
                self.busy_by_second.extend([0.0] * (second + 1 - len(self.busy_by_second)))
            stop = min(end, second + 1)
            self.busy_by_second[second] += self.in_service * (stop - start)
            start = stop
        self._t_last = now
        self.in_service += delta
        self.max_in_service = max(self.max_in_service, self.in_service)

    @property
    def capacity(self) -> asyncio.Semaphore:
        if self._capacity is None:  # created on the server's loop
            self._capacity = asyncio.Semaphore(self.cfg.capacity)
        return self._capacity

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: self.counts.get(k, 0) for k in ("requests", "ok", "unknown_sample", "bad_request")
        }
        out.update({k: self.counts.get(k, 0) for k in FAULT_KINDS})
        out.update({k: self.counts.get(k, 0) for k in SERVER_FAULTS})
        # Chat arrivals not answered with a 200 (a truncated answer is a 200): what a client sees
        # as failed attempts.
        out["errors"] = sum(self.counts.get(k, 0) for k in ERROR_KINDS)
        out["models_requests"] = self.counts.get("models_requests", 0)
        out.update(
            distinct_requests=len(self.arrivals),
            # A request arriving again after it was once answered successfully: a client that
            # re-pays for an answer it already had (should stay 0 behind the gateway).
            resent_after_success=self.counts.get("resent_after_success", 0),
            # Of those arrivals, the ones answered again (not refused by an injected fault): the
            # answers a client paid for twice. Only answers it never received may be among them.
            answered_again=self.counts.get("answered_again", 0),
            in_flight=self.in_flight,
            max_in_flight=self.max_in_flight,
            max_in_service=self.max_in_service,
            capacity=self.cfg.capacity,
            busy_by_second=[round(b, 3) for b in self.busy_by_second],
            stages=dict(self.stages),
            samples_loaded=len({id(v) for v in self.samples.values()}),
            model=self.cfg.model_name,
        )
        return out


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers={"X-Videorft-Simulated": "true", **(headers or {})})


def _retry_after_value(cfg: SimConfig) -> str:
    if cfg.retry_after_http_date:
        return email.utils.formatdate(time.time() + cfg.retry_after_s, usegmt=True)
    s = cfg.retry_after_s
    return str(int(s)) if float(s).is_integer() else f"{s:g}"


def completion_body(
    cfg: SimConfig,
    rhash: str,
    messages: list[dict[str, Any]],
    content: str,
    reasoning: str | None,
    finish_reason: str,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    usage: dict[str, Any] = {"prompt_tokens": answers.prompt_tokens(messages)}
    completion = answers.estimate_tokens(content)
    if reasoning is not None:
        message["reasoning_content"] = reasoning
        r = answers.estimate_tokens(reasoning)
        completion += r
        usage["completion_tokens_details"] = {"reasoning_tokens": r}
    usage["completion_tokens"] = completion
    usage["total_tokens"] = usage["prompt_tokens"] + completion
    return {
        "id": f"chatcmpl-sim-{rhash[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": cfg.model_name,
        "system_fingerprint": "videorft-simulated-endpoint",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage,
    }


def answer_content(state: SimState, tag: str, payload: dict[str, Any]) -> tuple[str, str | None, str]:
    """(content, reasoning_content or None, stage) for a request; pure given the state's samples."""
    cfg = state.cfg
    messages = payload["messages"]
    stage = answers.detect_stage(messages) or "none"
    sample = state.samples.get(tag) if tag else None
    if stage == "none":
        return answers.generic_reply(), None, stage
    image = stage == "caption" and answers.caption_kind(payload, sample) == "image"
    if sample is None:
        state.counts["unknown_sample"] += 1
        if image:
            return answers.generic_image_description_json(), None, stage
        if stage == "caption":
            return answers.generic_caption_json(answers.frame_times(messages, 1.0)), None, stage
        if stage == "draft":
            reasoning, final = answers.generic_draft_parts(messages)
        else:
            return answers.generic_revise_content(messages), None, stage
    else:
        scene = scene_from_meta(sample.get("meta") or {})
        planted = plants(tag, cfg)
        if image:
            return answers.image_description_json(sample, scene), None, stage
        if stage == "caption":
            return answers.caption_json(scene, answers.frame_times(messages, scene.duration)), None, stage
        if stage == "revise":
            return answers.revise_content(sample, scene, planted), None, stage
        reasoning, final = answers.draft_parts(sample, scene, planted)
    if cfg.reasoning_mode == "field":
        return final, reasoning, stage
    return f"<think>{reasoning}</think>\n{final}", None, stage


async def _sleep_unless_disconnected(request: Request, seconds: float) -> bool:
    """Sleep up to `seconds`; return False early if the client went away (its timeout fired)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(0.05, left))
        if await request.is_disconnected():
            return False
    return True


def _has_media(messages: list[dict[str, Any]]) -> bool:
    for m in messages:
        content = m.get("content")
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") in ("image_url", "video_url", "input_image")
            for p in content
        ):
            return True
    return False


def _authorised(cfg: SimConfig, request: Request) -> bool:
    return cfg.api_key is None or request.headers.get("authorization", "") == f"Bearer {cfg.api_key}"


def _unauthorised() -> JSONResponse:
    return JSONResponse({"error": "Unauthorized"}, status_code=401, headers={"X-Videorft-Simulated": "true"})


def _vllm_error(status: int, message: str, kind: str) -> JSONResponse:
    # vLLM's error body: {"object": "error", "message", "type", "param", "code"}.
    body = {"object": "error", "message": message, "type": kind, "param": None, "code": status}
    return JSONResponse(body, status_code=status, headers={"X-Videorft-Simulated": "true"})


async def _hang(request: Request, seconds: float) -> Response:
    await _sleep_unless_disconnected(request, seconds)
    return Response(status_code=499)


class _DroppedResponse(Response):
    """Starts a 200 with a long body, sends a piece of it, then the server closes the connection."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"100000")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"id": "chatcmpl-', "more_body": True})
        raise ConnectionAbortedError("simulated: connection dropped mid-response")


def check_request(cfg: SimConfig, payload: dict[str, Any]) -> tuple[str, JSONResponse] | None:
    """A misconfigured-server refusal for this request (fault kind, response), or None."""
    model = str(payload.get("model", ""))
    if cfg.served_models and model not in cfg.served_models:
        return "model_not_found", _vllm_error(404, f"The model `{model}` does not exist.", "NotFoundError")
    messages = payload["messages"]
    if model in cfg.text_only_models and _has_media(messages):
        msg = f"{model} is not a multimodal model: image and video inputs are not supported"
        return "images_to_text_model", _vllm_error(400, msg, "BadRequestError")
    if cfg.max_model_len is not None:
        n = answers.prompt_tokens(messages)
        if n > cfg.max_model_len:
            msg = (
                f"This model's maximum context length is {cfg.max_model_len} tokens. However, your request "
                f"has {n} input tokens. Please reduce the length of the input messages."
            )
            return "context_too_long", _vllm_error(400, msg, "BadRequestError")
    return None


def build_app(cfg: SimConfig) -> Starlette:
    state = SimState(cfg)
    sim_headers = {"X-Videorft-Simulated": "true"}

    async def chat_completions(request: Request) -> Response:
        cfg = state.cfg
        body = await request.body()
        tag = request.headers.get(SAMPLE_ID_HEADER, "")
        rhash = request_hash(body, tag)
        state.counts["requests"] += 1
        state.arrivals[rhash] += 1
        attempt = state.arrivals[rhash]
        if rhash in state.succeeded:
            state.counts["resent_after_success"] += 1
        if cfg.hang_all:
            state.counts["hang"] += 1
            return await _hang(request, cfg.hang_s)
        if not _authorised(cfg, request):
            state.counts["unauthorized"] += 1
            return _unauthorised()
        try:
            payload = json.loads(body)
            messages = payload["messages"]
            if not isinstance(messages, list) or not messages:
                raise TypeError("messages must be a non-empty list")
        except (ValueError, KeyError, TypeError) as exc:
            state.counts["bad_request"] += 1
            return _error(400, f"invalid request: {exc}", "invalid_request_error")
        refusal = check_request(cfg, payload)
        if refusal is not None:
            state.counts[refusal[0]] += 1
            return refusal[1]

        fault = "drop" if cfg.drop_all else transport_fault(rhash, attempt, cfg)
        if fault == "rate_limited":  # refused at the door: no capacity used, no latency
            state.counts["rate_limited"] += 1
            return _error(
                429, "simulated rate limit", "rate_limit_error", {"Retry-After": _retry_after_value(cfg)}
            )
        if fault == "drop":
            state.counts["dropped"] += 1
            return _DroppedResponse()

        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            async with state.capacity:
                state.change_in_service(+1)
                try:
                    if fault == "hang":
                        state.counts["hang"] += 1
                        if not await _sleep_unless_disconnected(request, cfg.hang_s):
                            return Response(status_code=499)  # nobody is listening any more
                    else:
                        delay = latency_for(rhash, attempt, cfg)
                        if delay > 0:
                            await asyncio.sleep(delay)
                    if fault == "server_error":
                        state.counts["server_error"] += 1
                        return _error(500, "simulated internal server error", "server_error")
                    content, reasoning, stage = answer_content(state, tag, payload)
                    state.stages[stage] += 1
                    if fault == "malformed":
                        state.counts["malformed"] += 1
                        cut = json.dumps(completion_body(cfg, rhash, messages, content, reasoning, "stop"))
                        return Response(
                            cut[: max(10, len(cut) // 3)], media_type="application/json", headers=sim_headers
                        )
                    finish = "stop"
                    if fault == "truncated":
                        state.counts["truncated"] += 1
                        content, reasoning, finish = content[: len(content) // 2], reasoning, "length"
                        if reasoning is not None:  # cut inside the reasoning: no answer yet
                            content, reasoning = "", reasoning[: len(reasoning) // 2]
                    elif fault is None:
                        state.counts["ok"] += 1
                    if rhash in state.succeeded:
                        state.counts["answered_again"] += 1
                    state.succeeded.add(rhash)
                    return JSONResponse(
                        completion_body(cfg, rhash, messages, content, reasoning, finish), headers=sim_headers
                    )
                finally:
                    state.change_in_service(-1)
        finally:
            state.in_flight -= 1

    async def models(request: Request) -> Response:
        cfg = state.cfg
        state.counts["models_requests"] += 1
        if cfg.hang_all:
            return await _hang(request, cfg.hang_s)
        if not _authorised(cfg, request):
            return _unauthorised()
        if not cfg.models_route:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        names = cfg.served_models or [cfg.model_name]
        data = [
            {
                "id": name,
                "object": "model",
                "created": 0,
                "owned_by": "videorft-simulator",
                "root": cfg.root_of(name),
                "max_model_len": cfg.max_model_len,
            }
            for name in names
        ]
        out: dict[str, Any] = {"object": "list", "data": data}
        if not cfg.served_models:
            out["accepts_any_model"] = True  # a simulator extension; no real server says this
        return JSONResponse(out, headers=sim_headers)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "model": state.cfg.model_name})

    async def stats(_: Request) -> Response:
        return JSONResponse(state.stats())

    async def reset(_: Request) -> Response:
        state.reset()
        return JSONResponse({"status": "reset"})

    async def configure(request: Request) -> Response:
        """Change SimConfig fields at runtime (e.g. `{"api_key": null}` once the key is "fixed")."""
        try:
            update = json.loads(await request.body() or b"{}")
            state.cfg = SimConfig.model_validate({**state.cfg.model_dump(), **update})
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(state.cfg.model_dump(mode="json"))

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/sim/stats", stats, methods=["GET"]),
            Route("/sim/reset", reset, methods=["POST"]),
            Route("/sim/configure", configure, methods=["POST"]),
        ]
    )
    app.state.sim = state
    return app


# ---- running it -----------------------------------------------------------------------------------


def _bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
    # TCP, and with Nagle on, every response on a kept-alive connection stalls ~40 ms on the
    # client's delayed ACK (measured: 44 ms per request instead of 0.5 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _uvicorn_server(cfg: SimConfig) -> uvicorn.Server:
    config = uvicorn.Config(
        build_app(cfg),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        backlog=2048,
    )
    return uvicorn.Server(config)


def serve(host: str, port: int, cfg: SimConfig | None = None) -> None:
    """Run the simulated endpoint in the foreground until interrupted."""
    cfg = (cfg or SimConfig()).model_copy(update={"host": host, "port": port})
    sock = _bind(host, port)
    actual = sock.getsockname()[1]
    # One line on stdout, read by running_sim_server(subprocess=True) to learn a free port.
    print(f"{_READY_LINE}http://{host}:{actual}/v1", flush=True)
    print(f"  model name: {cfg.model_name!r}; NOT a real model", file=sys.stderr, flush=True)
    _uvicorn_server(cfg).run(sockets=[sock])


def _root(base_url: str) -> str:
    return base_url.rstrip("/").removesuffix("/v1")


def _get_json(url: str, method: str = "GET", timeout: float = 5.0) -> dict[str, Any]:
    import httpx

    # trust_env=False: never route a local call through a proxy from the environment.
    with httpx.Client(trust_env=False, timeout=timeout) as client:
        r = client.request(method, url)
        r.raise_for_status()
        return r.json()


def sim_stats(base_url: str) -> dict[str, Any]:
    """The simulator's counters (see SimState.stats)."""
    return _get_json(f"{_root(base_url)}/sim/stats")


def occupancy(busy_by_second: list[float], capacity: int, trim: float = 0.0) -> float:
    """Mean share of the endpoint's capacity in service, from `stats()["busy_by_second"]`.

    `trim` drops that fraction of the seconds at each end (the pipeline filling up and draining), so
    `trim=0.1` is the steady state of the middle 80%. The last second is always dropped: it is partial.
    """
    seconds = busy_by_second[:-1]
    cut = int(len(seconds) * trim)
    window = seconds[cut : len(seconds) - cut]
    if not window or capacity <= 0:
        return 0.0
    return sum(window) / (capacity * len(window))


def reset_sim_stats(base_url: str) -> None:
    _get_json(f"{_root(base_url)}/sim/reset", method="POST")


def configure_sim(base_url: str, **fields: Any) -> dict[str, Any]:
    """Switch the running simulator's settings (faults on or off); returns the new SimConfig."""
    import httpx

    with httpx.Client(trust_env=False, timeout=5.0) as client:
        r = client.post(f"{_root(base_url)}/sim/configure", json=fields)
        r.raise_for_status()
        return r.json()


def _wait_healthy(base_url: str, timeout: float, alive: Any = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("simulated endpoint exited during start-up")
        try:
            _get_json(f"{_root(base_url)}/health", timeout=1.0)
            return
        except Exception as exc:  # not up yet
            last = exc
            time.sleep(0.05)
    raise TimeoutError(f"simulated endpoint at {base_url} not healthy after {timeout}s: {last}")


@contextlib.contextmanager
def running_sim_server(
    cfg: SimConfig | None = None, *, subprocess: bool = False, startup_timeout_s: float = 30.0
) -> Iterator[str]:
    """Start the simulated endpoint, yield its base URL ("http://127.0.0.1:P/v1"), stop it on exit.

    In a background thread by default (fast start, shares the caller's process); in a child
    process with `subprocess=True`, so that a benchmark's client and server do not share one GIL.
    """
    cfg = cfg or SimConfig()
    if subprocess:
        with _running_in_subprocess(cfg, startup_timeout_s) as url:
            yield url
        return
    sock = _bind(cfg.host, cfg.port)
    base_url = f"http://{cfg.host}:{sock.getsockname()[1]}/v1"
    server = _uvicorn_server(cfg)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="videorft-sim", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("simulated endpoint failed to start")
            time.sleep(0.01)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@contextlib.contextmanager
def _running_in_subprocess(cfg: SimConfig, startup_timeout_s: float) -> Iterator[str]:
    import subprocess as sp

    cmd = [sys.executable, "-m", "sim_endpoint.server", "--config-json", cfg.model_dump_json()]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = sp.Popen(cmd, stdout=sp.PIPE, text=True, env=env)
    try:
        line_box: list[str] = []
        reader = threading.Thread(target=lambda: line_box.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(startup_timeout_s)
        line = line_box[0] if line_box else ""
        if not line.startswith(_READY_LINE):
            raise RuntimeError(f"simulated endpoint did not start (got {line!r})")
        base_url = line[len(_READY_LINE) :].strip()
        _wait_healthy(base_url, startup_timeout_s, alive=lambda: proc.poll() is None)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except sp.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def parse_args(argv: list[str] | None) -> tuple[str, int, SimConfig]:
    p = argparse.ArgumentParser(
        prog="videorft sim-server",
        description="Simulated OpenAI-compatible endpoint for synthetic samples (NOT a model).",
    )
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument(
        "--annotations", type=Path, action="append", default=None, help="annotations.jsonl (repeatable)"
    )
    p.add_argument("--config", type=Path, help="YAML/JSON file with SimConfig fields")
    p.add_argument("--config-json", help="SimConfig as a JSON string")
    p.add_argument("--latency", type=float, help="mean latency in seconds")
    p.add_argument("--jitter", type=float)
    p.add_argument("--latency-sigma", type=float, help="log-normal latency with this sigma (mean --latency)")
    p.add_argument("--capacity", type=int)
    p.add_argument("--fault-rate", type=float, help="total fault rate, spread evenly over every kind")
    p.add_argument("--seed", type=int)
    a = p.parse_args(argv)
    data: dict[str, Any] = {}
    if a.config:
        import yaml

        data.update(yaml.safe_load(a.config.read_text()) or {})
    if a.config_json:
        data.update(json.loads(a.config_json))
    for key, value in (
        ("host", a.host),
        ("port", a.port),
        ("annotations", a.annotations),
        ("latency_s", a.latency),
        ("jitter_s", a.jitter),
        ("latency_sigma", a.latency_sigma),
        ("capacity", a.capacity),
        ("seed", a.seed),
    ):
        if value is not None:
            data[key] = value
    if a.fault_rate is not None:
        data["faults"] = FaultRates.spread(a.fault_rate).model_dump()
    cfg = SimConfig.model_validate(data)
    return cfg.host, cfg.port, cfg


def main(argv: list[str] | None = None) -> int:
    host, port, cfg = parse_args(argv)
    serve(host, port, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
