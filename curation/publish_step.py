"""The publish stage of a curate run: the run store's kept rows → versioned datasets + cards."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from curation.provenance import run_provenance
from curation.runner import LLM_STAGES
from curation.store import StageStats

if TYPE_CHECKING:
    from curation.runner import CurationContext


def run_publish(ctx: CurationContext) -> StageStats:
    from curation.publish import publish_run

    recipe, store = ctx.recipe, ctx.store
    started = time.time()
    header = store.manifest.data
    # What each stage asked for and what answered (finalize_stage put it in the manifest).
    prov = run_provenance(header.get("stages") or {})
    lineage = {
        "run_name": recipe.run.name,
        "config_hash": header.get("config_hash"),
        "prompt_hashes": {stage: ctx.prompt(stage).hash for stage in LLM_STAGES},
        "models": {
            stage: {
                "requested": ctx.model_for(stage),
                "served": prov["models"].get(stage, {}).get("served", []),
            }
            for stage in LLM_STAGES
        },
        "simulated": prov["simulated"],
    }
    result = publish_run(
        store, recipe.publish.out_dir, recipe.publish, run_name=recipe.run.name, lineage=lineage
    )
    stats = StageStats("publish", started=started, ended=time.time())
    stats.in_ = stats.ok = result.cot_rows
    stats.seconds = stats.ended - started
    store.manifest.update(publish=result.to_dict())
    store.manifest.set_stage(stats, rl_rows=result.rl_rows, version=result.version)
    return stats
