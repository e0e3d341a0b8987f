"""The rerun's "resuming: N of M <stage> rows already done", counted the way the stages decide."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_resume_counts_match_what_the_rerun_reuses(tmp_path, synth_dir, sim_base_url, sim_recipe):
    from curation.resume import resume_counts
    from curation.runner import CurationContext, run_until_sync
    from curation.store import RunStore

    recipe = sim_recipe(synth_dir, sim_base_url, tmp_path / "runs", run="resume")
    recipe.run.shard_size = 8  # 24 samples: 3 shards
    store = RunStore(recipe.run_dir)
    ctx = CurationContext(recipe=recipe, store=store)
    try:
        run_until_sync(ctx, ["sources", "extract", "caption"])
        assert resume_counts(CurationContext(recipe=recipe, store=store), ["caption"])[0].line() == (
            "resuming: 24 of 24 caption rows already done"
        )
        # A run stopped while shard 1 of caption and shard 2 of extract were in flight.
        store.shard_path("caption", 1).unlink()
        store.shard_path("caption", 2).unlink()
        store.shard_path("extract", 2).unlink()
        counts = {
            c.stage: c
            for c in resume_counts(CurationContext(recipe=recipe, store=store), ["extract", "caption"])
        }
        assert counts["extract"].line() == "resuming: 16 of 24 extract rows already done"
        assert counts["caption"].line() == "resuming: 8 of ~24 caption rows already done"
        # --from caption recomputes caption: nothing counts as done there.
        forced = CurationContext(recipe=recipe, store=store, forced={"caption"})
        assert [c.stage for c in resume_counts(forced, ["extract", "caption"])] == ["extract"]
        rerun = run_until_sync(CurationContext(recipe=recipe, store=store), ["extract", "caption"])
        assert (rerun["extract"].reused, rerun["caption"].reused) == (16, 8)
    finally:
        ctx.close()
