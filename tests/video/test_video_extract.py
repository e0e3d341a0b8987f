"""The extract stage: rows per docs/CONTRACTS.md, frames on disk, safety, shard order."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curation.records import Sample, sample_id, stable_hash
from curation.stages.extract import extract_sample, extract_shard
from curation.video import VideoConfig

ROW_COLUMNS = {
    "id", "status", "reason", "duration", "fps", "frame_count", "width", "height", "codec", "reader",
    "frame_paths", "timestamps", "frame_indices", "frame_width", "frame_height",
}  # fmt: skip


def make_sample(media_path: str, data_type: str = "video", sid: str | None = None) -> Sample:
    return Sample(
        id=sid or sample_id("test", media_path, "What happens?"),
        media_path=media_path,
        data_type=data_type,
        problem="What happens?",
        solution="something",
        problem_type="free-form",
        data_source="test",
    )


@pytest.fixture
def media_root(tmp_path: Path, clip: Path, hd_clip: Path, image_file: Path, bad_media) -> Path:
    root = tmp_path / "media"
    (root / "sub").mkdir(parents=True)
    shutil.copy(clip, root / "sub" / "clip.mp4")
    shutil.copy(hd_clip, root / "hd.mp4")
    shutil.copy(image_file, root / "still.png")
    shutil.copy(bad_media["truncated"], root / "truncated.mp4")
    return root


def test_ok_row_and_frames_on_disk(media_root: Path, tmp_path: Path, frame_no):
    run_dir = tmp_path / "run"
    sample = make_sample("sub/clip.mp4")
    row = extract_sample(sample, media_root, run_dir, VideoConfig())
    assert set(row) == ROW_COLUMNS
    assert row["status"] == "ok" and row["reason"] == "" and row["id"] == sample.id
    assert (row["frame_count"], row["fps"], row["width"], row["height"]) == (40, 10.0, 320, 240)
    assert row["duration"] == pytest.approx(4.0) and row["codec"] == "mpeg4" and row["reader"] == "decord"
    variant = stable_hash(VideoConfig().content_slice(), length=8)
    folder = row["frame_paths"][0].rsplit("/", 1)[0]
    assert folder.startswith("frames/") and folder.endswith(f"/{variant}")
    assert row["frame_paths"] == [f"{folder}/{i:03d}.jpg" for i in range(16)]
    assert len(row["timestamps"]) == 16 and row["timestamps"] == sorted(row["timestamps"])
    for rel, index in zip(row["frame_paths"], row["frame_indices"], strict=True):
        image = np.asarray(Image.open(run_dir / rel))
        assert image.shape == (280, 392, 3)  # Qwen's smart_resize of 320x240 at min = max = 128*28*28
        assert frame_no(image) == index  # the stored JPEG is the frame the row says
    leftovers = [p.name for p in (run_dir / folder).iterdir() if not p.name.endswith(".jpg")]
    assert leftovers == ["facts.json"]  # no temp files; the marker of a complete folder


def test_hd_video_frames_are_stored_within_budget(media_root: Path, tmp_path: Path):
    row = extract_sample(make_sample("hd.mp4"), media_root, tmp_path, VideoConfig(num_frames=4))
    assert (row["width"], row["height"]) == (1280, 720)
    assert (row["frame_width"], row["frame_height"]) == (420, 224)
    assert Image.open(tmp_path / row["frame_paths"][0]).size == (420, 224)


def test_image_sample_is_one_frame(media_root: Path, tmp_path: Path):
    row = extract_sample(make_sample("still.png", "image"), media_root, tmp_path, VideoConfig())
    assert row["status"] == "ok" and row["reader"] == "pillow"
    assert row["timestamps"] == [0.0] and len(row["frame_paths"]) == 1


@pytest.mark.parametrize(
    ("media_path", "reason"),
    [
        ("../outside.mp4", "media path escapes the media root"),
        ("/etc/passwd", "media path escapes the media root"),
        ("sub/../../x.mp4", "media path escapes the media root"),
        ("", "empty or invalid media path"),
    ],
)
def test_paths_outside_the_media_root_are_refused(
    media_root: Path, tmp_path: Path, media_path: str, reason: str
):
    row = extract_sample(make_sample(media_path, sid="abc"), media_root, tmp_path, VideoConfig())
    assert (row["status"], row["reason"]) == ("failed", reason)


def test_symlink_out_of_the_media_root_is_refused(media_root: Path, tmp_path: Path, clip: Path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(clip, outside / "secret.mp4")
    (media_root / "link.mp4").symlink_to(outside / "secret.mp4")
    row = extract_sample(make_sample("link.mp4"), media_root, tmp_path, VideoConfig())
    assert row["reason"] == "media path escapes the media root"


def test_unsafe_sample_id_is_refused(media_root: Path, tmp_path: Path):
    row = extract_sample(make_sample("sub/clip.mp4", sid="../../x"), media_root, tmp_path, VideoConfig())
    assert row["status"] == "failed" and row["reason"].startswith("unsafe sample id")


def test_shard_keeps_order_and_isolates_failures(media_root: Path, tmp_path: Path):
    samples = [
        make_sample("sub/clip.mp4"),
        make_sample("truncated.mp4"),
        make_sample("nope.mp4"),
        make_sample("still.png", "image"),
        make_sample("hd.mp4"),
    ]
    rows = extract_shard(samples, media_root, tmp_path, VideoConfig(workers=3, num_frames=4))
    assert [r["id"] for r in rows] == [s.id for s in samples]
    assert [r["status"] for r in rows] == ["ok", "failed", "failed", "ok", "ok"]
    assert rows[2]["reason"] == "file not found"


def test_rerun_rewrites_the_same_frames(media_root: Path, tmp_path: Path):
    sample = make_sample("sub/clip.mp4")
    first = extract_sample(sample, media_root, tmp_path, VideoConfig(num_frames=4))
    before = [(tmp_path / p).read_bytes() for p in first["frame_paths"]]
    second = extract_sample(sample, media_root, tmp_path, VideoConfig(num_frames=4))
    assert second == first
    assert [(tmp_path / p).read_bytes() for p in second["frame_paths"]] == before


def test_other_video_config_writes_other_frame_folder(media_root: Path, tmp_path: Path):
    """Rows kept under the old config must keep pointing at the old config's frames."""
    run_dir = tmp_path / "run"
    sample = make_sample("sub/clip.mp4")
    a = extract_sample(sample, media_root, run_dir, VideoConfig())
    b = extract_sample(sample, media_root, run_dir, VideoConfig(num_frames=4))
    assert len(b["frame_paths"]) == 4
    assert set(a["frame_paths"]).isdisjoint(b["frame_paths"])
    assert all((run_dir / p).is_file() for p in a["frame_paths"] + b["frame_paths"])


