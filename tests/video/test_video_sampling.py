"""Which frames get sampled: counts, positions and timestamps users will train on (Qwen's rules)."""

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
from curation.video.sampling import is_constant_rate, time_uniform_indices


def info(frame_count: int, fps: float) -> VideoInfo:
    return VideoInfo(
        duration=frame_count / fps, fps=fps, frame_count=frame_count, width=320, height=240, codec="h264"
    )


def test_uniform_includes_the_first_and_last_frame():
    # qwen-vl-utils: linspace(0, N-1, n).round()
    idx = uniform_indices(100, 16)
    assert len(idx) == 16
    assert idx[:4] == [0, 7, 13, 20]
    assert idx[-1] == 99
    assert all(b > a for a, b in zip(idx, idx[1:], strict=False))


def test_uniform_never_repeats_frames_of_a_short_clip():
    assert uniform_indices(5, 16) == [0, 1, 2, 3, 4]
    assert uniform_indices(16, 16) == list(range(16))
    assert uniform_indices(1, 16) == [0]


def test_uniform_spreads_over_the_whole_clip():
    idx = uniform_indices(9000, 16)  # 5 min at 30 fps
    gaps = {b - a for a, b in zip(idx, idx[1:], strict=False)}
    assert gaps <= {599, 600}
    assert idx[0] == 0 and idx[-1] == 8999


@pytest.mark.parametrize(
    ("seconds", "expected"),
    # duration*2 clamped to [4, 16], floored to an even count (FRAME_FACTOR)
    [(60.0, 16), (3.0, 6), (1.0, 4), (2.25, 4), (5.5, 10)],
)
def test_fps_sampling_clamps_to_min_and_max(seconds: float, expected: int):
    assert fps_frame_target(seconds, 2.0, 4, 16, frame_count=10_000) == expected


def test_fps_sampling_takes_fewer_only_when_the_clip_is_shorter():
    assert fps_frame_target(0.3, 2.0, 4, 16, frame_count=3) == 2  # even count, never more than it has
    assert fps_frame_target(0.1, 2.0, 4, 16, frame_count=1) == 1


def test_frame_indices_follow_the_sampling_mode():
    ten_seconds = info(300, 30.0)
    assert len(frame_indices(ten_seconds, VideoConfig())) == 16
    assert len(frame_indices(ten_seconds, VideoConfig(num_frames=8))) == 8
    assert len(frame_indices(ten_seconds, VideoConfig(sampling="fps", fps=1.0))) == 10
    assert len(frame_indices(info(30, 30.0), VideoConfig(sampling="fps"))) == 4


def test_fps_mode_caps_at_fps_max_frames_by_default():
    # Qwen's FPS_MAX_FRAMES (768) is the default cap, not 16: a 10-minute clip at 2 fps gives 768.
    ten_minutes = info(18_000, 30.0)
    assert len(frame_indices(ten_minutes, VideoConfig(sampling="fps"))) == 768
    assert len(frame_indices(ten_minutes, VideoConfig(sampling="fps", max_frames=32))) == 32


def test_timestamps_are_seconds_from_the_start():
    assert timestamps([0, 15, 45], 30.0) == [0.0, 0.5, 1.5]
    assert timestamps([1], 3.0) == [0.333]
    assert timestamps([0], 0.0) == [0.0]  # images


def test_timestamps_come_from_the_stream_when_known():
    times = [1.4, 1.5, 1.9, 3.4]  # an MPEG-TS starts at 1.4 s; times count from the first frame
    assert timestamps([0, 2, 3], 10.0, times) == [0.0, 0.5, 2.0]


def test_variable_frame_rate_is_sampled_uniformly_in_time():
    # 3 s at 30 fps, then 6 s at 5 fps: 90 + 30 frames.
    times = [i / 30 for i in range(90)] + [3.0 + i / 5 for i in range(30)]
    assert not is_constant_rate(times)
    vfr = VideoInfo(duration=8.5, fps=120 / 8.5, frame_count=120, width=320, height=240, codec="h264")
    idx = frame_indices(vfr, VideoConfig(), times)
    picked = [times[i] for i in idx]
    # By index, 12 of 16 frames would come from the first third of the clip; by time, 6 do.
    assert sum(t < 3.0 for t in picked) == 6
    step = times[-1] / 15
    assert all(abs(t - k * step) <= 0.2 for k, t in enumerate(picked))  # the nearest frame to each target


def test_constant_rate_time_sampling_is_qwens_linspace():
    for count, n in [(300, 16), (41, 16), (17, 16), (1000, 32), (10, 4)]:
        times = [i / 30 for i in range(count)]
        assert is_constant_rate(times)
        assert time_uniform_indices(times, n) == uniform_indices(count, n)
    jitter = [round(i / 30, 3) for i in range(300)]  # millisecond time base (MKV)
    assert is_constant_rate(jitter)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="frame_count"):
        uniform_indices(0, 16)
    with pytest.raises(ValueError, match="n must be positive"):
        uniform_indices(10, 0)
