"""What a rerun will reuse, said before it starts: "resuming: 256 of 300 caption rows already done".

Computed the way the stage itself decides (curation/runner.py): a row is done when the stage's
shard file holds a result under the row's content key (failed rows do not count when
`run.retry_failed` retries them; `--from` stages count nothing). The inputs are the upstream
results in the run folder now; where the stage before has not finished a shard, that shard's
source rows stand in (the total is then marked `~`, an upper bound).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from curation.records import FAILED, OK
from curation.runner import KEY_COLUMNS, UPSTREAM, CurationContext, shard_count, stage_inputs, stage_key
from curation.store import RunStore


@dataclass
class ResumeCount:
    stage: str
    done: int
    inputs: int
    # False when some shards' inputs are not computed yet (their source rows are counted instead).
    exact: bool = True

    def line(self) -> str:
        total = f"{self.inputs}" if self.exact else f"~{self.inputs}"
        return f"resuming: {self.done} of {total} {self.stage} rows already done"


def resume_counts(ctx: CurationContext, stages: list[str]) -> list[ResumeCount]:
    """Per row stage with results in the run folder: rows whose key already has a result.

    Shard by shard on a few threads (parquet reads release the GIL), reading each file once and
    only the columns keys need: a 2,000-sample run counts in one to a few seconds."""
    store = ctx.store
    todo = [s for s in stages if s not in ctx.forced and store.shards(s)]
    if not todo:
        return []
    counts = {s: ResumeCount(s, 0, 0) for s in todo}
    workers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="resume-count") as pool:
        for per_shard in pool.map(lambda shard: _count_shard(ctx, todo, shard), range(shard_count(store))):
            for c in per_shard:
                total = counts[c.stage]
                total.done += c.done
                total.inputs += c.inputs
                total.exact = total.exact and c.exact
    return [counts[s] for s in todo]


def _count_shard(ctx: CurationContext, stages: list[str], shard: int) -> list[ResumeCount]:
    # Its own read cache: memory is one shard's rows; shares the context's prompt and key caches.
    lean = replace(ctx, store=_ReadOnce(ctx.store))
    out = []
    for stage in stages:
        if UPSTREAM[stage] != "sources" and not lean.store.has_shard(UPSTREAM[stage], shard):
            # The stage before has not finished this shard: its source rows stand in for the rows
            # that will reach this stage (an upper bound).
            sources = lean.store.read_shard("sources", shard) or []
            out.append(ResumeCount(stage, 0, sum(1 for r in sources if r.get("status") == OK), exact=False))
            continue
        items = stage_inputs(lean, stage, shard, keys_only=True)
        rows = lean.store.read_shard(stage, shard, KEY_COLUMNS) or []
        have = {r["key"] for r in rows if not (r.get("status") == FAILED and ctx.recipe.run.retry_failed)}
        done = sum(1 for it in items if stage_key(lean, stage, it) in have) if have else 0
        out.append(ResumeCount(stage, done, len(items)))
    return out


class _ReadOnce:
    """The run store, with each (stage, shard, columns) read once."""

    def __init__(self, store: RunStore) -> None:
        self._store = store
        self._memo: dict[tuple[Any, ...], Any] = {}

    def read_shard(self, stage: str, shard: int, columns: list[str] | None = None) -> Any:
        key = (stage, shard, tuple(columns) if columns else None)
        if key not in self._memo:
            self._memo[key] = self._store.read_shard(stage, shard, columns)
        return self._memo[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
