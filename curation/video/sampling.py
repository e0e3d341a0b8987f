"""Which frames to take: pure functions of the frame count, the frame times and the config.

The count and the positions are Qwen's (`curation.video.qwen_rules`): `n` frames at
`linspace(0, N-1, n).round()`. That is uniform in time only when frames are evenly spaced, so the
presentation timestamps decide: a constant-frame-rate stream gets exactly Qwen's indices, a
variable-frame-rate one (a phone clip that drops to 5 fps in the dark) gets, for each of the same
`n` positions, the frame shown at the matching time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from curation.video.config import VideoConfig
from curation.video.info import VideoInfo
from curation.video.qwen_rules import frame_count_to_sample, linspace_indices

# Frame intervals that differ from their mean by less than this are one constant rate: timestamps
# rounded to a millisecond time base (MKV, WebM) jitter by up to 1 ms.
_CFR_TOLERANCE_S = 0.0015
_CFR_TOLERANCE_REL = 0.05


def uniform_indices(frame_count: int, n: int) -> list[int]:
    """`n` frame indices spread over the whole clip, first and last frame included (Qwen's linspace).

    When the clip has fewer than `n` frames, every frame is returned once.
    """
    if frame_count <= 0:
        raise ValueError(f"frame_count must be positive, got {frame_count}")
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    return linspace_indices(frame_count, min(n, frame_count))


def frames_to_sample(info: VideoInfo, cfg: VideoConfig) -> int:
    """How many frames the config asks of this clip (Qwen's `smart_nframes`, tolerant of short clips)."""
    if cfg.sampling == "fps":
        return frame_count_to_sample(
            info.frame_count, info.fps, fps=cfg.fps, min_frames=cfg.min_frames, max_frames=cfg.max_frames
        )
    return frame_count_to_sample(info.frame_count, info.fps, nframes=cfg.num_frames)


def fps_frame_target(duration: float, fps: float, min_frames: int, max_frames: int, frame_count: int) -> int:
    """Frames fps mode takes from a clip of `duration` seconds holding `frame_count` frames."""
    source_fps = frame_count / duration if duration > 0 else fps
    return frame_count_to_sample(
        frame_count, source_fps, fps=fps, min_frames=min_frames, max_frames=max_frames
    )


def is_constant_rate(times: Sequence[float]) -> bool:
    """True when every interval between consecutive frame times is (within timestamp jitter) the same."""
    if len(times) < 3:
        return True
    deltas = np.diff(np.asarray(times, dtype=np.float64))
    mean = float(deltas.mean())
    tolerance = max(_CFR_TOLERANCE_S, _CFR_TOLERANCE_REL * abs(mean))
    return bool(np.all(np.abs(deltas - mean) <= tolerance))


def time_uniform_indices(times: Sequence[float], n: int) -> list[int]:
    """`n` frames at Qwen's linspace positions mapped onto the time axis: for each position, the frame
    whose presentation time is nearest, kept strictly increasing.

    For evenly spaced `times` this is `linspace_indices` exactly (ties resolved as numpy rounds).
    """
    t = np.asarray(times, dtype=np.float64)
    count = len(t)
    positions = np.linspace(0, count - 1, n) if n > 1 else np.zeros(1)
    span = t[-1] - t[0]
    targets = t[0] + positions / max(count - 1, 1) * span
    right = np.clip(np.searchsorted(t, targets), 1, count - 1) if count > 1 else np.zeros(n, int)
    left = right - 1 if count > 1 else right
    d_left = targets - t[left]
    d_right = t[right] - targets
    chosen = np.where(d_left < d_right, left, right)
    # A tie goes to the even index, as numpy (and torch) round x.5 in Qwen's linspace.
    ties = np.isclose(d_left, d_right, rtol=0.0, atol=1e-9)
    chosen = np.where(ties, np.where(left % 2 == 0, left, right), chosen)
    out = [int(i) for i in chosen]
    # Sparse stretches of a VFR clip can map two positions to one frame: push apart, forwards then
    # backwards, so the count stays `n` (n <= count guarantees room).
    for k in range(1, n):
        out[k] = max(out[k], out[k - 1] + 1)
    out[-1] = min(out[-1], count - 1)
    for k in range(n - 2, -1, -1):
        out[k] = min(out[k], out[k + 1] - 1)
    return out


def frame_indices(info: VideoInfo, cfg: VideoConfig, times: Sequence[float] | None = None) -> list[int]:
    """The frames the config asks for, as indices into the decoder's stream.

    `times` are the decoder's presentation times of every frame (seconds); without them, or when they
    are evenly spaced, Qwen's linspace indices are used as they are.
    """
    n = frames_to_sample(info, cfg)
    if times is None or len(times) != info.frame_count or is_constant_rate(times):
        return linspace_indices(info.frame_count, n)
    return time_uniform_indices(times, n)


def timestamps(indices: list[int], fps: float, times: Sequence[float] | None = None) -> list[float]:
    """Presentation time in seconds of each frame, from the first frame (millisecond precision).

    From the stream's timestamps when known (true times, also for variable frame rate), else
    index / fps; 0.0 for images.
    """
    if times is not None:
        first = float(times[0]) if len(times) else 0.0
        return [round(float(times[i]) - first, 3) for i in indices]
    if fps <= 0:
        return [0.0 for _ in indices]
    return [round(i / fps, 3) for i in indices]
