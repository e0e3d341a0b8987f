"""Caption stage (VideoRFT stage 1): a VLM writes a structured, literal JSON description of the media.

distilabel-shaped: `caption_messages` renders the request (format_input), `parse_caption` turns an
answer into a validated description or an error (format_output), and `caption_row` wires them to
the gateway with one repair round:

    request -> answer invalid? -> [original messages, the bad answer, "here is the error, return
    only valid JSON"] -> still invalid -> row fails with the validation error.

The JSON schema is generated from `curation/schemas.py` and sent as `response_format`
(`json_schema`, strict) unless the config turns it off (servers without structured outputs); then
the schema goes into the prompt text instead. Either way the answer is validated here: a server
may ignore `response_format` (the in-process transformers backend does).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, ValidationError

from curation.llm.messages import Message, chat_messages
from curation.prompts import PROMPTS_ROOT, PromptSet, frame_timestamps
from curation.records import Sample
from curation.schemas import (
    DESCRIPTION_MODELS,
    SCHEMA_NAMES,
    VideoDescription,
    description_json_schema,
    schema_hash,
    summarize_validation_error,
)
from curation.stages.llm_common import (
    FramesConfig,
    LLMStageConfig,
    Media,
    build_media,
    new_ledger,
    resolve_prompt,
    response_problem,
    upstream_problem,
)

STAGE = "caption"
STAGE_VERSION = "caption/v1"

# Columns of a caption row besides the common ones (failed rows carry them empty).
EMPTY_FIELDS: dict[str, Any] = {"caption_json": "", "video_caption": "", "n_frames": 0}

_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


class CaptionConfig(LLMStageConfig, FramesConfig):
    """Caption stage settings (key material: see `key_material`).

    response_format: send the JSON schema as `response_format` (strict). Turn off for servers
        without structured outputs; the schema is then written into the prompt.
    pin_frame_count: put minItems = maxItems = number of frames on the schema's `frames` array
        (guided decoding then cannot miscount; not every server accepts array bounds).
    repair: make one repair request after an invalid answer.
    """

    STAGE: ClassVar[str] = STAGE
    STAGE_VERSION: ClassVar[str] = STAGE_VERSION

    role: str = "captioner"
    prompt_dir: Path = PROMPTS_ROOT / "caption"
    # A literal description wants the most likely reading, not variety.
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=6144, ge=1)
    response_format: bool = True
    pin_frame_count: bool = False
    repair: bool = True

    def _key_extras(self) -> dict[str, Any]:
        return {
            **self.frames_key(),
            "response_format": self.response_format,
            "pin_frame_count": self.pin_frame_count,
            "repair": self.repair,
            # The schema is code, not a prompt file, but it is part of every request.
            "schema_hash": {kind: schema_hash(kind) for kind in sorted(DESCRIPTION_MODELS)},
        }


# ---- format_input -------------------------------------------------------------------------------


def _variant(sample: Sample) -> tuple[str, str]:
    """(system file, user template) for the sample's media kind."""
    if sample.data_type == "image":
        return "system_image.md", "user_image.jinja"
    return "system.md", "user.jinja"


def caption_params(cfg: CaptionConfig, data_type: str, n_frames: int | None) -> dict[str, Any]:
    params = cfg.request_params()
    if cfg.response_format:
        pinned = n_frames if cfg.pin_frame_count else None
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": SCHEMA_NAMES[data_type],
                "schema": description_json_schema(data_type, pinned),
                "strict": True,
            },
        }
    return params


def caption_messages(sample: Sample, media: Media, cfg: CaptionConfig, prompt: PromptSet) -> list[Message]:
    """System + user messages: media parts first, then the rendered instruction."""
    system_file, user_file = _variant(sample)
    # Without response_format the model only learns the structure from the prompt.
    schema = "" if cfg.response_format else json.dumps(description_json_schema(sample.data_type), indent=1)
    if sample.data_type == "image":
        user = prompt.render(user_file, schema=schema)
    else:
        user = prompt.render(
            user_file,
            n_frames=len(media.timestamps),
            timestamps=frame_timestamps(media.timestamps),
            duration=f"{media.duration:.1f} seconds",
            schema=schema,
        )
    return chat_messages(prompt.text(system_file).strip(), user, media.parts)


