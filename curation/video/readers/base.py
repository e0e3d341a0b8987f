"""What every decoder offers: open a file, report its `VideoInfo` and frame times, return chosen
frames as upright RGB at the requested size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from curation.video.errors import UNDECODABLE, ZERO_DURATION, VideoError
from curation.video.info import VideoInfo


class OpenVideo:
    """An open media file. Use as a context manager; `read` returns RGB uint8 HxWx3 arrays.

    `info.width` / `info.height` are the displayed size (rotation applied); every reader returns
    frames turned upright.
    """

    name: ClassVar[str]
    info: VideoInfo

    def frame_times(self) -> list[float] | None:
        """Presentation time in seconds of every frame (index order, as this reader counts frames),
        or None when the stream carries none (a constant rate is then assumed)."""
        return None

    def read(
        self, indices: Sequence[int], size: tuple[int, int] | None = None, *, scaled: bool = False
    ) -> list[np.ndarray]:
        """The frames at `indices`, resized to `size` = (width, height) when given.

        `scaled` asks the decoder to produce `size` itself where it can (decord, PyAV), instead of
        full frames resized afterwards: less memory on large sources.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release the decoder; safe to call twice."""

    def __enter__(self) -> OpenVideo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rotate_upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a decoded frame by its display rotation (degrees counter-clockwise, multiple of 90)."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(frame, turns)) if turns else frame


def make_info(frame_count: int, fps: float, width: int, height: int, codec: str) -> VideoInfo:
    """VideoInfo from a decoder's own counts, refusing streams nothing can be sampled from."""
    if frame_count <= 0:
        raise VideoError("zero duration: the video stream holds no frames", ZERO_DURATION)
    if not fps or fps <= 0 or fps != fps:
        raise VideoError("cannot decode: the stream declares no frame rate", UNDECODABLE)
    if width <= 0 or height <= 0:
        raise VideoError("cannot decode: the stream declares no frame size", UNDECODABLE)
    return VideoInfo(
        duration=frame_count / fps,
        fps=float(fps),
        frame_count=int(frame_count),
        width=int(width),
        height=int(height),
        codec=codec,
    )


def check_indices(indices: Sequence[int], frame_count: int) -> list[int]:
    """Indices must be strictly increasing and inside the stream; anything else is a caller bug."""
    out = [int(i) for i in indices]
    if not out:
        raise ValueError("no frame indices requested")
    if out[0] < 0 or out[-1] >= frame_count:
        raise ValueError(f"frame indices {out[0]}..{out[-1]} fall outside 0..{frame_count - 1}")
    if any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise ValueError(f"frame indices must be strictly increasing, got {out}")
    return out


def truncated_stream(decoded: int, declared: int) -> VideoError:
    # Kind UNDECODABLE, not TRUNCATED: a decoder can overestimate the count of a container that
    # does not store it (MKV, WebM), so another decoder gets its chance.
    return VideoError(
        f"truncated stream: decoding stopped after {decoded} frames, the stream declares {declared}",
        UNDECODABLE,
    )
