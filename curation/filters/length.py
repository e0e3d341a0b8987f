"""Length: the <think> body's token count within [min_tokens, max_tokens].

Too short is not reasoning (a one-line "The answer is B."); too long is usually a loop or a rambling
draft the revision did not tighten. Tokens are counted by `count_tokens` (see `LengthConfig` for the
unit); the data card reports the published distribution with the same function.
"""

from __future__ import annotations

from typing import Any

from curation.filters.base import FilterStep, Verdict, count_tokens, think_text
from curation.filters.config import LengthConfig


class LengthFilter(FilterStep):
    name = "length"

    def __init__(self, config: LengthConfig):
        super().__init__(config)
        self.config: LengthConfig = config

    def filter(self, row: dict[str, Any]) -> Verdict:
        tokens = count_tokens(think_text(row.get("process")), self.config.unit)
        if tokens < self.config.min_tokens:
            return Verdict.drop(f"too short (< {self.config.min_tokens} tokens)", tokens=tokens)
        if tokens > self.config.max_tokens:
            return Verdict.drop(f"too long (> {self.config.max_tokens} tokens)", tokens=tokens)
        return Verdict.ok(tokens=tokens)
