"""Which frames get sampled: counts, positions and timestamps users will train on."""

from __future__ import annotations

import pytest

from curation.video import (
    VideoConfig,
    VideoInfo,
    fps_frame_target,
    frame_indices,
    timestamps,
    uniform_indices,
)


def info(frame_count: int, fps: float) -> VideoInfo:
    return VideoInfo(
        duration=frame_count / fps, fps=fps, frame_count=frame_count, width=320, height=240, codec="h264"
    )


def test_uniform_takes_segment_centres():
    # 100 frames in 16 segments of 6.25: centres at 3.125, 9.375, ... floored.
    idx = uniform_indices(100, 16)
    assert len(idx) == 16
    assert idx[:3] == [3, 9, 15]
    assert idx[-1] == 96
    assert all(b > a for a, b in zip(idx, idx[1:], strict=False))


def test_uniform_never_repeats_frames_of_a_short_clip():
    assert uniform_indices(5, 16) == [0, 1, 2, 3, 4]
    assert uniform_indices(16, 16) == list(range(16))
    assert uniform_indices(1, 16) == [0]


def test_uniform_spreads_over_the_whole_clip():
    idx = uniform_indices(9000, 16)  # 5 min at 30 fps
    gaps = {b - a for a, b in zip(idx, idx[1:], strict=False)}
    assert gaps <= {562, 563}
    assert idx[0] < 300 and idx[-1] > 8700


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(60.0, 16), (3.0, 6), (1.0, 4), (2.25, 4), (5.5, 11)],
)
def test_fps_sampling_clamps_to_min_and_max(seconds: float, expected: int):
    assert fps_frame_target(seconds, 2.0, 4, 16, frame_count=10_000) == expected


def test_fps_sampling_takes_fewer_only_when_the_clip_is_shorter():
    assert fps_frame_target(0.3, 2.0, 4, 16, frame_count=3) == 3


def test_frame_indices_follow_the_sampling_mode():
    ten_seconds = info(300, 30.0)
    assert len(frame_indices(ten_seconds, VideoConfig())) == 16
    assert len(frame_indices(ten_seconds, VideoConfig(num_frames=8))) == 8
    assert len(frame_indices(ten_seconds, VideoConfig(sampling="fps", fps=1.0))) == 10
    assert len(frame_indices(info(30, 30.0), VideoConfig(sampling="fps"))) == 4


def test_timestamps_are_seconds_from_the_start():
    assert timestamps([0, 15, 45], 30.0) == [0.0, 0.5, 1.5]
    assert timestamps([1], 3.0) == [0.333]
    assert timestamps([0], 0.0) == [0.0]  # images


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="frame_count"):
        uniform_indices(0, 16)
    with pytest.raises(ValueError, match="n must be positive"):
        uniform_indices(10, 0)
