"""Offline vLLM backend: a `vllm.LLM` engine inside the worker process (GPU extra only).

For a GPU worker that owns its model and does not want to run `vllm serve` next to it. vLLM pins a
CUDA torch and an older transformers, so it never shares the main environment (ENVIRONMENT.md):
importing this module is fine anywhere, building the backend without vLLM raises a clear
"install the gpu extra" error. The production path is still `vllm serve` + the `openai` backend.

Offline vLLM is fast only with batches, while the gateway sends one request per row, so concurrent
requests are gathered into micro-batches: the first queued request opens a window of
`batch_window_s` (default 0.02 s), everything queued by then (up to `max_batch`) goes to one
`LLM.chat` call in a worker thread. Set the endpoint's `max_in_flight` to the batch size you want.

Request parameters map onto `SamplingParams` (temperature, top_p, top_k, min_p, max_tokens, seed,
stop, presence/frequency/repetition penalties); `response_format` (json_schema / json_object) maps
onto vLLM's structured outputs (`StructuredOutputsParams`, or `GuidedDecodingParams` before 0.12);
`chat_template_kwargs` go to `LLM.chat`. There is no reasoning parser offline: a `<think>` block
stays in the content and the gateway splits it off.

Endpoint options: `batch_window_s`, `max_batch`; everything else goes to `vllm.LLM(...)`
(`tensor_parallel_size`, `gpu_memory_utilization`, `max_model_len`, `limit_mm_per_prompt`, ...).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from curation.llm.errors import PermanentError, TransientError

if TYPE_CHECKING:
    from curation.llm.gateway import EndpointConfig

INSTALL_HINT = (
    "the vllm backend needs vLLM: install the gpu extra (pip install 'videorft[gpu]') on a GPU worker"
)
SAMPLING_KEYS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
)
_BACKEND_OPTIONS = ("batch_window_s", "max_batch")


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return vllm


def build_sampling_params(params: dict[str, Any], vllm: Any) -> Any:
    """vLLM `SamplingParams` for one request's OpenAI-style params."""
    kwargs: dict[str, Any] = {k: params[k] for k in SAMPLING_KEYS if params.get(k) is not None}
    max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
    if max_tokens:
        kwargs["max_tokens"] = int(max_tokens)
    structured = _structured_kwargs(params.get("response_format"), vllm)
    kwargs.update(structured)
    return vllm.SamplingParams(**kwargs)


def _structured_kwargs(response_format: dict[str, Any] | None, vllm: Any) -> dict[str, Any]:
    if not response_format or response_format.get("type") == "text":
        return {}
    kind = response_format.get("type")
    if kind == "json_schema":
        spec: dict[str, Any] = {"json": (response_format.get("json_schema") or {}).get("schema") or {}}
    elif kind == "json_object":
        spec = {"json_object": True}
    else:
        raise PermanentError(f"unsupported response_format type {kind!r}", kind="bad_request")
    sampling_module = vllm.sampling_params
    if hasattr(sampling_module, "StructuredOutputsParams"):  # vLLM >= 0.10.2 (old names gone in 0.12)
        return {"structured_outputs": sampling_module.StructuredOutputsParams(**spec)}
    return {"guided_decoding": sampling_module.GuidedDecodingParams(**spec)}


def completion_from_output(output: Any, model: str) -> dict[str, Any]:
    """OpenAI chat.completion dict from one vLLM `RequestOutput`."""
    choice = output.outputs[0]
    prompt_tokens = len(output.prompt_token_ids or [])
    completion_tokens = len(choice.token_ids or [])
    return {
        "id": f"chatcmpl-vllm-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": choice.text},
                # None when aborted; "stop"/"length" otherwise (the same words as OpenAI's).
                "finish_reason": choice.finish_reason or "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "videorft_backend": {"backend": "vllm-offline"},
    }


@dataclass
class _Pending:
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    future: asyncio.Future
    template_kwargs: str = field(default="{}")


