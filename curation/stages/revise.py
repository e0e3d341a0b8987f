"""Revise stage (VideoRFT stage 3): a VLM that sees the frames checks and repairs the draft CoT.

The reviser gets the media, the question and the draft reasoning with its answer; it fixes only the
steps that contradict the video, turns text-based references into visual observations, blurs exact
timestamps into broad temporal phrases, keeps the conclusion, and answers only
`<think>…</think>`. The row's `process` is exactly that block (Video-R1's `process` column), and
`answer` is the draft's answer unless the reviser added an `<answer>` of its own.

format_input: `revise_messages`; format_output: `parse_revision`; the row: `revise_row`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from curation.llm.messages import Message, chat_messages
from curation.prompts import PROMPTS_ROOT, PromptSet
from curation.records import Sample
from curation.stages.llm_common import (
    FramesConfig,
    LLMStageConfig,
    Media,
    build_media,
    message_content,
    new_ledger,
    options_list,
    resolve_prompt,
    response_problem,
    upstream_problem,
)
from training.scoring import extract_answer

STAGE = "revise"
STAGE_VERSION = "revise/v1"

EMPTY_FIELDS: dict[str, Any] = {"process": "", "answer": "", "revision": ""}

_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)


class ReviseConfig(LLMStageConfig, FramesConfig):
    """Revise stage settings (frames are sent like the caption stage's, see `FramesConfig`)."""

    STAGE: ClassVar[str] = STAGE
    STAGE_VERSION: ClassVar[str] = STAGE_VERSION

    role: str = "reviser"
    prompt_dir: Path = PROMPTS_ROOT / "revise"
    # Low: the reviser should edit conservatively, not rewrite creatively.
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    max_tokens: int = Field(default=4096, ge=1)

    def _key_extras(self) -> dict[str, Any]:
        return self.frames_key()


# ---- format_input -------------------------------------------------------------------------------


def revise_messages(sample: Sample, media: Media, draft: dict[str, Any], prompt: PromptSet) -> list[Message]:
    """System + user message: media parts first, then question, draft reasoning and draft answer."""
    system_file, user_file = (
        ("system_image.md", "user_image.jinja")
        if sample.data_type == "image"
        else ("system.md", "user.jinja")
    )
    user = prompt.render(
        user_file,
        question=sample.problem,
        options=options_list(sample),
        draft_reasoning=draft.get("draft_reasoning") or "",
        draft_answer=draft.get("draft_answer") or "",
    )
    return chat_messages(prompt.text(system_file).strip(), user, media.parts)


# ---- format_output ------------------------------------------------------------------------------


def parse_revision(text: str | None, draft_answer: str) -> tuple[dict[str, str], str]:
    """(fields, "") or (fields, error) from the reviser's full answer text.

    `process` is the first `<think>…</think>` block, normalised to exactly `<think>{stripped}</think>`;
    an answer whose opening tag was part of the prompt (only `</think>` present) counts too.
    `answer` is an `<answer>` after the block, else the draft's.
    """
    text = text or ""
    fields = {"process": "", "answer": draft_answer, "revision": text}
    match = _THINK_RE.search(text)
    if match:
        inner, rest = match.group(1), text[match.end() :]
    elif "</think>" in text and "<think>" not in text:
        inner, _, rest = text.partition("</think>")
    else:
        return fields, "revision has no <think> block"
    inner = inner.strip()
    if not inner:
        return fields, "revision has an empty <think> block"
    fields["process"] = f"<think>{inner}</think>"
    fields["answer"] = extract_answer(rest) or draft_answer
    return fields, ""


# ---- the row ------------------------------------------------------------------------------------


async def revise_row(
    gateway: Any,
    sample: Sample,
    extract: dict[str, Any],
    draft: dict[str, Any],
    run_dir: Path,
    cfg: ReviseConfig,
    prompt: PromptSet | None = None,
) -> dict[str, Any]:
    """Revise one draft against the media. Never raises for model, endpoint or media-file trouble."""
    prompt = resolve_prompt(cfg, prompt)
    ledger = new_ledger(gateway, cfg, prompt)
    problem = upstream_problem(extract, "extract") or upstream_problem(draft, "draft")
    if problem:
        return ledger.failed(problem, dict(EMPTY_FIELDS))
    draft_answer = draft.get("draft_answer") or ""
    try:
        media = build_media(sample, extract, Path(run_dir), cfg)
    except (OSError, ValueError) as exc:
        return ledger.failed(f"cannot read frames: {exc}", dict(EMPTY_FIELDS))

    messages = revise_messages(sample, media, draft, prompt)
    result = await ledger.complete(gateway, messages, cfg.request_params(), sample.id)
    if (problem := response_problem(result)) is not None:
        return ledger.failed(problem, {**EMPTY_FIELDS, "answer": draft_answer})
    # The block the reviser wrote, from the message itself; a reasoning server's private thinking
    # (a separate field) is used only when the content has no <think> block at all.
    text = message_content(result)
    if "</think>" not in text:
        text = ledger.raws[-1]
    fields, error = parse_revision(text, draft_answer)
    if error:
        return ledger.failed(error, fields)
    return ledger.ok(fields)
