"""What a rerun will reuse, said before it starts: "resuming: 256 of 300 caption rows already done".

Computed the way the stage itself decides (curation/runner.py): a row is done when the stage's
shard file holds a result under the row's content key (failed rows do not count when
`run.retry_failed` retries them; `--from` stages count nothing). The inputs are the upstream
results in the run folder now; where the stage before has not finished a shard, that shard's
source rows stand in (the total is then marked `~`, an upper bound).
"""

from __future__ import annotations

from dataclasses import dataclass

from curation.records import FAILED, OK
from curation.runner import UPSTREAM, CurationContext, shard_count, stage_inputs, stage_key


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
    """Per row stage with results in the run folder: rows whose key already has a result."""
    store, out = ctx.store, []
    n = shard_count(store)
    for stage in stages:
        if stage in ctx.forced or not store.shards(stage):
            continue
        done = inputs = 0
        exact = True
        for shard in range(n):
            items = stage_inputs(ctx, stage, shard)
            if UPSTREAM[stage] != "sources" and not store.has_shard(UPSTREAM[stage], shard):
                # The stage before has not finished this shard: its source rows stand in for the
                # rows that will reach this stage (an upper bound).
                exact = False
                sources = store.read_shard("sources", shard, columns=["status"]) or []
                inputs += sum(1 for r in sources if r.get("status") == OK)
                continue
            inputs += len(items)
            rows = store.read_shard(stage, shard, columns=["key", "status"]) or []
            have = {r["key"] for r in rows if not (r.get("status") == FAILED and ctx.recipe.run.retry_failed)}
            if have:
                done += sum(1 for it in items if stage_key(ctx, stage, it) in have)
        out.append(ResumeCount(stage, done, inputs, exact))
    return out
