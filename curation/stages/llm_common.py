"""What the three LLM stages (caption, draft, revise) share: config base, request bookkeeping, media.

Every LLM stage row carries the same lineage and accounting columns (`ROW_COLUMNS`), whether it
succeeded or not, so the stage tables have one schema and the manifest can add them up:

    status, reason, model, served_model, simulated, prompt_hash, raw, requests, cache_hits,
    prompt_tokens, completion_tokens, reasoning_tokens

`model` is the name the recipe asked for, `served_model` the name the server answered with (the
`model` field of its responses; several, comma-separated, if they differed), `simulated` whether
the simulated endpoint answered (curation/provenance.py).

`raw` is what the model wrote in its last answer (a JSON list of every answer when the stage made
a repair request), kept even when parsing failed: it was paid for, and it is how a bad row is
debugged. Token counts sum over every response the row used, cached or not: they are the cost of
the row's content; what this run actually paid is in `gateway.stats()`.

A stage function never raises for model or endpoint trouble: a failed request, a truncated or
unparseable answer all become `status="failed"` with a specific `reason`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from curation.llm.errors import GatewayError
from curation.llm.gateway import ChatRequest, ChatResult
from curation.llm.messages import ImageDetail, Part, frame_parts, image_parts, video_url_for, video_url_part
from curation.prompts import PromptSet, load_prompt, prompt_hash
from curation.provenance import response_is_simulated
from curation.records import FAILED, OK

if TYPE_CHECKING:
    from curation.records import Sample

ROW_COLUMNS: tuple[str, ...] = (
    "status",
    "reason",
    "model",
    "served_model",
    "simulated",
    "prompt_hash",
    "raw",
    "requests",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
)

TRUNCATED = "truncated output (finish_reason=length)"
FramesMode = Literal["images", "video_url"]


class LLMStageConfig(BaseModel):
    """Settings shared by every LLM stage.

    role: gateway role whose endpoint answers (its model enters the content key via the runner).
    prompt_dir: the prompt folder; only its content hash enters the key, never the path.
    temperature / top_p / max_tokens / seed: sampling parameters sent with every request.
    extra_params: further request parameters sent as-is (e.g. `presence_penalty`, or vLLM's
        `top_k`); they change the answer, so they are part of the key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: str
    prompt_dir: Path
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=4096, ge=1)
    seed: int | None = None
    extra_params: dict[str, Any] = Field(default_factory=dict)

    # Set by each stage's subclass; the version is bumped when parsing or request building changes
    # meaning, so old results are not reused for the new code.
    STAGE: ClassVar[str] = ""
    STAGE_VERSION: ClassVar[str] = ""
    _prompt_hash: str | None = PrivateAttr(default=None)

    def load_prompt(self) -> PromptSet:
        return load_prompt(self.prompt_dir)

    def request_params(self) -> dict[str, Any]:
        """Sampling parameters of every request of this stage (response_format added per request)."""
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }
        if self.seed is not None:
            params["seed"] = self.seed
        params.update(self.extra_params)
        return params

    def key_material(self, prompt: PromptSet | None = None) -> dict[str, Any]:
        """Everything of this config that changes the requests or their parsing, plus the prompt hash.

        The runner adds the endpoint's model name (`endpoint_model(gateway, cfg.role)`) and the input
        row's key. Left out on purpose: `role` (the model stands for it) and `prompt_dir` (a path;
        moving the folder must not rerun anything, editing it must, which the hash covers).
        """
        if prompt is None:
            # The runner calls this once per row: the folder is hashed once per config object
            # (a config lives for one run, and a run uses the prompts it loaded at its start).
            if self._prompt_hash is None:
                self._prompt_hash = prompt_hash(self.prompt_dir)
            current = self._prompt_hash
        else:
            current = prompt.hash
        return {
            "stage": self.STAGE,
            "stage_version": self.STAGE_VERSION,
            "prompt_hash": current,
            "params": self.request_params(),
            **self._key_extras(),
        }

    def _key_extras(self) -> dict[str, Any]:
        return {}