def test_questions_on_one_video_share_one_decode_and_one_folder(
    media_root: Path, tmp_path: Path, monkeypatch
):
    """Many questions on one file: decoded once (also on a rerun), frames stored once."""
    import curation.stages.extract as extract

    decodes = []
    real = extract.sample_frames
    monkeypatch.setattr(extract, "sample_frames", lambda *a, **k: decodes.append(a[0]) or real(*a, **k))
    samples = [make_sample("sub/clip.mp4", sid=f"q{i}") for i in range(6)] + [make_sample("hd.mp4")]
    cfg = VideoConfig(workers=3, num_frames=4)
    rows = extract_shard(samples, media_root, tmp_path, cfg)
    assert len(decodes) == 2
    assert {tuple(r["frame_paths"]) for r in rows[:6]} == {tuple(rows[0]["frame_paths"])}
    assert rows[6]["frame_paths"] != rows[0]["frame_paths"]
    assert len(list((tmp_path / "frames").iterdir())) == 2
    assert extract_shard(samples, media_root, tmp_path, cfg) == rows and len(decodes) == 2


def test_edited_video_or_lost_frames_are_decoded_again(media_root: Path, tmp_path: Path):
    sample = make_sample("sub/clip.mp4")
    cfg = VideoConfig(num_frames=4)
    first = extract_sample(sample, media_root, tmp_path, cfg)
    (tmp_path / first["frame_paths"][2]).unlink()  # a frame lost (disk cleanup, partial copy)
    again = extract_sample(sample, media_root, tmp_path, cfg)
    assert again == first and (tmp_path / first["frame_paths"][2]).is_file()
    shutil.copy(media_root / "hd.mp4", media_root / "sub" / "clip.mp4")  # the file is replaced
    edited = extract_sample(sample, media_root, tmp_path, cfg)
    assert (edited["width"], edited["height"]) == (1280, 720)
    assert set(edited["frame_paths"]).isdisjoint(first["frame_paths"])
