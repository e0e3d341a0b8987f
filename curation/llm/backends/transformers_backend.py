"""In-process backend: a Qwen2.5-VL-class model run with transformers' `generate`.

For small models on CPU/GPU (the tiny random test model, a local checkpoint) where running a server
is overkill. It speaks the same protocol as the HTTP backend: OpenAI chat messages in (image parts
as JPEG data URLs, decoded back to PIL here), an OpenAI chat.completion dict out, with usage tokens
and a finish reason, so the gateway (cache, accounting) and the stages cannot tell the difference.

What it does not do, and says so in the response's `videorft_backend.notes`:
- `response_format` is ignored (no guided decoding here): a small model's JSON is validated, and
  repaired or failed, by the caption stage like any other answer;
- sampling parameters other than temperature, top_p, top_k, max_tokens, seed and stop are ignored;
- `video_url` parts are refused (PermanentError): send frames as images (frames_mode "images").

One model, one generation at a time: `generate` runs in a worker thread under a lock so the event
loop stays free; set the endpoint's `max_in_flight` to 1 so queued requests wait in the gateway
(whose timeout would otherwise also count the time spent waiting for the lock).

Endpoint options (`EndpointConfig.options`): `device` ("cpu", "cuda", "cuda:1"; default: cuda when
available), `dtype` ("auto", "float32", "bfloat16", ...), `attn_implementation`,
`image_min_pixels` / `image_max_pixels` (processor pixel budget).
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.llm.errors import PermanentError, TransientError
from curation.llm.messages import decode_data_url

if TYPE_CHECKING:
    from curation.llm.gateway import EndpointConfig

HANDLED_PARAMS = frozenset(
    {"temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "seed", "stop", "n"}
)
DEFAULT_MAX_TOKENS = 512
_OPTION_KEYS = frozenset({"device", "dtype", "attn_implementation", "image_min_pixels", "image_max_pixels"})


def load_model_and_processor(model: str, options: dict[str, Any]) -> tuple[Any, Any]:
    """(model, processor) for a hub id or a folder; our loader when it exists, else the Auto classes."""
    kwargs: dict[str, Any] = {"dtype": options.get("dtype", "auto")}
    if options.get("attn_implementation"):
        kwargs["attn_implementation"] = options["attn_implementation"]
    try:
        from training.tiny_qwen import load_model_and_processor as shared_loader
    except ImportError:  # curation workers without the training package
        shared_loader = None
    if shared_loader is not None:
        return shared_loader(
            model,
            image_min_pixels=options.get("image_min_pixels"),
            image_max_pixels=options.get("image_max_pixels"),
            **kwargs,
        )
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model)
    return AutoModelForImageTextToText.from_pretrained(model, **kwargs), processor


def to_template_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
    """OpenAI messages -> (messages for the Qwen chat template, PIL images in order).

    Image parts become `{"type": "image"}` placeholders (the template writes the vision tokens) and
    their data URLs are decoded to RGB PIL images for the processor.
    """
    from PIL import Image

    out: list[dict[str, Any]] = []
    images: list[Any] = []
    for message in messages:
        content = message.get("content")
        if content is None or isinstance(content, str):
            out.append({"role": message["role"], "content": content or ""})
            continue
        parts: list[dict[str, Any]] = []
        for part in content:
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": part.get("text", "")})
            elif kind == "image_url":
                url = (part.get("image_url") or {}).get("url", "")
                try:
                    _, data = decode_data_url(url)
                    image = Image.open(io.BytesIO(data))
                    image.load()
                except Exception as exc:  # noqa: BLE001 - any decoding problem is the request's fault
                    raise PermanentError(
                        f"image part is not a decodable data URL: {exc}", kind="bad_image"
                    ) from exc
                images.append(image.convert("RGB"))
                parts.append({"type": "image"})
            elif kind == "video_url":
                raise PermanentError(
                    "the transformers backend does not take video_url parts; use frames_mode 'images'",
                    kind="unsupported",
                )
            else:
                raise PermanentError(f"unsupported content part type {kind!r}", kind="unsupported")
        out.append({"role": message["role"], "content": parts})
    return out, images


class TransformersBackend:
    """`Backend` running `generate` in-process (see the module docstring)."""

    def __init__(self, cfg: EndpointConfig) -> None:
        self.cfg = cfg
        self.model_name = cfg.model
        unknown = set(cfg.options) - _OPTION_KEYS
        if unknown:
            raise ValueError(
                f"unknown transformers backend options {sorted(unknown)}; known: {sorted(_OPTION_KEYS)}"
            )
        if _looks_like_path(cfg.model) and not Path(cfg.model).exists():
            raise FileNotFoundError(f"model folder {cfg.model} does not exist")
        # Loaded here, once: a model that cannot load is a configuration error that must stop the run
        # (the gateway builds backends outside its per-row error handling for that reason).
        import torch

        self._torch = torch
        self.model, self.processor = load_model_and_processor(cfg.model, dict(cfg.options))
        device = cfg.options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(device).eval()
        self.device = torch.device(device)
        self._lock = threading.Lock()
        self._eos_ids = _eos_ids(self.model, self.processor)

    def __repr__(self) -> str:
        return f"TransformersBackend(model={self.model_name!r}, device={self.device})"

    async def chat(
        self,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        *,
        timeout: float,
        headers: dict[str, str],
    ) -> dict[str, Any]:
        template_messages, images = to_template_messages(messages)
        return await asyncio.to_thread(self._generate, template_messages, images, dict(params), timeout)

    async def aclose(self) -> None:
        # Drop the references so the weights can be freed; a later chat() would fail loudly.
        self.model = None
        self.processor = None

    # ---- worker thread ---------------------------------------------------------------------------
    def _generate(
        self, messages: list[dict[str, Any]], images: list[Any], params: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        torch = self._torch
        if self.model is None:
            raise PermanentError("backend is closed", kind="closed")
        notes = _notes(params)
        max_new = int(params.get("max_tokens") or params.get("max_completion_tokens") or DEFAULT_MAX_TOKENS)
        temperature = float(params.get("temperature", 1.0))
        do_sample = temperature > 0
        gen: dict[str, Any] = {"max_new_tokens": max_new, "do_sample": do_sample}
        if do_sample:
            gen["temperature"] = temperature
            gen["top_p"] = float(params.get("top_p", 1.0))
            if params.get("top_k"):
                gen["top_k"] = int(params["top_k"])
        else:  # greedy: unset the checkpoint's sampling defaults so generate does not warn about them
            gen.update(temperature=None, top_p=None, top_k=None)
        stop = params.get("stop")
        if stop:
            gen["stop_strings"] = [stop] if isinstance(stop, str) else list(stop)
            gen["tokenizer"] = self.processor.tokenizer
        # generate checks the clock between tokens: the answer comes back (as finish_reason "length")
        # before the gateway's deadline instead of a thread running on after it gave up.
        gen["max_time"] = max(1.0, timeout * 0.9)

        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = self.processor(text=[text], images=images or None, return_tensors="pt")
        inputs = inputs.to(self.device)
        prompt_len = int(inputs["input_ids"].shape[1])

        started = time.monotonic()
        with self._lock:
            if params.get("seed") is not None:
                torch.manual_seed(int(params["seed"]))  # global RNG: safe under the lock
            try:
                with torch.inference_mode():
                    output = self.model.generate(**inputs, **gen)
            except torch.cuda.OutOfMemoryError as exc:  # transient: a smaller neighbour may free memory
                raise TransientError(f"CUDA out of memory: {exc}", kind="oom") from exc
        elapsed = time.monotonic() - started

        new_tokens = output[0, prompt_len:].tolist()
        finish_reason = "length"
        for i, tok in enumerate(new_tokens):
            if tok in self._eos_ids:
                new_tokens = new_tokens[: i + 1]
                finish_reason = "stop"
                break
        content = self.processor.tokenizer.decode(new_tokens, skip_special_tokens=True)
        if stop:
            # OpenAI semantics: the answer ends before the first stop string, which is not returned.
            cuts = [i for i in (content.find(s) for s in gen["stop_strings"]) if i >= 0]
            if cuts:
                content = content[: min(cuts)]
                finish_reason = "stop"
        if finish_reason == "length" and len(new_tokens) < max_new and elapsed >= gen["max_time"]:
            notes.append(f"generation stopped at the time limit ({gen['max_time']:.0f}s)")
        return {
            "id": f"chatcmpl-tf-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_len,
                "completion_tokens": len(new_tokens),
                "total_tokens": prompt_len + len(new_tokens),
            },
            "videorft_backend": {"backend": "transformers", "seconds": round(elapsed, 3), "notes": notes},
        }


def _notes(params: dict[str, Any]) -> list[str]:
    notes = []
    if "response_format" in params:
        notes.append("response_format ignored: no guided decoding in the transformers backend")
    if int(params.get("n", 1) or 1) != 1:
        notes.append("n ignored: one choice per request")
    ignored = sorted(set(params) - HANDLED_PARAMS - {"response_format"})
    if ignored:
        notes.append(f"parameters ignored: {', '.join(ignored)}")
    return notes


def _eos_ids(model: Any, processor: Any) -> set[int]:
    ids: set[int] = set()
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif eos:
        ids.update(int(e) for e in eos)
    tok_eos = getattr(processor.tokenizer, "eos_token_id", None)
    if tok_eos is not None:
        ids.add(int(tok_eos))
    return ids


def _looks_like_path(model: str) -> bool:
    # Hub ids are "org/name"; anything absolute, relative-dotted or with more segments is a folder.
    return model.startswith(("/", "./", "../", "~")) or model.count("/") > 1 or Path(model).exists()