class FramesConfig(BaseModel):
    """How a stage that looks at the media sends it.

    frames_mode: "images" (every sampled frame as a JPEG data URL, after a `Frame at t:` label) or
        "video_url" (one `video_url` part, for servers that decode video themselves).
    max_frames: send at most this many of the extracted frames (uniformly chosen); None sends all.
    image_detail: OpenAI's per-image `detail` ("low" is ~85 tokens a frame); None leaves it out.
    video_url_prefix: where the media root is reachable from the server (`file:///data/media`,
        `https://...`); required for "video_url". Not part of the key: it is a location.
    video_inline: read the video through a `file://` prefix and send it as a data URL.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    frames_mode: FramesMode = "images"
    max_frames: int | None = Field(default=None, ge=1)
    image_detail: ImageDetail | None = None
    video_url_prefix: str | None = None
    video_inline: bool = False

    @model_validator(mode="after")
    def _video_url_needs_prefix(self) -> FramesConfig:
        if self.frames_mode == "video_url" and not self.video_url_prefix:
            raise ValueError('frames_mode "video_url" needs video_url_prefix (e.g. "file:///data/media")')
        return self

    def frames_key(self) -> dict[str, Any]:
        return {
            "frames_mode": self.frames_mode,
            "max_frames": self.max_frames,
            "image_detail": self.image_detail,
            "video_inline": self.video_inline,
        }


def endpoint_model(gateway: Any, role: str) -> str:
    """The model name configured for `role` ("" when the gateway cannot say)."""
    endpoint = getattr(gateway, "endpoint", None)
    if endpoint is None:
        return ""
    try:
        return endpoint(role).model
    except (KeyError, AttributeError):
        return ""


def _message(result: ChatResult) -> dict[str, Any]:
    if not result.raw:
        return {}
    try:
        return result.raw["choices"][0].get("message") or {}
    except (KeyError, IndexError, TypeError, AttributeError):
        return {}


def message_content(result: ChatResult) -> str:
    """The message `content` exactly as received (the gateway's `content` has `<think>` split off)."""
    message = _message(result)
    if not message:
        return result.full_text()
    return message.get("content") or ""


def raw_text(result: ChatResult) -> str:
    """Everything the model wrote in one answer, as received.

    The gateway splits a leading `<think>` block off `content`; a stage that needs the exact text
    (the reviser must answer `<think>…</think>`; `raw` must be what was paid for) reads the message
    itself. A separate reasoning field (vLLM's reasoning parser) is put back in front as `<think>`.
    """
    message = _message(result)
    if not message:
        return result.full_text()
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    return f"<think>{reasoning}</think>{content}" if reasoning else content


def response_problem(result: ChatResult) -> str | None:
    """The failure reason of a response that cannot be parsed at all, else None."""
    if not result.ok:
        return f"llm error: {result.error}"
    if result.truncated:
        return TRUNCATED
    return None


@dataclass
class RowLedger:
    """Accounting and lineage for one stage row: every request goes through `complete`."""

    role: str
    prompt_hash: str
    model: str = ""
    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    raws: list[str] = field(default_factory=list)
    # What answered: the responses' own `model` names, in order of first appearance.
    served: list[str] = field(default_factory=list)
    simulated: bool = False

    async def complete(
        self, gateway: Any, messages: list[dict[str, Any]], params: dict[str, Any], tag: str
    ) -> ChatResult:
        try:
            result = await gateway.complete(
                ChatRequest(role=self.role, messages=messages, params=params, tag=tag)
            )
        except GatewayError as exc:  # the gateway reports failures in the result; this is a safety net
            self.requests += 1
            return ChatResult(ok=False, error=f"{type(exc).__name__}: {exc}")
        # `requests` counts what was sent (and paid for), `cache_hits` what the cache answered;
        # tokens are only counted when paid, so a rerun's manifest shows what it cost.
        if result.cached:
            self.cache_hits += 1
        else:
            self.requests += 1
            for name in ("prompt_tokens", "completion_tokens", "reasoning_tokens"):
                setattr(self, name, getattr(self, name) + int(result.usage.get(name, 0) or 0))
        if result.ok:
            self.raws.append(raw_text(result))
            if not self.model:
                self.model = result.model
            if result.model and result.model not in self.served:
                self.served.append(result.model)
            self.simulated = self.simulated or response_is_simulated(result.raw)
        return result

    @property
    def raw(self) -> str:
        if len(self.raws) <= 1:
            return self.raws[0] if self.raws else ""
        return json.dumps(self.raws, ensure_ascii=False)

    def row(self, status: str, reason: str, fields: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": status,
            "reason": reason,
            "model": self.model,
            "served_model": ", ".join(self.served),
            "simulated": self.simulated,
            "prompt_hash": self.prompt_hash,
            "raw": self.raw,
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            **fields,
        }

    def ok(self, fields: dict[str, Any]) -> dict[str, Any]:
        return self.row(OK, "", fields)

    def failed(self, reason: str, fields: dict[str, Any]) -> dict[str, Any]:
        return self.row(FAILED, reason, fields)


def new_ledger(gateway: Any, cfg: LLMStageConfig, prompt: PromptSet) -> RowLedger:
    return RowLedger(role=cfg.role, prompt_hash=prompt.hash, model=endpoint_model(gateway, cfg.role))


def resolve_prompt(cfg: LLMStageConfig, prompt: PromptSet | None) -> PromptSet:
    # The runner loads each prompt once per shard and passes it in; loading here is a convenience.
    return prompt if prompt is not None else cfg.load_prompt()


def select_frames(
    frame_paths: list[str], timestamps: list[float], max_frames: int | None
) -> tuple[list[str], list[float]]:
    """At most `max_frames` frames, uniformly spread and always including the first and last."""
    n = len(frame_paths)
    if max_frames is None or n <= max_frames:
        return list(frame_paths), [float(t) for t in timestamps]
    if max_frames == 1:
        idx = [0]
    else:
        idx = sorted({round(i * (n - 1) / (max_frames - 1)) for i in range(max_frames)})
    return [frame_paths[i] for i in idx], [float(timestamps[i]) for i in idx]


@dataclass
class Media:
    """The media parts of a request and the frame times they stand for."""

    parts: list[Part]
    timestamps: list[float]
    duration: float


def upstream_problem(row: dict[str, Any] | None, name: str) -> str | None:
    """Reason to skip when an input row is missing or not ok (the runner normally filters these)."""
    if not row:
        return f"no {name} row"
    status = row.get("status", OK)
    if status != OK:
        return f"{name} not ok ({status}: {row.get('reason', '')})"
    return None


def build_media(sample: Sample, extract: dict[str, Any], run_dir: Path, cfg: FramesConfig) -> Media:
    """Media parts for `sample` from its extract row. Raises ValueError/OSError with a clear reason."""
    frame_paths = list(extract.get("frame_paths") or [])
    timestamps = [float(t) for t in (extract.get("timestamps") or [])]
    if sample.data_type == "image":
        if not frame_paths:
            raise ValueError("extract row has no image frame")
        return Media(image_parts(run_dir, frame_paths[0], detail=cfg.image_detail), [], 0.0)
    if len(frame_paths) != len(timestamps):
        raise ValueError(f"extract row has {len(frame_paths)} frame paths but {len(timestamps)} timestamps")
    if not frame_paths:
        raise ValueError("extract row has no frames")
    paths, times = select_frames(frame_paths, timestamps, cfg.max_frames)
    duration = float(extract.get("duration") or 0.0) or (times[-1] if times else 0.0)
    if cfg.frames_mode == "video_url":
        assert cfg.video_url_prefix is not None  # checked by the config validator
        url = video_url_for(sample.media_path, cfg.video_url_prefix, inline=cfg.video_inline)
        return Media([video_url_part(url)], times, duration)
    return Media(frame_parts(run_dir, paths, times, detail=cfg.image_detail), times, duration)


def options_list(sample: Sample) -> list[str]:
    return [str(o) for o in (sample.options or [])]
