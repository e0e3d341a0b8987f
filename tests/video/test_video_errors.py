"""Bad media give a specific reason, for every decoder, and never an exception from the stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.records import Sample
from curation.stages.extract import extract_sample
from curation.video import VideoConfig, VideoError, probe, sample_frames
from curation.video.errors import UNDECODABLE
from curation.video.readers import VIDEO_READERS
from curation.video.readers.base import OpenVideo

EXPECTED_REASON = {
    "zero_byte": "zero-byte file",
    "missing": "file not found",
    "truncated": "truncated file:",
    "text": "not a video: the file holds text",
    "random_bytes": "cannot decode: Invalid data found when processing input",
    "zero_frames": "zero duration",
    "audio_only": "no video stream (the file has only audio streams)",
}


@pytest.mark.parametrize("reader", sorted(VIDEO_READERS))
@pytest.mark.parametrize("kind", sorted(EXPECTED_REASON))
def test_probe_names_the_problem(bad_media: dict[str, Path], kind: str, reader: str):
    with pytest.raises(VideoError) as caught:
        probe(bad_media[kind], reader)
    assert caught.value.reason.startswith(EXPECTED_REASON[kind])


@pytest.mark.parametrize("kind", sorted(EXPECTED_REASON))
def test_extract_turns_bad_media_into_failed_rows(bad_media: dict[str, Path], kind: str, tmp_path: Path):
    path = bad_media[kind]
    sample = Sample("s1", path.name, "video", "q?", "a", "free-form", "test")
    row = extract_sample(sample, path.parent, tmp_path, VideoConfig())
    assert row["status"] == "failed"
    assert row["reason"].startswith(EXPECTED_REASON[kind])
    assert str(path.parent) not in row["reason"]  # no machine paths in published reasons
    assert row["frame_paths"] == [] and not (tmp_path / "frames").exists()


def test_file_problems_are_not_retried_with_other_decoders(bad_media: dict[str, Path]):
    with pytest.raises(VideoError) as caught:
        sample_frames(bad_media["truncated"], VideoConfig())
    assert "tried" not in caught.value.reason


def test_a_too_small_video_fails_with_its_size(make_clip):
    with pytest.raises(VideoError, match=r"frame too small: 40x30 is below min_source_pixels=3136"):
        sample_frames(make_clip("tiny.mp4", 5, size=(40, 30)), VideoConfig())


class _Broken(OpenVideo):
    name = "decord"

    def __init__(self, path, header):
        raise VideoError("cannot decode: simulated decoder failure", UNDECODABLE)


def test_fallback_reader_takes_over_when_the_first_cannot_open(clip: Path, monkeypatch):
    monkeypatch.setitem(VIDEO_READERS, "decord", _Broken)
    sampled = sample_frames(clip, VideoConfig(reader="decord", fallback_readers=["opencv"]))
    assert sampled.reader == "opencv" and len(sampled.frames) == 16


def test_when_every_decoder_fails_the_reason_lists_them(clip: Path, monkeypatch):
    for name in VIDEO_READERS:
        monkeypatch.setitem(VIDEO_READERS, name, _Broken)
    with pytest.raises(VideoError) as caught:
        sample_frames(clip, VideoConfig())
    assert caught.value.reason == "cannot decode: simulated decoder failure (tried decord, opencv, pyav)"


def test_a_decoder_crash_is_a_failed_row_not_a_crash(clip: Path, tmp_path: Path, monkeypatch):
    class Crashing(OpenVideo):
        name = "decord"

        def __init__(self, path, header):
            raise RuntimeError("segfault-adjacent")

    for name in VIDEO_READERS:
        monkeypatch.setitem(VIDEO_READERS, name, Crashing)
    sample = Sample("s1", clip.name, "video", "q?", "a", "free-form", "test")
    row = extract_sample(sample, clip.parent, tmp_path, VideoConfig())
    assert row["status"] == "failed"
    assert row["reason"].startswith("cannot decode: RuntimeError: segfault-adjacent")


def test_a_broken_image_names_the_problem(tmp_path: Path):
    path = tmp_path / "photo.png"
    path.write_text("not really a png")
    with pytest.raises(VideoError) as caught:
        sample_frames(path, VideoConfig())
    assert caught.value.reason == "cannot decode image: cannot identify image file"
