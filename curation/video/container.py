"""Container-level facts read with PyAV (FFmpeg's demuxer): codec, size, rotation, frame times.

Every reader shares this first look, for two reasons: it names the codec the same way whatever
decoder follows ("h264", "mpeg4"; OpenCV only knows FourCCs), and FFmpeg's open error is the
specific message ("Invalid data found when processing input") that decord and OpenCV swallow.

The rotation of a phone clip (its display matrix) reaches PyAV only on decoded frames, so the
header decodes the first frame for it (a few ms; ~60 ms for 4K). `demux_frame_times` reads every
packet's presentation timestamp without decoding: the frame times of readers that have no index
of their own (OpenCV, PyAV).
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
    rotation: int = 0  # degrees counter-clockwise the frames must turn to display upright: 0/90/180/270

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as displayed: swapped for a quarter-turn rotation."""
        if self.rotation in (90, 270):
            return self.height, self.width
        return self.width, self.height


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
            rotation=_first_frame_rotation(container, stream),
        )


def _first_frame_rotation(container, stream) -> int:  # av containers and streams
    """The display rotation carried by the first decoded frame, as 0/90/180/270 (0 when unknown).

    Best effort: a stream PyAV cannot decode may still be decodable by another reader, whose own
    error then names the problem.
    """
    try:
        frame = next(container.decode(stream), None)
    except Exception:  # any decoder error: the readers will report it
        return 0
    if frame is None:
        return 0
    return quarter_turns(getattr(frame, "rotation", 0) or 0) * 90


def quarter_turns(degrees: float) -> int:
    """Counter-clockwise quarter turns (0..3) for a rotation in degrees (FFmpeg's sign convention)."""
    return int(round(float(degrees) / 90.0)) % 4


def demux_frame_times(path: Path) -> list[float] | None:
    """Presentation time (seconds) of every frame of the first video stream, sorted, from packet
    timestamps (demuxing only). None when a packet carries no timestamp (raw streams, some AVI):
    callers then assume a constant rate."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            base = stream.time_base
            pts: list[int] = []
            for packet in container.demux(stream):
                if not packet.size:
                    continue  # the demuxer's end-of-stream flush packet
                if packet.pts is None:
                    return None
                pts.append(packet.pts)
    except (av.FFmpegError, IndexError, ValueError) as err:
        raise VideoError(f"cannot decode: {clean_decoder_message(str(err))}", UNDECODABLE) from None
    if not pts or base is None:
        return None
    pts.sort()
    return [float(p * base) for p in pts]


def inspect_container(path: Path, size: int) -> StreamHeader:
    """Decoder-independent checks in order of specificity, then the stream header."""
    check_not_text(path)
    check_mp4_structure(path, size)
    return read_stream_header(path)