class VLLMBackend:
    """`Backend` over an offline `vllm.LLM` with micro-batching (see the module docstring).

    `engine` and `vllm_module` are injection points for tests (a fake engine, no vLLM import).
    """

    def __init__(
        self,
        cfg: EndpointConfig,
        *,
        engine: Any | None = None,
        vllm_module: Any | None = None,
        sampling_factory: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.model_name = cfg.model
        options = dict(cfg.options)
        self.batch_window_s = float(options.pop("batch_window_s", 0.02))
        self.max_batch = int(options.pop("max_batch", cfg.max_in_flight))
        if engine is None:
            vllm_module = vllm_module or _import_vllm()
            # Built here, once: a model that cannot load must stop the run, not fail every row.
            engine = vllm_module.LLM(model=cfg.model, **options)
        self._vllm = vllm_module
        self._engine = engine
        self._sampling = sampling_factory or (lambda p: build_sampling_params(p, self._vllm))
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"VLLMBackend(model={self.model_name!r})"

    async def chat(
        self,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        *,
        timeout: float,
        headers: dict[str, str],
    ) -> dict[str, Any]:
        if self._engine is None:
            raise PermanentError("backend is closed", kind="closed")
        if self._queue is None:  # created lazily on the gateway's loop
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._batch_worker())
        loop = asyncio.get_running_loop()
        pending = _Pending(
            messages=messages,
            params=dict(params),
            future=loop.create_future(),
            template_kwargs=json.dumps(params.get("chat_template_kwargs") or {}, sort_keys=True),
        )
        await self._queue.put(pending)
        return await pending.future

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._engine = None

    # ---- batching --------------------------------------------------------------------------------
    async def _batch_worker(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            deadline = asyncio.get_running_loop().time() + self.batch_window_s
            while len(batch) < self.max_batch:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            # Requests whose caller gave up (gateway timeout) are not worth GPU time.
            batch = [p for p in batch if not p.future.done()]
            # LLM.chat takes one set of chat-template kwargs per call: one call per distinct set.
            groups: dict[str, list[_Pending]] = {}
            for p in batch:
                groups.setdefault(p.template_kwargs, []).append(p)
            for template_kwargs, group in groups.items():
                await self._run_group(group, json.loads(template_kwargs))

    async def _run_group(self, group: list[_Pending], template_kwargs: dict[str, Any]) -> None:
        try:
            sampling = [self._sampling(p.params) for p in group]
        except PermanentError as exc:
            for p in group:
                _settle(p.future, exc=exc)
            return
        try:
            outputs = await asyncio.to_thread(
                self._chat_batch, [p.messages for p in group], sampling, template_kwargs
            )
        except (TransientError, PermanentError) as exc:
            for p in group:
                _settle(p.future, exc=exc)
            return
        except Exception as exc:  # noqa: BLE001 - reported per request; the gateway fails the rows
            err = _classify(exc)
            for p in group:
                _settle(p.future, exc=err)
            return
        for p, output in zip(group, outputs, strict=True):
            _settle(p.future, result=completion_from_output(output, self.model_name))

    def _chat_batch(
        self, conversations: list[Any], sampling: list[Any], template_kwargs: dict[str, Any]
    ) -> list[Any]:
        with self._lock:  # the offline engine is not thread-safe
            kwargs: dict[str, Any] = {"use_tqdm": False}
            if template_kwargs:
                kwargs["chat_template_kwargs"] = template_kwargs
            return list(self._engine.chat(conversations, sampling, **kwargs))


def _settle(future: asyncio.Future, *, result: Any = None, exc: BaseException | None = None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _classify(exc: Exception) -> Exception:
    name = type(exc).__name__
    if "OutOfMemory" in name:
        return TransientError(f"vLLM {name}: {exc}", kind="oom")
    # vLLM raises ValueError for requests it cannot take (prompt longer than max_model_len, too many
    # images): retrying the same request cannot help.
    if isinstance(exc, ValueError | TypeError):
        return PermanentError(f"vLLM rejected the request: {exc}", kind="bad_request")
    return TransientError(f"vLLM {name}: {exc}", kind="engine_error")
