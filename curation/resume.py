"""What a rerun will reuse, said before it starts: "resuming: 256 of 300 caption rows already done".

Computed the way the stage itself decides (curation/runner.py): a row is done when the stage's
shard file holds a result under the row's content key (failed rows do not count when
`run.retry_failed` retries them; `--from` stages count nothing). The inputs are the upstream
results in the run folder now, so for a stage whose upstream is still incomplete the total is
what reaches it so far.
"""

from __future__ import annotations

from dataclasses import dataclass

from curation.records import FAILED
from curation.runner import CurationContext, shard_count, stage_inputs, stage_key


@dataclass
class ResumeCount:
    stage: str
    done: int
    inputs: int

    def line(self) -> str:
        return f"resuming: {self.done} of {self.inputs} {self.stage} rows already done"


def resume_counts(ctx: CurationContext, stages: list[str]) -> list[ResumeCount]:
    """Per row stage with results in the run folder: rows whose key already has a result."""
    store, out = ctx.store, []
    n = shard_count(store)
    for stage in stages:
        if stage in ctx.forced or not store.shards(stage):
            continue
        done = inputs = 0
        for shard in range(n):
            items = stage_inputs(ctx, stage, shard)
            inputs += len(items)
            rows = store.read_shard(stage, shard, columns=["key", "status"]) or []
            have = {r["key"] for r in rows if not (r.get("status") == FAILED and ctx.recipe.run.retry_failed)}
            if have:
                done += sum(1 for it in items if stage_key(ctx, stage, it) in have)
        out.append(ResumeCount(stage, done, inputs))
    return out
