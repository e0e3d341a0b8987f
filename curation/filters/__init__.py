"""Quality filters for curated CoT rows: one step per file, a registry, and `run_filters`.

Input row: the Sample fields (id, media_path, data_type, problem, options, solution (bare ground
truth), problem_type, data_source, meta) joined with the revise row's `process` ("<think>…</think>"),
`answer` (bare) and the draft's `draft`.

Output row (one per input, same order): `id`, `status` ("ok" | "rejected" | "failed"), `reason`
("<step>: <detail>" of the first failing step in `FilterConfig.order`, "" when ok), `scores` (JSON
string: step -> that step's scores) and `verdicts` (JSON string: step -> {"kept", "reason"}). Every
step runs on every row, so a report can show all verdicts, not just the first.

`dedup` is not in here: it needs the whole run (see `curation.filters.dedup`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from curation.filters.answer_correctness import AnswerCorrectnessFilter
from curation.filters.base import FilterStats, FilterStep, StepStats, Verdict, count_tokens, think_text
from curation.filters.config import DEFAULT_ORDER, FilterConfig
from curation.filters.dedup import DedupIndex, dedup_questions, normalize_text
from curation.filters.format import FormatFilter
from curation.filters.leakage import LEAK_PATTERNS, LeakageFilter
from curation.filters.length import LengthFilter
from curation.filters.open_ended_agreement import OpenEndedAgreementFilter
from curation.filters.repetition import RepetitionFilter
from curation.records import FAILED, OK, REJECTED

log = logging.getLogger(__name__)

# name -> step class; the name is also the FilterConfig attribute holding the step's slice.
FILTERS: dict[str, type[FilterStep]] = {
    cls.name: cls
    for cls in (
        FormatFilter,
        AnswerCorrectnessFilter,
        OpenEndedAgreementFilter,
        LeakageFilter,
        RepetitionFilter,
        LengthFilter,
    )
}
assert set(FILTERS) == set(DEFAULT_ORDER), "registry and FilterConfig disagree"


def build_steps(cfg: FilterConfig, overrides: dict[str, FilterStep] | None = None) -> list[FilterStep]:
    """The enabled steps, in order. `overrides` replaces a step by name (tests inject fakes)."""
    overrides = overrides or {}
    return [overrides.get(name) or FILTERS[name](getattr(cfg, name)) for name in cfg.enabled_steps()]


def _judge(step: FilterStep, rows: Sequence[dict[str, Any]]) -> list[Verdict]:
    """Run one step over the rows. A step that raises fails only the rows it raised on: the batch
    is retried row by row, and each error is logged and recorded (never turned into a silent keep)."""
    try:
        verdicts = step.filter_batch(rows)
        if len(verdicts) != len(rows):
            raise RuntimeError(f"{step.name} returned {len(verdicts)} verdicts for {len(rows)} rows")
        return verdicts
    except Exception:  # noqa: BLE001 - narrowed below, row by row
        if len(rows) > 1:
            log.warning("filter step %s failed on a batch of %d; retrying row by row", step.name, len(rows))
    out = []
    for row in rows:
        try:
            out.append(step.filter(row))
        except Exception as err:  # noqa: BLE001 - recorded on the row as a failure
            log.exception("filter step %s failed on row %s", step.name, row.get("id"))
            out.append(Verdict(False, f"error: {type(err).__name__}: {err}", {}, error=True))
    return out


def run_filters(
    rows: Sequence[dict[str, Any]],
    cfg: FilterConfig,
    *,
    stats: FilterStats | None = None,
    steps: list[FilterStep] | None = None,
) -> list[dict[str, Any]]:
    """Judge every row with every enabled step; one output row per input row, same order.

    `stats`, when given, accumulates per-step kept/dropped-per-reason counts and the row outcomes.
    `steps` overrides `build_steps(cfg)` (to reuse built steps across shards, or inject fakes).
    """
    rows = list(rows)
    steps = steps if steps is not None else build_steps(cfg)
    per_step = [(step.name, _judge(step, rows)) for step in steps]
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        scores: dict[str, Any] = {}
        verdicts: dict[str, Any] = {}
        first_reject: str | None = None
        first_error: str | None = None
        for name, step_verdicts in per_step:
            v = step_verdicts[i]
            scores[name] = v.scores
            verdicts[name] = {"kept": v.keep, "reason": v.reason}
            if v.error and first_error is None:
                first_error = f"{name}: {v.reason}"
            elif not v.keep and not v.error and first_reject is None:
                first_reject = f"{name}: {v.reason}"
            if stats is not None:
                stats.step(name).count(v)
        # A step error makes the verdict set incomplete: the row is failed (retried on a rerun)
        # even if another step rejected it, because that rejection may not be its first reason.
        if first_error is not None:
            status, reason = FAILED, first_error
        elif first_reject is not None:
            status, reason = REJECTED, first_reject
        else:
            status, reason = OK, ""
        if stats is not None:
            stats.rows += 1
            if status == OK:
                stats.ok += 1
            else:
                stats.rejected += status == REJECTED
                stats.failed += status == FAILED
                owner = reason.split(":", 1)[0]
                stats.first_failure[owner] = stats.first_failure.get(owner, 0) + 1
        out.append(
            {
                "id": row.get("id"),
                "status": status,
                "reason": reason,
                "scores": json.dumps(scores, ensure_ascii=False),
                "verdicts": json.dumps(verdicts, ensure_ascii=False),
            }
        )
    return out


__all__ = [
    "FILTERS",
    "LEAK_PATTERNS",
    "DedupIndex",
    "FilterConfig",
    "FilterStats",
    "FilterStep",
    "StepStats",
    "Verdict",
    "build_steps",
    "count_tokens",
    "dedup_questions",
    "normalize_text",
    "run_filters",
    "think_text",
]
