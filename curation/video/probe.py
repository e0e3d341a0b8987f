"""probe(path, reader) -> VideoInfo: the file checks, the container header, the decoder's counts."""

from __future__ import annotations

from pathlib import Path

from curation.video.container import inspect_container
from curation.video.file_checks import check_file, is_image_path, sniff_media_kind
from curation.video.info import VideoInfo
from curation.video.readers import open_image, open_video


def probe(path: Path | str, reader: str = "decord") -> VideoInfo:
    """Facts about a media file without decoding frames (images: one frame, duration 0).

    The content decides whether a file is an image (its first bytes, not its extension). Raises
    VideoError with a specific reason for missing, zero-byte, truncated, text, frameless or
    undecodable files; ValueError for an unknown reader name.
    """
    path = Path(path)
    size = check_file(path)
    kind = sniff_media_kind(path)
    if kind == "image" or (kind is None and is_image_path(path)):
        with open_image(path) as media:
            return media.info
    header = inspect_container(path, size)
    with open_video(path, reader, header) as media:
        return media.info
