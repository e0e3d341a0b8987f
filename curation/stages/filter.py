"""The filter stage's pure shard function: joined rows in, one verdict row per input out.

The runner joins each sample (`Sample.to_row()`) with its revise row (`process`, `answer`) and draft
(`draft`), calls `filter_shard` once per shard, and adds `key` to every row. Near-duplicate questions
are removed earlier, in the sources stage (`curation.filters.dedup.DedupIndex`): that step needs the
whole run, and catching duplicates before the LLM stages saves their requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curation.filters import FilterStats, FilterStep, run_filters
from curation.filters.config import FilterConfig

# Columns the filters read from each input row.
INPUT_COLUMNS: tuple[str, ...] = (
    "id",
    "media_path",
    "data_type",
    "problem",
    "options",
    "solution",
    "problem_type",
    "data_source",
    "meta",
    "process",
    "answer",
    "draft",
)
# Columns of each output row (the runner adds `key`).
OUTPUT_COLUMNS: tuple[str, ...] = ("id", "status", "reason", "scores", "verdicts")


def join_filter_input(
    sample_row: dict[str, Any], revise_row: dict[str, Any], draft_row: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One filter input row from a sources row and its revise (and draft) rows."""
    row = {k: sample_row.get(k) for k in INPUT_COLUMNS[:9]}
    row["process"] = revise_row.get("process")
    row["answer"] = revise_row.get("answer")
    row["draft"] = (draft_row or {}).get("draft", revise_row.get("draft"))
    return row


def filter_shard(
    rows: Sequence[dict[str, Any]],
    cfg: FilterConfig,
    *,
    stats: FilterStats | None = None,
    steps: list[FilterStep] | None = None,
) -> list[dict[str, Any]]:
    """Judge one shard: `[{id, status, reason, scores, verdicts}]`, same order as `rows`."""
    return run_filters(rows, cfg, stats=stats, steps=steps)
