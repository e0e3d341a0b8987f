"""Checks that need no decoder: existence, size, MP4 box structure, text posing as video.

They run before any decoder so the reasons are the same whichever decoder is configured, and so
a truncated download reads "truncated file" instead of a decoder's generic "Invalid data found".
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from curation.video.errors import EMPTY, NOT_A_FILE, NOT_FOUND, NOT_VIDEO, TRUNCATED, VideoError

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)

# First boxes an ISO-BMFF (MP4/MOV/3GP) file can start with; anything else is left to the decoders.
_MP4_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})
_SNIFF_BYTES = 512


def is_image_path(path: Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def check_file(path: Path) -> int:
    """Raise VideoError for a missing, non-regular or zero-byte file; return its size in bytes."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VideoError("file not found", NOT_FOUND) from None
    except OSError as err:
        raise VideoError(f"cannot read file: {err.strerror}", NOT_FOUND) from None
    if not Path(path).is_file():
        raise VideoError("not a regular file (a directory or a device?)", NOT_A_FILE)
    if st.st_size == 0:
        raise VideoError("zero-byte file", EMPTY)
    return st.st_size


def check_not_text(path: Path) -> None:
    """Raise when the file starts with readable text: a log, an HTML error page saved as .mp4, ..."""
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if b"\x00" in head:
        return
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return
    if all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        preview = " ".join(text.split())[:40]
        raise VideoError(f"not a video: the file holds text ({preview!r}...)", NOT_VIDEO)


def check_mp4_structure(path: Path, size: int) -> None:
    """Walk the top-level boxes of an MP4/MOV file and raise if one runs past the end of the file.

    A download cut short loses the tail: either the 'moov' index (written last by most muxers,
    OpenCV's included) or part of 'mdat'. Files that are not ISO-BMFF are left alone.
    """
    with open(path, "rb") as fh:
        offset = 0
        boxes: list[bytes] = []
        while offset + 8 <= size:
            fh.seek(offset)
            header = fh.read(16)
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if offset == 0 and box_type not in _MP4_FIRST_BOXES:
                return
            if not _is_fourcc(box_type):
                # Trailing bytes that are not a box: decoders tolerate them, so do we.
                return
            header_len = 8
            if box_size == 1:
                if len(header) < 16:
                    break
                box_size = struct.unpack(">Q", header[8:16])[0]
                header_len = 16
            elif box_size == 0:
                box_size = size - offset  # "extends to the end of the file"
            if box_size < header_len:
                raise VideoError(
                    f"corrupt MP4 structure: box {box_type.decode()!r} at byte {offset} has size {box_size}",
                    TRUNCATED,
                )
            if offset + box_size > size:
                raise VideoError(
                    f"truncated file: the {box_type.decode()!r} box runs past the end of the file "
                    f"(needs {offset + box_size} bytes, the file has {size})",
                    TRUNCATED,
                )
            boxes.append(box_type)
            offset += box_size
        if b"moov" not in boxes and b"moof" not in boxes:
            raise VideoError(
                "truncated file: no 'moov' index box (the end of the file is missing?)", TRUNCATED
            )


def _is_fourcc(value: bytes) -> bool:
    return all(32 <= b < 127 for b in value)
