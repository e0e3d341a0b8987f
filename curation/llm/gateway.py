"""The LLM gateway: every chat completion of every stage goes through here.

It owns what must be the same whatever model answers: a bound on requests in flight per endpoint,
retries with exponential backoff and full jitter (honouring Retry-After), a per-attempt timeout,
the persistent response cache, and token / request accounting per role.

Failure policy (one attempt = one call of the backend):
- connection errors, timeouts, 408/409/429, 5xx: retried up to `max_retries` times.
- a 200 whose body is not a chat.completion (malformed JSON): retried too. It is a transport
  failure: nothing usable came back, nothing is cached; when retries run out the result is
  `ok=False, error="malformed response: ..."`.
- other 4xx: not retried; `ok=False` with the server's message.
- `finish_reason == "length"`: not an error here. The result is `ok=True` with that finish reason
  (and cached: the tokens were paid for); the stage decides to fail the row as "truncated output".
A request never raises for an item's failure: the result records it (with a normalised reason,
curation/llm/failures.py), so one bad row never sinks a shard.

Endpoint-wide failures (connection refused or dropped, timeouts, 401/403/404, 5xx) are different:
when `breaker_failures` requests in a row end that way with no success between, the endpoint's
circuit breaker opens and every further request to it raises `EndpointUnavailable` without being
sent. The rows stay pending, the run stops with one message, and a rerun resumes once the endpoint
is fixed. Each request also has a total deadline (`deadline_s`: its attempts and backoff),
so a hung server costs minutes, not `max_retries × timeout_s` per row.

Concurrency: the gateway runs its own event loop on a background thread. `run()` (sync) and
`complete()` (async, from any loop) both execute there, so several shard threads calling at once
still share one in-flight bound per endpoint (roles with the same backend + base_url + model
share it).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from curation.llm.backends import Backend, make_backend
from curation.llm.backends.openai_backend import resolve_api_key
from curation.llm.cache import ResponseCache, cache_key
from curation.llm.errors import PermanentError, TransientError
from curation.llm.failures import EndpointUnavailable, hint_for, is_endpoint_wide, normalise_reason

log = logging.getLogger(__name__)
T = TypeVar("T")

ROLES: tuple[str, ...] = ("captioner", "reasoner", "reviser")
# The sample id travels as a header: servers (the simulated one) may route on it, but it is never
# part of the cache key, so identical requests for two samples are one paid request.
SAMPLE_ID_HEADER = "X-Videorft-Sample-Id"
# The backend gets `timeout_s` for its own I/O; this outer deadline only catches a backend that
# ignores it (an in-process model stuck in a C call still blocks its thread, but not the loop).
_DEADLINE_GRACE_S = 1.0
# How often a caller blocked in run_coroutines looks at its stop event.
_STOP_POLL_S = 0.2
# On close after a stop, how long requests already in flight may take to land in the cache.
_STOP_GRACE_S = 2.0


class _StopEvent(Protocol):
    def is_set(self) -> bool: ...


# Counters of the requests made inside one `run_coroutines` call (a shard of a stage): asyncio tasks
# inherit the caller's context, so every request a shard's coroutines make lands in its counter,
# whatever else runs on the gateway loop at the same time.
_ACCOUNT: contextvars.ContextVar[Counter | None] = contextvars.ContextVar(
    "videorft_llm_account", default=None
)
# Roles whose answers may carry a `<think>` block in `content` (R1 without a reasoning parser).
REASONER_ROLES = frozenset({"reasoner"})


class EndpointConfig(BaseModel):
    """Where one role's requests go and how hard to push."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["openai", "transformers", "vllm"] = "openai"
    base_url: str | None = None
    # Name of the environment variable holding the key; the value is read once and never stored.
    api_key_env: str | None = None
    model: str
    max_in_flight: int = Field(default=16, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    # A server asking for longer than this gets this; protects a run from a wild Retry-After.
    max_retry_after_s: float = Field(default=300.0, ge=0)
    # Total time one request may spend in attempts and backoff. Waiting for a free in-flight slot
    # is not counted: that is the run's own queue (thousands of rows wait there at scale), and a
    # deadline spent queueing would fail healthy requests. None: max(600 s, 2 × timeout_s), so a
    # hung server costs minutes, not max_retries × timeout_s.
    deadline_s: float | None = Field(default=None, gt=0)
    # Open the circuit breaker after this many requests in a row failed endpoint-wide (connection,
    # timeout, 401/403/404, 5xx on every attempt) with no success between. Small: a broken endpoint
    # must stop the run in seconds, and a sporadic failure almost never repeats N times in a row.
    breaker_failures: int = Field(default=3, ge=1)
    # Split a leading `<think>…</think>` off `content` into the reasoning (None: only for the
    # reasoner role). Never for roles answering JSON: a `</think>` inside a caption is content.
    split_think: bool | None = None
    # Merged under each request's params (request wins): server-specific knobs such as vLLM's
    # `top_k` or `chat_template_kwargs`. Part of the cache key, since they change the output.
    extra_body: dict[str, Any] = Field(default_factory=dict)
    # Backend-specific settings (e.g. transformers: device, dtype); not sent to servers.
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def total_deadline_s(self) -> float:
        return self.deadline_s if self.deadline_s is not None else max(600.0, 2 * self.timeout_s)

    def endpoint_key(self) -> tuple[str, str, str]:
        """Roles whose configs share this key share one backend and one in-flight bound."""
        return (self.backend, self.base_url or "", self.model)


@dataclass
class ChatRequest:
    role: str
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    # The sample id: sent as X-Videorft-Sample-Id, used in logs, never in the cache key.
    tag: str = ""


@dataclass
class ChatResult:
    ok: bool
    content: str = ""
    reasoning_content: str | None = None
    finish_reason: str | None = None
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0}
    )
    # The model that answered, as the server names itself (the simulator says it is not a model).
    model: str = ""
    cached: bool = False
    error: str = ""
    # Backend calls made for this result (0 when served from the cache).
    attempts: int = 0
    # The chat.completion dict as received: the raw output every stage row keeps.
    raw: dict[str, Any] | None = None
    # Content address of the request (the cache key), for lineage.
    key: str = ""
    # The backend's message for a failure, before normalisation (for logs, never for reasons).
    detail: str = ""
    # Why it failed, as a failure kind ("http_400", "timeout", ...); "" when ok.
    kind: str = ""

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    def full_text(self) -> str:
        """Reasoning and content back together as `<think>…</think>content` (what R1 emits)."""
        if self.reasoning_content is None:
            return self.content
        return f"<think>{self.reasoning_content}</think>{self.content}"


