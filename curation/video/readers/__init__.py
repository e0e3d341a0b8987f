"""Decoder registry: a reader name from the config -> an open file with `info` and `read`."""

from __future__ import annotations

from pathlib import Path

from curation.video.container import StreamHeader, read_stream_header
from curation.video.readers.base import OpenVideo
from curation.video.readers.decord_reader import DecordVideo
from curation.video.readers.image_reader import AnimatedImage, ImageFile
from curation.video.readers.opencv_reader import OpenCVVideo
from curation.video.readers.pyav_reader import PyAVVideo

VIDEO_READERS: dict[str, type[OpenVideo]] = {
    DecordVideo.name: DecordVideo,
    OpenCVVideo.name: OpenCVVideo,
    PyAVVideo.name: PyAVVideo,
}


def open_video(path: Path, reader: str, header: StreamHeader | None = None) -> OpenVideo:
    """Open a video with the named decoder; `header` saves a second container read when known."""
    try:
        cls = VIDEO_READERS[reader]
    except KeyError:
        raise ValueError(f"unknown video reader {reader!r} (known: {', '.join(VIDEO_READERS)})") from None
    if header is None:
        header = read_stream_header(Path(path))
    return cls(Path(path), header)


def open_image(path: Path) -> OpenVideo:
    return ImageFile(Path(path))


def open_animated(path: Path) -> OpenVideo:
    """An image file (animated GIF / WebP) read as a video clip."""
    return AnimatedImage(Path(path))


__all__ = [
    "VIDEO_READERS",
    "AnimatedImage",
    "ImageFile",
    "OpenVideo",
    "open_animated",
    "open_image",
    "open_video",
]
