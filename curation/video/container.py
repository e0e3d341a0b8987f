"""Container-level facts read with PyAV (FFmpeg's demuxer, no decoding): codec, size, streams.

Every reader shares this first look, for two reasons: it names the codec the same way whatever
decoder follows ("h264", "mpeg4"; OpenCV only knows FourCCs), and FFmpeg's open error is the
specific message ("Invalid data found when processing input") that decord and OpenCV swallow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curation.video.errors import (
    NO_VIDEO_STREAM,
    UNDECODABLE,
    ZERO_DURATION,
    VideoError,
    clean_decoder_message,
)
from curation.video.file_checks import check_mp4_structure, check_not_text


@dataclass(frozen=True)
class StreamHeader:
    """The first video stream as the container declares it; 0 means "not declared"."""

    codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration: float


def read_stream_header(path: Path) -> StreamHeader:
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise VideoError(f"cannot decode: {clean_decoder_message(str(err))}", UNDECODABLE) from None
    with container:
        videos = container.streams.video
        if not videos:
            kinds = sorted({s.type for s in container.streams})
            if not kinds:
                # What a muxer leaves when it is closed before the first frame (OpenCV's
                # VideoWriter with zero writes): a valid index with no track in it.
                raise VideoError("zero duration: the container holds no frames", ZERO_DURATION)
            raise VideoError(
                f"no video stream (the file has only {', '.join(kinds)} streams)", NO_VIDEO_STREAM
            )
        stream = videos[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        return StreamHeader(
            codec=stream.codec_context.name or "",
            width=int(stream.codec_context.width or 0),
            height=int(stream.codec_context.height or 0),
            fps=fps,
            frame_count=int(stream.frames or 0),
            duration=duration,
        )


def inspect_container(path: Path, size: int) -> StreamHeader:
    """Decoder-independent checks in order of specificity, then the stream header."""
    check_not_text(path)
    check_mp4_structure(path, size)
    return read_stream_header(path)
