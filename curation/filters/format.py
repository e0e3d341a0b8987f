"""Format: the published text is exactly one `<think>…</think>` then one `<answer>…</answer>`.

The published SFT target is `process + "\\n<answer>" + answer + "</answer>"`. It must match the
GRPO format reward's pattern (`<think>.*?</think>\\s*<answer>.*?</answer>`, full match), so SFT
never teaches a shape the format reward then punishes: no text before <think>, between the blocks
or after </answer>, one of each tag, and a non-empty think and answer.
"""

from __future__ import annotations

import re
from typing import Any

from curation.filters.base import FilterStep, Verdict, published_text
from curation.filters.config import FormatConfig

_FULL_RE = re.compile(r"<think>(.*?)</think>\s*<answer>(.*?)</answer>", re.DOTALL)
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


class FormatFilter(FilterStep):
    name = "format"

    def __init__(self, config: FormatConfig):
        super().__init__(config)

    def filter(self, row: dict[str, Any]) -> Verdict:
        process = row.get("process")
        if not isinstance(process, str) or not process.strip():
            return Verdict.drop("missing process")
        text = published_text(process, row.get("answer"))
        counts = {tag: text.count(tag) for tag in _TAGS}
        scores = {"think_tags": counts["<think>"], "answer_tags": counts["<answer>"]}
        if counts["<think>"] == 0 or counts["</think>"] == 0:
            return Verdict.drop("no <think> block", **scores)
        if counts["<think>"] > 1 or counts["</think>"] > 1:
            return Verdict.drop("several <think> blocks", **scores)
        if counts["<answer>"] > 1 or counts["</answer>"] > 1:
            # Only the answer column adds a pair: more means the CoT (or the answer) carries its own.
            return Verdict.drop("several <answer> blocks", **scores)
        match = _FULL_RE.fullmatch(text)
        if match is None:
            return Verdict.drop("text outside tags", **scores)
        if not match.group(1).strip():
            return Verdict.drop("empty <think>", **scores)
        if not match.group(2).strip():
            return Verdict.drop("empty answer", **scores)
        return Verdict.ok(**scores)