@dataclass
class RoleStats:
    requests: int = 0  # requests sent to the endpoint (cache misses)
    attempts: int = 0  # backend calls, first tries and retries
    retries: int = 0
    cache_hits: int = 0
    ok: int = 0
    errors: int = 0  # results with ok=False
    truncated: int = 0  # ok results with finish_reason "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    # Failed attempts by kind ("http_429", "timeout", "connection", "malformed", "http_400", ...).
    failures: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["failures"] = dict(self.failures)
        return out


def split_think(content: str) -> tuple[str | None, str]:
    """Split a leading `<think>…</think>` block off `content`: (reasoning or None, rest).

    Also handles R1-style output whose opening tag was part of the prompt (content starts with the
    reasoning and only the closing `</think>` appears).
    """
    stripped = content.lstrip()
    if stripped.startswith("<think>"):
        end = stripped.find("</think>")
        if end < 0:  # never closed (e.g. truncated): all of it is reasoning
            return stripped[len("<think>") :].strip(), ""
        return stripped[len("<think>") : end].strip(), stripped[end + len("</think>") :].strip()
    end = content.find("</think>")
    if end >= 0 and "<think>" not in content[:end]:
        return content[:end].strip(), content[end + len("</think>") :].strip()
    return None, content


def usage_from_response(response: dict[str, Any]) -> dict[str, int]:
    usage = response.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    return {
        "prompt_tokens": int(usage.get("prompt_tokens") or 0),
        "completion_tokens": int(usage.get("completion_tokens") or 0),
        "reasoning_tokens": int(details.get("reasoning_tokens") or 0),
    }


