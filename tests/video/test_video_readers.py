"""Every decoder sees the same stream and returns the same RGB frames at the same indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curation.video import VideoConfig, probe, sample_frames
from curation.video.readers import VIDEO_READERS, open_video

READERS = sorted(VIDEO_READERS)


def only(reader: str, **fields) -> VideoConfig:
    return VideoConfig(reader=reader, fallback_readers=[], **fields)


@pytest.mark.parametrize("reader", READERS)
def test_probe_reports_the_stream(clip: Path, reader: str):
    info = probe(clip, reader)
    assert (info.frame_count, info.fps, info.width, info.height) == (40, 10.0, 320, 240)
    assert info.duration == pytest.approx(4.0)
    assert info.codec == "mpeg4"


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("fixture", ["clip", "h264_clip", "mkv_clip"])
def test_reader_returns_the_requested_frames(request, reader: str, fixture: str, frame_no):
    path = request.getfixturevalue(fixture)
    sampled = sample_frames(path, only(reader))
    assert sampled.reader == reader
    assert len(sampled.frames) == 16
    # The pixels say which frame came back: no off-by-one after seeks or B-frame reordering.
    assert [frame_no(f) for f in sampled.frames] == sampled.indices
    assert sampled.timestamps == [round(i / sampled.info.fps, 3) for i in sampled.indices]
    for frame in sampled.frames:
        # 320x240 at min = max = 128*28*28: Qwen's smart_resize gives 392x280, for every reader.
        assert frame.dtype == np.uint8 and frame.shape == (280, 392, 3)


@pytest.mark.parametrize("reader", READERS)
def test_frames_are_rgb(clip: Path, reader: str):
    frame = sample_frames(clip, only(reader)).frames[0]
    red, green, blue = frame[10, 10].astype(int)  # the red marker square
    assert red > 180 and green < 80 and blue < 80


def test_readers_agree_pixel_for_pixel(h264_clip: Path):
    frames = {r: sample_frames(h264_clip, only(r)).frames for r in READERS}
    reference = np.stack(frames["pyav"]).astype(int)
    for reader in READERS:
        diff = np.abs(np.stack(frames[reader]).astype(int) - reference)
        assert diff.mean() < 2.0, reader  # colour conversion differs by rounding at most


@pytest.mark.parametrize("reader", ["opencv", "pyav"])
def test_sequential_readers_can_read_again_from_the_start(clip: Path, reader: str, frame_no):
    with open_video(clip, reader) as video:
        assert [frame_no(f) for f in video.read([30, 35])] == [30, 35]
        assert [frame_no(f) for f in video.read([2, 3])] == [2, 3]


def test_indices_outside_the_stream_are_a_caller_error(clip: Path):
    with open_video(clip, "opencv") as video, pytest.raises(ValueError, match="outside"):
        video.read([10, 40])


def test_hd_frames_are_downscaled_to_the_budget(hd_clip: Path):
    sampled = sample_frames(hd_clip, VideoConfig())
    assert sampled.info.width == 1280
    assert {f.shape for f in sampled.frames} == {(224, 420, 3)}


def test_fps_sampling_on_a_real_clip(clip: Path):
    sampled = sample_frames(clip, VideoConfig(sampling="fps", fps=2.0))  # 4 s at 2 fps
    assert len(sampled.frames) == 8
    # linspace(0, 39, 8).round(): first and last frame included, as qwen-vl-utils.
    assert sampled.indices == [0, 6, 11, 17, 22, 28, 33, 39]
    assert sampled.timestamps == [0.0, 0.6, 1.1, 1.7, 2.2, 2.8, 3.3, 3.9]


def test_an_image_is_one_frame_at_time_zero(image_file: Path, frame_no):
    sampled = sample_frames(image_file, VideoConfig())
    assert sampled.reader == "pillow"
    assert sampled.indices == [0] and sampled.timestamps == [0.0]
    assert frame_no(sampled.frames[0]) == 5
    info = probe(image_file)
    assert (info.frame_count, info.width, info.height, info.codec) == (1, 200, 150, "png")


def test_transparent_images_are_flattened_on_white(tmp_path: Path):
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (64, 64), (255, 0, 0, 0)).save(path)
    frame = sample_frames(path, VideoConfig()).frames[0]
    assert frame.shape == (56, 56, 3)  # smart_resize onto the 28 px grid
    assert tuple(frame[0, 0]) == (255, 255, 255)


def test_a_one_frame_video_is_a_valid_still(make_clip):
    # Decided: one frame is a (very short) clip, not "zero duration"; zero frames is.
    sampled = sample_frames(make_clip("one.mp4", 1), VideoConfig())
    assert sampled.indices == [0] and sampled.timestamps == [0.0]
    assert sampled.info.duration == pytest.approx(0.1)
