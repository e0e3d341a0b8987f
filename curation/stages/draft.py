"""Draft stage (VideoRFT stage 2): a reasoning LLM, given only the caption text, writes CoT⁽⁰⁾.

"Blind" on purpose: the request is text only (the structured description + the question), and the
cognition-inspired prompt (`prompts/draft/`) makes the model reason as if it had watched the video.
The reasoning model's thinking (`reasoning_content`, or the `<think>` part of its answer) is the
draft chain of thought; its `<answer>` is the draft answer the reviser must keep.

format_input: `draft_messages`; format_output: `parse_draft`; the row: `draft_row`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from curation.llm.gateway import ChatResult
from curation.llm.messages import Message, chat_messages
from curation.prompts import PROMPTS_ROOT, PromptSet, answer_format
from curation.records import Sample
from curation.schemas import ImageDescription, VideoDescription, summarize_validation_error
from curation.stages.llm_common import (
    LLMStageConfig,
    new_ledger,
    options_list,
    resolve_prompt,
    response_problem,
    upstream_problem,
)
from training.scoring import ANSWER_RE, extract_answer

STAGE = "draft"
STAGE_VERSION = "draft/v1"

EMPTY_FIELDS: dict[str, Any] = {"draft": "", "draft_reasoning": "", "draft_answer": ""}


class DraftConfig(LLMStageConfig):
    """Draft stage settings.

    Defaults follow DeepSeek-R1's recommended sampling (temperature 0.6, top_p 0.95); the paper
    does not report its own (videorft.md §1.2). `metadata_indent` lays out the frame-level JSON
    shown to the model (None = compact, fewer tokens).
    """

    STAGE: ClassVar[str] = STAGE
    STAGE_VERSION: ClassVar[str] = STAGE_VERSION

    role: str = "reasoner"
    prompt_dir: Path = PROMPTS_ROOT / "draft"
    temperature: float = Field(default=0.6, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(default=8192, ge=1)
    metadata_indent: int | None = Field(default=2, ge=0)

    def _key_extras(self) -> dict[str, Any]:
        return {"metadata_indent": self.metadata_indent}


# ---- format_input -------------------------------------------------------------------------------


def draft_messages(sample: Sample, caption_json: str, cfg: DraftConfig, prompt: PromptSet) -> list[Message]:
    """System + text-only user message. Raises ValueError for an unreadable caption or problem type."""
    common = {
        "question": sample.problem,
        "options": options_list(sample),
        "answer_format": answer_format(prompt, sample.problem_type),
    }
    try:
        if sample.data_type == "image":
            image = ImageDescription.model_validate_json(caption_json)
            details = json.dumps(
                image.model_dump(exclude={"caption"}), indent=cfg.metadata_indent, ensure_ascii=False
            )
            user = prompt.render(
                "user_image.jinja", image_caption=image.caption, element_details=details, **common
            )
            system = prompt.text("system_image.md").strip()
        else:
            video = VideoDescription.model_validate_json(caption_json)
            frames = json.dumps(
                [f.model_dump() for f in video.frames], indent=cfg.metadata_indent, ensure_ascii=False
            )
            user = prompt.render_user(video_caption=video.video_caption, frame_metadata=frames, **common)
            system = prompt.system
    except ValidationError as exc:
        raise ValueError(f"caption JSON unreadable: {summarize_validation_error(exc)}") from exc
    return chat_messages(system, user)


# ---- format_output ------------------------------------------------------------------------------


def parse_draft(content: str | None, reasoning_content: str | None) -> tuple[dict[str, str], str]:
    """(fields, "") or (fields, error) from the answer text and the reasoning (if split off).

    `content` is the answer with any leading `<think>` block already split into `reasoning_content`
    (the gateway does that, for R1-style output and for reasoning parsers alike). Without a
    separate reasoning, the text before the first `<answer>` is the reasoning.
    """
    content = content or ""
    answer = extract_answer(content)
    reasoning = (reasoning_content or "").strip()
    if not reasoning:
        match = ANSWER_RE.search(content)
        reasoning = (content[: match.start()] if match else content).strip()
    fields = {"draft": content, "draft_reasoning": reasoning, "draft_answer": answer}
    if not answer:
        return fields, "draft has no <answer>"
    if not reasoning:
        return fields, "draft has no reasoning"
    return fields, ""


def parse_draft_result(result: ChatResult) -> tuple[dict[str, str], str]:
    return parse_draft(result.content, result.reasoning_content)


# ---- the row ------------------------------------------------------------------------------------


async def draft_row(
    gateway: Any,
    sample: Sample,
    caption: dict[str, Any],
    cfg: DraftConfig,
    prompt: PromptSet | None = None,
) -> dict[str, Any]:
    """Draft a chain of thought from the caption text alone. Never raises for model trouble."""
    prompt = resolve_prompt(cfg, prompt)
    ledger = new_ledger(gateway, cfg, prompt)
    problem = upstream_problem(caption, "caption")
    if problem:
        return ledger.failed(problem, dict(EMPTY_FIELDS))
    try:
        messages = draft_messages(sample, caption.get("caption_json") or "", cfg, prompt)
    except (KeyError, ValueError) as exc:
        return ledger.failed(str(exc).strip("'\""), dict(EMPTY_FIELDS))

    result = await ledger.complete(gateway, messages, cfg.request_params(), sample.id)
    if (problem := response_problem(result)) is not None:
        return ledger.failed(problem, dict(EMPTY_FIELDS))
    fields, error = parse_draft_result(result)
    if error:
        return ledger.failed(error, fields)
    return ledger.ok(fields)
