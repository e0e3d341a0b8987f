"""What every filter step shares: the verdict, the step base class and per-step statistics.

datatrove's shape: a step is a small class with a `name`, its config slice, and `filter(row)`
returning keep/drop with a reason; `filter_batch(rows)` is overridden where batching pays (the text
encoder). Each step counts what it kept and, per reason, what it dropped.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel


@dataclass
class Verdict:
    """One step's judgement of one row. `reason` is a short category ("" when kept): it is what the
    stats and the manifest group by, so details (scores, matched text) go in `scores`."""

    keep: bool
    reason: str = ""
    scores: dict[str, Any] = field(default_factory=dict)
    # True when the step raised instead of judging: the row is `failed` (retried on a rerun).
    error: bool = False

    @classmethod
    def ok(cls, **scores: Any) -> Verdict:
        return cls(True, "", scores)

    @classmethod
    def drop(cls, reason: str, **scores: Any) -> Verdict:
        return cls(False, reason, scores)


@dataclass
class StepStats:
    """Counts of one step over the rows it saw (a shard, or a run after `merge`)."""

    name: str
    seen: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    errors: int = 0

    def count(self, verdict: Verdict) -> None:
        self.seen += 1
        if verdict.error:
            self.errors += 1
        elif verdict.keep:
            self.kept += 1
        else:
            self.dropped[verdict.reason] = self.dropped.get(verdict.reason, 0) + 1

    def merge(self, other: StepStats) -> None:
        self.seen += other.seen
        self.kept += other.kept
        self.errors += other.errors
        for reason, n in other.dropped.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {"seen": self.seen, "kept": self.kept, "dropped": dict(self.dropped), "errors": self.errors}


@dataclass
class FilterStats:
    """Per-step counts plus the row outcome (first failing step decides the row's reason)."""

    steps: dict[str, StepStats] = field(default_factory=dict)
    rows: int = 0
    ok: int = 0
    rejected: int = 0
    failed: int = 0
    # step -> rows whose reason is this step (the step that "owns" the rejection).
    first_failure: dict[str, int] = field(default_factory=dict)

    def step(self, name: str) -> StepStats:
        if name not in self.steps:
            self.steps[name] = StepStats(name)
        return self.steps[name]

    def merge(self, other: FilterStats) -> None:
        for name, st in other.steps.items():
            self.step(name).merge(st)
        self.rows += other.rows
        self.ok += other.ok
        self.rejected += other.rejected
        self.failed += other.failed
        for name, n in other.first_failure.items():
            self.first_failure[name] = self.first_failure.get(name, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ok": self.ok,
            "rejected": self.rejected,
            "failed": self.failed,
            "first_failure": dict(self.first_failure),
            "steps": {name: st.to_dict() for name, st in self.steps.items()},
        }


class FilterStep(ABC):
    """Base of the per-row filter steps. Subclasses set `name` and implement `filter`."""

    name: ClassVar[str]

    def __init__(self, config: BaseModel):
        self.config = config
        self.stats = StepStats(self.name)

    @abstractmethod
    def filter(self, row: dict[str, Any]) -> Verdict:
        """Judge one row (a dict of the Sample fields plus `process`, `answer`, `draft`)."""

    def filter_batch(self, rows: Sequence[dict[str, Any]]) -> list[Verdict]:
        """Judge a batch; override where one call for many rows is cheaper (model inference)."""
        return [self.filter(row) for row in rows]


# ------------------------------------------------------------------------------------------------
# Text helpers shared by the steps (and by publish, which reports CoT lengths the same way).
# ------------------------------------------------------------------------------------------------

_TAG_RE = re.compile(r"</?(?:think|answer)>")
_REGEX_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def think_text(process: str | None) -> str:
    """The CoT body: `process` with its <think>/<answer> tags removed, stripped."""
    return _TAG_RE.sub(" ", process or "").strip()


def count_tokens(text: str, unit: str = "regex") -> int:
    """Token count used by the length filter and the data card.

    "regex": words and single punctuation marks (`\\w+|[^\\w\\s]`); "whitespace": words.
    """
    if unit == "whitespace":
        return len(text.split())
    if unit == "regex":
        return len(_REGEX_TOKEN_RE.findall(text))
    raise ValueError(f"unknown token unit {unit!r}")


def published_text(process: str | None, answer: str | None) -> str:
    """Exactly what the SFT target will be: `process + "\\n<answer>" + answer + "</answer>"`."""
    return f"{process or ''}\n<answer>{answer or ''}</answer>"
