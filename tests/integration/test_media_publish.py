"""A curate run over a folder with the bad files users have publishes no row whose media cannot be
loaded: the RL set holds only questions whose media extracted, the card says why the rest are out,
and no reason carries a local absolute path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from curation.sources.synthetic import generate
from flows.curate import run_curate
from sim_endpoint.server import SimConfig, running_sim_server
from tests.video.media_makers import write_audio_only

pytestmark = pytest.mark.integration


def _add_bad_media(synth: Path, outside: Path) -> dict[str, str]:
    """Bad files next to the good ones, each with a question in the annotation file."""
    videos = synth / "videos"
    good = sorted(videos.glob("*.mp4"))[0]
    data = good.read_bytes()
    (videos / "zero.mp4").write_bytes(b"")
    (videos / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (videos / "page.mp4").write_text("<html>404 Not Found</html>\n")
    write_audio_only(videos / "audio_only.mp4")
    outside.mkdir()
    (outside / "private.mp4").write_bytes(data)
    os.symlink(outside / "private.mp4", videos / "link.mp4")
    expected = {
        "videos/zero.mp4": "zero-byte file",
        "videos/truncated.mp4": "truncated file",
        "videos/page.mp4": "not a video",
        "videos/audio_only.mp4": "no video stream",
        "videos/missing.mp4": "file not found",
        "videos/link.mp4": "media path resolves outside the media root through a symlink",
    }
    with open(synth / "annotations.jsonl", "a") as fh:
        for i, media_path in enumerate(expected):
            row = {
                "media_path": media_path,
                "data_type": "video",
                "problem": f"How many squares are in bad clip {i}?",
                "problem_type": "numerical",
                "solution": "3",
                "data_source": "user-folder",
            }
            fh.write(json.dumps(row) + "\n")
    return expected


def test_a_folder_with_bad_files_publishes_only_loadable_media(tmp_path, sim_recipe):
    from training.data import load_rows
    from training.video_io import MediaLoader

    synth = tmp_path / "S"
    generate(synth, 6, seed=5)
    expected = _add_bad_media(synth, tmp_path / "outside")
    cfg = SimConfig(annotations=[str(synth / "annotations.jsonl")], latency_s=0.0, jitter_s=0.0)
    with running_sim_server(cfg) as url:
        recipe = sim_recipe(synth, url, tmp_path / "runs", run="bad-media")
        manifest = run_curate(recipe=recipe)
    published = manifest["publish"]
    rl_dir, cot_dir = Path(published["rl_dir"]), Path(published["cot_dir"])

    rl = load_rows(rl_dir, "train")
    assert len(rl) == 6  # the six good questions; none of the bad ones
    assert not set(rl["media_path"]) & set(expected)
    loader = MediaLoader(synth)
    for row in rl:  # every published row loads in training
        loader.clip(row["media_path"])
    assert not set(load_rows(cot_dir, "train")["media_path"]) & set(expected)

    card = (rl_dir / "README.md").read_text()
    for reason in expected.values():
        assert reason in card, reason
    assert "(5 here)" in card  # the card counts what media failures left out
    publish_json = json.loads((rl_dir.parent / "publish.json").read_text())
    assert publish_json["not_published_media_failed"] == 5  # the symlink was rejected at sources
    for text in (card, (cot_dir / "README.md").read_text(), json.dumps(publish_json)):
        assert str(tmp_path) not in text  # no local absolute path, not even the symlink's target
    for export in [*rl_dir.glob("videor1/*.jsonl"), *cot_dir.glob("videor1/*.jsonl")]:
        assert str(tmp_path) not in export.read_text()