def result_from_response(
    response: dict[str, Any], *, key: str, cached: bool, attempts: int, split: bool = True
) -> ChatResult:
    """A ChatResult from a (validated) chat.completion dict.

    `split`: take a leading `<think>` block off `content` when the server did not already separate
    the reasoning (`reasoning_content` / `reasoning`); only for reasoner roles.
    """
    choice = response["choices"][0]
    message = choice.get("message") or {}
    content = message.get("content") or ""
    # vLLM's reasoning parsers put it in `reasoning_content` (newer releases: `reasoning`).
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if split and not reasoning:
        reasoning, content = split_think(content)
    return ChatResult(
        ok=True,
        content=content,
        reasoning_content=reasoning,
        finish_reason=choice.get("finish_reason"),
        usage=usage_from_response(response),
        model=str(response.get("model") or ""),
        cached=cached,
        attempts=attempts,
        raw=response,
        key=key,
    )


def backoff_delay(attempt: int, cfg: EndpointConfig, retry_after: float | None, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based).

    Full jitter (uniform in [0, min(max, base·2^(attempt-1))]) spreads a burst of failures out;
    a server's Retry-After is a floor, with a little jitter on top so the retries do not return
    as one wave.
    """
    if retry_after is not None:
        return min(retry_after, cfg.max_retry_after_s) + rng.uniform(0, cfg.backoff_base_s)
    return rng.uniform(0, min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (attempt - 1)))


def _claim_stale_s(cfg: EndpointConfig) -> float:
    """How long another process may hold a request's claim before it counts as dead: every attempt
    timing out, with the longest backoff between them (a live holder is done by then)."""
    per_attempt = cfg.timeout_s + _DEADLINE_GRACE_S + max(cfg.backoff_max_s, cfg.max_retry_after_s)
    return per_attempt * (cfg.max_retries + 1) + 60.0


def _copy(err: EndpointUnavailable) -> EndpointUnavailable:
    """A fresh exception per refused request (one instance raised from many tasks piles tracebacks)."""
    return EndpointUnavailable(*err.args)


class _Endpoint:
    """One backend + one in-flight bound, shared by every role pointing at it."""

    def __init__(self, cfg: EndpointConfig, max_in_flight: int) -> None:
        self.cfg = cfg
        self.max_in_flight = max_in_flight
        self.semaphore = asyncio.Semaphore(max_in_flight)
        self.backend: Backend | None = None
        # Circuit breaker: requests that failed endpoint-wide since the last success, and the
        # error every request gets once it is open (touched only on the gateway loop).
        self.consecutive_failures = 0
        self.unavailable: EndpointUnavailable | None = None


class Gateway:
    """Chat completions for the pipeline's roles, with retries, bounds, caching and accounting."""

    def __init__(
        self,
        endpoints: Mapping[str, EndpointConfig],
        cache_path: str | Path | None = None,
        *,
        backend_factory: Callable[[EndpointConfig], Backend] = make_backend,
        seed: int | None = None,
        in_flight_share: int = 1,
        served_identity: Mapping[str, str] | None = None,
    ) -> None:
        """`in_flight_share`: how many processes send this run's requests at once (worker
        processes of a Ray/Dask run). Each gets `max_in_flight // in_flight_share` of every
        endpoint's bound, so the bound holds for the whole run (flows/executors.py)."""
        self._configs = {role: EndpointConfig.model_validate(cfg) for role, cfg in endpoints.items()}
        # What each role's server said it serves (preflight: vLLM's `root`, the weights' path); part
        # of the cache key, so another checkpoint under the same model name never gets old answers.
        self._served = {role: str((served_identity or {}).get(role) or "") for role in self._configs}
        for cfg in self._configs.values():
            if cfg.backend == "openai":
                resolve_api_key(cfg.api_key_env)  # fail now on a missing key, not mid-run
        # Roles sharing an endpoint get the tightest bound any of them asked for.
        bounds: dict[tuple[str, str, str], int] = {}
        for cfg in self._configs.values():
            k = cfg.endpoint_key()
            share = max(1, cfg.max_in_flight // max(1, in_flight_share))
            bounds[k] = min(bounds.get(k, share), share)
        shared: dict[tuple[str, str, str], _Endpoint] = {}
        self._endpoints: dict[str, _Endpoint] = {}
        for role, cfg in self._configs.items():
            k = cfg.endpoint_key()
            if k not in shared:
                shared[k] = _Endpoint(cfg, bounds[k])
            self._endpoints[role] = shared[k]
        self._backend_factory = backend_factory
        self._cache = ResponseCache(cache_path) if cache_path is not None else None
        # Cache misses being sent right now, by cache key: an identical request arriving meanwhile
        # waits for that answer instead of paying for it again (touched only on the gateway loop).
        self._inflight: dict[str, asyncio.Future] = {}
        self._stats = {role: RoleStats() for role in self._configs}
        self._stats_lock = threading.Lock()
        self._rng = random.Random(seed)
        self._stop_sending = threading.Event()
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="videorft-llm-gateway", daemon=True
        )
        self._thread.start()

    # ---- configuration -------------------------------------------------------------------------
    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self._configs)

    def endpoint(self, role: str) -> EndpointConfig:
        return self._configs[role]

    def in_flight_bound(self, role: str) -> int:
        return self._endpoints[role].max_in_flight

    def unavailable(self) -> list[EndpointUnavailable]:
        """The endpoints whose circuit breaker is open (one entry per endpoint)."""
        seen: dict[int, EndpointUnavailable] = {}
        for ep in self._endpoints.values():
            if ep.unavailable is not None:
                seen[id(ep)] = ep.unavailable
        return list(seen.values())

    # ---- requests ------------------------------------------------------------------------------
    def run(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Complete every request (in order of the input) and block until all are done."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("Gateway.run() called on the gateway's own loop; use `await complete_many()`")
        return self._submit(self._complete_many(list(requests))).result()

    def run_coroutines(
        self, coros: Sequence[Awaitable[T]], stop: _StopEvent | None = None, account: Counter | None = None
    ) -> list[T]:
        """Run stage coroutines (which `await gateway.complete(...)`) on the gateway loop; block.

        Lets a stage write per-row async logic (request, parse, one repair request) while the
        in-flight bound stays shared with every other caller. Results come back in input order;
        an exception in one coroutine propagates (wrap rows that must not fail the batch).
        `stop` (anything with `is_set()`): once set, the gateway sends no new request
        (`stop_sending`) and this call raises `concurrent.futures.CancelledError` at once; the
        requests already in flight get until `close()` (plus a short grace there) to land in the
        cache, so a rerun does not pay for them again.
        `account`, when given, counts the requests these coroutines make (the `RoleStats` fields
        plus `failures:<kind>` per failed attempt), and nothing else's.
        """
        stopped = stop is not None and stop.is_set()
        if threading.current_thread() is self._thread or self._closed or stopped:
            for coro in coros:  # never started: close them so Python does not warn about them
                getattr(coro, "close", lambda: None)()
            if stopped:
                self.stop_sending()
                raise CancelledError("stop requested")
            raise RuntimeError("Gateway.run_coroutines() needs an open gateway, called from another thread")

        async def gather() -> list[T]:
            if account is not None:
                _ACCOUNT.set(account)  # this task's context: inherited by the tasks gather makes
            return list(await asyncio.gather(*coros))

        fut = self._submit(gather())
        if stop is None:
            return fut.result()
        while True:
            try:
                return fut.result(timeout=_STOP_POLL_S)
            except TimeoutError:
                if stop.is_set():
                    self.stop_sending()
                    raise CancelledError("stop requested") from None

    async def complete(self, req: ChatRequest) -> ChatResult:
        """Complete one request; awaitable from any event loop (it runs on the gateway's)."""
        if self._on_own_loop():
            return await self._complete(req)
        return await asyncio.wrap_future(self._submit(self._complete(req)))

    async def complete_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        if self._on_own_loop():
            return await self._complete_many(list(requests))
        return await asyncio.wrap_future(self._submit(self._complete_many(list(requests))))

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters per role, plus "total" summed over roles."""
        with self._stats_lock:
            per_role = {role: s.as_dict() for role, s in self._stats.items()}
        total: dict[str, Any] = {}
        for s in per_role.values():
            for name, value in s.items():
                if name == "failures":
                    total.setdefault(name, Counter()).update(value)
                else:
                    total[name] = total.get(name, 0) + value
        total["failures"] = dict(total.get("failures", {}))
        per_role["total"] = total
        return per_role

    # ---- lifecycle -----------------------------------------------------------------------------
    def stop_sending(self) -> None:
        """Send no new request from now on (the run is stopping): a request about to be sent, or
        about to be retried, ends cancelled instead; requests in flight go on."""
        self._stop_sending.set()

    def close(self) -> None:
        """Cancel what is still running, close backends and the cache, stop the loop thread."""
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._aclose(), self._loop).result(timeout=60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=60)
            if not self._thread.is_alive():
                self._loop.close()
            if self._cache is not None:
                self._cache.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        roles = ", ".join(f"{r}={c.model!r}@{c.base_url or c.backend}" for r, c in self._configs.items())
        return f"Gateway({roles})"

    # ---- internals -----------------------------------------------------------------------------
    def _on_own_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _submit(self, coro: Any) -> Future:
        if self._closed:
            coro.close()
            raise RuntimeError("gateway is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _complete_many(self, requests: list[ChatRequest]) -> list[ChatResult]:
        return list(await asyncio.gather(*(self._complete(r) for r in requests)))

    def _count(self, role: str, **deltas: int) -> None:
        with self._stats_lock:
            s = self._stats[role]
            for name, delta in deltas.items():
                setattr(s, name, getattr(s, name) + delta)
        account = _ACCOUNT.get()
        if account is not None:
            account.update({k: v for k, v in deltas.items() if v})

    def _split(self, role: str) -> bool:
        split = self._configs[role].split_think
        return role in REASONER_ROLES if split is None else split

    def _backend(self, endpoint: _Endpoint) -> Backend:
        if endpoint.backend is None:
            endpoint.backend = self._backend_factory(endpoint.cfg)
        return endpoint.backend

    async def _complete(self, req: ChatRequest) -> ChatResult:
        if req.role not in self._configs:
            raise ValueError(f"no endpoint configured for role {req.role!r} (have {sorted(self._configs)})")
        cfg = self._configs[req.role]
        endpoint = self._endpoints[req.role]
        params = {**cfg.extra_body, **req.params}
        key = cache_key(cfg.model, req.messages, params, served=self._served.get(req.role, ""))
        if self._cache is None:
            return await self._send(req, cfg, endpoint, params, key)
        while True:
            hit = self._cache.get(key)
            if hit is None and key in self._inflight:
                # The same request is in flight: its answer is ours too (None if it failed).
                hit = await asyncio.shield(self._inflight[key])
                if hit is None:
                    continue  # it failed: look again, then try ourselves
            if hit is None and not self._cache.claim(key):
                # Another process (a worker of this run, a run sharing the cache) is paying for this
                # request: its answer is ours too (None: it failed or died, look again).
                hit = await self._cache.wait_claimed(key, _claim_stale_s(cfg))
                if hit is None:
                    continue
            elif hit is None:
                # Claimed. Look once more: another process may have stored the answer and released
                # its claim between our miss above and our claim (it stores before it releases).
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.release(key)
            if hit is not None:
                self._count(req.role, cache_hits=1)
                return result_from_response(
                    hit, key=key, cached=True, attempts=0, split=self._split(req.role)
                )
            break
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = done
        result: ChatResult | None = None
        try:
            result = await self._send(req, cfg, endpoint, params, key)
            return result
        finally:
            del self._inflight[key]
            self._cache.release(key)  # after the answer is stored (or the request gave up)
            done.set_result(result.raw if result is not None and result.ok else None)

    async def _send(
        self, req: ChatRequest, cfg: EndpointConfig, endpoint: _Endpoint, params: dict[str, Any], key: str
    ) -> ChatResult:
        if endpoint.unavailable is not None:  # open breaker: not sent, the row stays pending
            raise _copy(endpoint.unavailable)
        self._count(req.role, requests=1)
        headers = {SAMPLE_ID_HEADER: req.tag} if req.tag else {}
        attempt = 0
        budget = cfg.total_deadline_s
        spent = 0.0  # seconds in attempts and backoff (not in the queue for a slot)
        loop = asyncio.get_running_loop()
        while True:
            attempt += 1
            # Built on first use, outside the try: a backend that cannot be built (missing extra,
            # bad model path) is a configuration error and must stop the run, not fail each row.
            backend = self._backend(endpoint)
            started: float | None = None
            timeout = min(cfg.timeout_s, budget - spent)
            try:
                async with endpoint.semaphore:
                    if self._stop_sending.is_set():  # checked once a slot is ours: nothing new goes out
                        raise asyncio.CancelledError("the run is stopping")
                    if endpoint.unavailable is not None:  # opened while this request waited
                        raise _copy(endpoint.unavailable)
                    self._count(req.role, attempts=1, retries=int(attempt > 1))
                    started = loop.time()
                    async with asyncio.timeout(timeout + _DEADLINE_GRACE_S):
                        response = await backend.chat(req.messages, params, timeout=timeout, headers=headers)
            except TimeoutError:
                error: Exception = TransientError(f"timeout after {timeout:g}s", kind="timeout")
            except EndpointUnavailable:
                raise
            except (TransientError, PermanentError) as exc:
                error = exc
            except Exception as exc:  # a backend bug: fail this row loudly, keep the shard going
                log.exception("%s %s: backend raised unexpectedly", req.role, req.tag)
                error = PermanentError(f"backend error: {type(exc).__name__}: {exc}", kind="backend_error")
            else:
                endpoint.consecutive_failures = 0
                return self._record_success(req.role, key, response, attempt)
            finally:
                if started is not None:
                    spent += loop.time() - started

            self._record_failure(req.role, error)
            if isinstance(error, PermanentError) or attempt > cfg.max_retries:
                return self._final_failure(req, endpoint, key, error, attempt)
            delay = backoff_delay(attempt, cfg, getattr(error, "retry_after", None), self._rng)
            if spent + delay >= budget:  # no time left for another attempt: fail with the last error
                log.debug(
                    "%s %s: deadline of %gs reached after %d attempts", req.role, req.tag, budget, attempt
                )
                return self._final_failure(req, endpoint, key, error, attempt)
            log.debug(
                "%s %s: attempt %d failed (%s); retrying in %.2fs", req.role, req.tag, attempt, error, delay
            )
            await asyncio.sleep(delay)
            spent += delay

    def _record_success(self, role: str, key: str, response: dict[str, Any], attempt: int) -> ChatResult:
        cfg = self._configs[role]
        # Stored before anything interprets it: a response that later fails to parse was paid for.
        if self._cache is not None:
            self._cache.put(key, cfg.model, response)
        result = result_from_response(
            response, key=key, cached=False, attempts=attempt, split=self._split(role)
        )
        self._count(
            role,
            ok=1,
            truncated=int(result.truncated),
            prompt_tokens=result.usage["prompt_tokens"],
            completion_tokens=result.usage["completion_tokens"],
            reasoning_tokens=result.usage["reasoning_tokens"],
        )
        return result

    def _record_failure(self, role: str, error: Exception) -> None:
        kind = getattr(error, "kind", type(error).__name__)
        with self._stats_lock:
            self._stats[role].failures[kind] += 1
        account = _ACCOUNT.get()
        if account is not None:
            account.update({"failed_attempts": 1, f"failures:{kind}": 1})

    def _final_failure(
        self, req: ChatRequest, endpoint: _Endpoint, key: str, error: Exception, attempts: int
    ) -> ChatResult:
        kind = getattr(error, "kind", type(error).__name__)
        reason = normalise_reason(kind, str(error))
        if is_endpoint_wide(kind):
            endpoint.consecutive_failures += 1
            cfg = endpoint.cfg
            if endpoint.unavailable is None and endpoint.consecutive_failures >= cfg.breaker_failures:
                endpoint.unavailable = EndpointUnavailable(
                    req.role, cfg.base_url or cfg.backend, cfg.model, reason, hint_for(kind)
                )
                log.error(
                    "%s; %d requests in a row failed, no further requests are sent to it",
                    endpoint.unavailable,
                    endpoint.consecutive_failures,
                )
            if endpoint.unavailable is not None:
                raise _copy(endpoint.unavailable)  # this row stays pending too: it was never answered
        self._count(req.role, errors=1)
        # An item's failure is counted in the stage's reason table; a log line per row would flood.
        log.log(
            logging.WARNING if is_endpoint_wide(kind) else logging.DEBUG,
            "%s %s: request failed after %d attempt(s): %s",
            req.role,
            req.tag,
            attempts,
            error,
        )
        return ChatResult(ok=False, error=reason, attempts=attempts, key=key, detail=str(error), kind=kind)

    async def _aclose(self) -> None:
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        if pending and self._stop_sending.is_set():
            # Stopping: answers already on their way are paid for; a short grace lets them reach
            # the cache (nothing new is sent meanwhile) before the rest is cancelled.
            await asyncio.wait(pending, timeout=_STOP_GRACE_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        seen: set[int] = set()
        for endpoint in self._endpoints.values():
            if endpoint.backend is not None and id(endpoint.backend) not in seen:
                seen.add(id(endpoint.backend))
                await endpoint.backend.aclose()
