"""Questions on one media file land in one shard, so a file is decoded once per run."""

from __future__ import annotations

import json

from curation.runner import CurationContext, media_grouped_shards, run_sources
from curation.store import RunStore


def test_groups_are_never_split_unless_bigger_than_a_shard():
    groups = [
        [("a", i) for i in range(2)],
        [("b", 0)],
        [("c", i) for i in range(3)],
        [("d", i) for i in range(5)],
    ]
    shards = list(media_grouped_shards(groups, 3))
    assert [len(s) for s in shards] == [3, 3, 3, 2]
    assert shards[0] == groups[0] + groups[1] and shards[1] == groups[2]
    assert sorted(shards[2] + shards[3]) == groups[3]  # only d, bigger than a shard, spans two
    assert [r for s in shards for r in s] == [r for g in groups for r in g]


def test_run_sources_puts_every_question_on_a_video_in_one_shard(tmp_path, synth_dir, sim_recipe):
    lines = (synth_dir / "annotations.jsonl").read_text().splitlines()[:6]
    rows = []
    for k, wording in enumerate(
        ("What happens first?", "Which colour is the ball at the end?", "Count them.")
    ):
        for line in lines:  # interleaved: every video's questions are far apart in the file
            rec = json.loads(line)
            rec["problem"] = f"{wording} ({k})"
            rows.append(json.dumps(rec))
    ann = tmp_path / "ann.jsonl"
    ann.write_text("\n".join(rows) + "\n")
    recipe = sim_recipe(
        synth_dir,
        "http://127.0.0.1:9/v1",
        tmp_path / "runs",
        source={"path": str(ann)},
        filters={"dedup": {"enabled": False}},
    )
    recipe.run.shard_size = 4
    store = RunStore(recipe.run_dir)
    stats = run_sources(CurationContext(recipe=recipe, store=store))
    assert stats.ok == 18
    shard_of: dict[str, set[int]] = {}
    for shard in store.shards("sources"):
        for row in store.read_shard("sources", shard):
            shard_of.setdefault(row["media_path"], set()).add(shard)
    assert len(shard_of) == 6 and all(len(s) == 1 for s in shard_of.values()), shard_of
