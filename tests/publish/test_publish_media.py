"""Publish leaves out questions whose media did not extract, and keeps local paths out of cards."""

from __future__ import annotations

import json

from publish_fixture import build_run

from curation.publish import PublishConfig, publish_run
from curation.publish.collect import redact_paths


def test_failed_media_never_reach_the_rl_set(tmp_path):
    store, samples = build_run(tmp_path / "run")
    # The OCR question's image turned out truncated, and the decoder's message named its path.
    bad = samples["ocr_fail"]
    shard = 1
    rows = store.read_shard("extract", shard)
    for row in rows:
        if row["id"] == bad.id:
            row.update(
                status="failed",
                reason=f"truncated file: {tmp_path}/media/{bad.media_path} is cut",
                frame_paths=[],
            )
    store.write_shard("extract", shard, rows)

    result = publish_run(store, tmp_path / "out", PublishConfig(version="v1"), run_name="r", lineage={})
    assert result.rl_rows == 4  # five valid questions, one with failed media
    assert len(json.loads(result.exports["rl-train"].read_text())) == 4  # Video-R1's JSON array
    assert bad.media_path not in result.exports["rl-train"].read_text()
    card = result.cards["rl"].read_text()
    assert "truncated file: …/" in card and str(tmp_path) not in card
    assert "(1 here)" in card
    assert json.loads((result.rl_dir.parent / "publish.json").read_text())["not_published_media_failed"] == 1


def test_redact_paths_keeps_the_file_name_only():
    assert redact_paths("cannot decode: /home/u/data/x.mp4 broken") == "cannot decode: …/x.mp4 broken"
    assert redact_paths("frame 3/16 of clip a/b.mp4") == "frame 3/16 of clip a/b.mp4"  # relative: kept
    assert redact_paths("see https://example.org/a/b") == "see https://example.org/a/b"
