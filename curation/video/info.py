"""What a probe learns about a media file, before any frame is decoded."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class VideoInfo:
    """Stream facts as the chosen decoder sees them.

    `frame_count` and `fps` are the decoder's own (frame indices given to that decoder refer to
    them); `duration` is frame_count / fps, the span the sampled timestamps live in. An image is
    one frame with duration 0 and fps 0.
    """

    duration: float
    fps: float
    frame_count: int
    width: int
    height: int
    codec: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
