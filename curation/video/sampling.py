"""Which frames to take: pure functions of the frame count, the frame rate and the config."""

from __future__ import annotations

from curation.video.config import VideoConfig
from curation.video.info import VideoInfo


def uniform_indices(frame_count: int, n: int) -> list[int]:
    """`n` frame indices at the centres of `n` equal segments of the clip.

    Centres (not linspace end points) never pick the very first or last frame, which are often
    black or a fade, and leave slack for containers that overstate their frame count by one.
    When the clip has fewer than `n` frames every frame is returned once: duplicating frames adds
    no information (a Qwen processor pads to an even count itself).
    """
    if frame_count <= 0:
        raise ValueError(f"frame_count must be positive, got {frame_count}")
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if frame_count <= n:
        return list(range(frame_count))
    # Integer arithmetic: floor((i + 0.5) * frame_count / n) without float rounding surprises.
    return [((2 * i + 1) * frame_count) // (2 * n) for i in range(n)]


def fps_frame_target(duration: float, fps: float, min_frames: int, max_frames: int, frame_count: int) -> int:
    """duration * fps frames, clamped to [min_frames, max_frames], never more than the clip holds."""
    wanted = round(duration * fps)
    wanted = max(min_frames, min(max_frames, wanted))
    return max(1, min(wanted, frame_count))


def frame_indices(info: VideoInfo, cfg: VideoConfig) -> list[int]:
    """The frames the config asks for, as indices into the decoder's stream."""
    if cfg.sampling == "fps":
        n = fps_frame_target(info.duration, cfg.fps, cfg.min_frames, cfg.max_frames, info.frame_count)
    else:
        n = cfg.num_frames
    return uniform_indices(info.frame_count, n)


def timestamps(indices: list[int], fps: float) -> list[float]:
    """Presentation time in seconds of each frame (index / fps, millisecond precision); 0.0 for images."""
    if fps <= 0:
        return [0.0 for _ in indices]
    return [round(i / fps, 3) for i in indices]