def repair_messages(
    messages: list[Message], bad_answer: str, error: str, n_frames: int | None, prompt: PromptSet
) -> list[Message]:
    """The original conversation, the invalid answer as the assistant turn, then the repair ask."""
    return [
        *messages,
        {"role": "assistant", "content": bad_answer},
        {"role": "user", "content": prompt.render("repair.jinja", error=error, n_frames=n_frames or 0)},
    ]


# ---- format_output ------------------------------------------------------------------------------


def extract_json_text(text: str | None) -> str:
    """The JSON object inside a noisy answer: strips ```json fences and text before/after it.

    Returns "" when no `{` is found. Only the first complete object is kept (trailing chatter after
    it is dropped), found with the JSON decoder itself, so braces inside strings are no problem.
    """
    if not text:
        return ""
    fenced = _FENCE_RE.search(text)
    if fenced:
        text = fenced.group(1)
    start = text.find("{")
    if start < 0:
        return ""
    try:
        _, end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError:
        return text[start:].strip()  # let the caller's parse report the real error
    return text[start:end]


def parse_caption(text: str | None, data_type: str, n_frames: int | None) -> tuple[BaseModel | None, str]:
    """(validated description, "") or (None, error). `n_frames` = expected frame entries (video).

    Error strings are short and free of model text (they become row reasons): "empty answer",
    "no JSON object in the answer", "not valid JSON: ...", a pydantic summary, or
    "frame-count mismatch: expected N frame entries, got M".
    """
    if text is None or not text.strip():
        return None, "empty answer"
    body = extract_json_text(text)
    if not body:
        return None, "no JSON object in the answer"
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
    try:
        description = DESCRIPTION_MODELS[data_type].model_validate(obj)
    except ValidationError as exc:
        return None, summarize_validation_error(exc)
    if (
        isinstance(description, VideoDescription)
        and n_frames is not None
        and len(description.frames) != n_frames
    ):
        return None, f"frame-count mismatch: expected {n_frames} frame entries, got {len(description.frames)}"
    return description, ""


def _failure_reason(error: str) -> str:
    # The count check has its own reason (it says the model saw the frames but miscounted);
    # everything else is an invalid description.
    return error if error.startswith("frame-count mismatch") else f"invalid caption JSON: {error}"


def caption_fields(description: BaseModel, n_frames: int) -> dict[str, Any]:
    text = description.video_caption if isinstance(description, VideoDescription) else description.caption
    return {"caption_json": description.model_dump_json(), "video_caption": text, "n_frames": n_frames}


# ---- the row ------------------------------------------------------------------------------------


async def caption_row(
    gateway: Any,
    sample: Sample,
    extract: dict[str, Any],
    run_dir: Path,
    cfg: CaptionConfig,
    prompt: PromptSet | None = None,
) -> dict[str, Any]:
    """Describe one sample's media. Never raises for model, endpoint or media-file trouble."""
    prompt = resolve_prompt(cfg, prompt)
    ledger = new_ledger(gateway, cfg, prompt)
    problem = upstream_problem(extract, "extract")
    if problem:
        return ledger.failed(problem, dict(EMPTY_FIELDS))
    try:
        media = build_media(sample, extract, Path(run_dir), cfg)
    except (OSError, ValueError) as exc:
        return ledger.failed(f"cannot read frames: {exc}", dict(EMPTY_FIELDS))

    n_frames = len(media.timestamps) if sample.data_type == "video" else None
    messages = caption_messages(sample, media, cfg, prompt)
    params = caption_params(cfg, sample.data_type, n_frames)

    result = await ledger.complete(gateway, messages, params, sample.id)
    if (problem := response_problem(result)) is not None:
        return ledger.failed(problem, dict(EMPTY_FIELDS))
    # Parse the content, not the raw text: a reasoning server's <think> part is not the answer.
    answer = result.content
    description, error = parse_caption(answer, sample.data_type, n_frames)

    if description is None and cfg.repair:
        retry = repair_messages(messages, answer, error, n_frames, prompt)
        result = await ledger.complete(gateway, retry, params, sample.id)
        if (problem := response_problem(result)) is not None:
            return ledger.failed(problem, dict(EMPTY_FIELDS))
        description, error = parse_caption(result.content, sample.data_type, n_frames)

    if description is None:
        return ledger.failed(_failure_reason(error), dict(EMPTY_FIELDS))
    return ledger.ok(caption_fields(description, n_frames or 1))
