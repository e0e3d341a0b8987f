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


def sniff_image_format(head: bytes) -> str | None:
    """The image format a file's first bytes announce ("png", "jpeg", "gif", "webp", "bmp", "tiff")."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def sniff_video_container(head: bytes) -> str | None:
    """The container a file's first bytes announce, for the formats users' folders hold."""
    if head[4:8] == b"ftyp" or head[4:8] in (b"moov", b"mdat", b"free", b"wide"):
        return "mp4"  # ISO-BMFF: mp4, mov, m4v, 3gp, 3g2
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # mkv, webm
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return "mpeg"  # MPEG program stream / elementary video (.mpg, .vob)
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"  # wmv, asf
    if head.startswith(b"FLV"):
        return "flv"
    if head.startswith(b"OggS"):
        return "ogg"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "mpegts"
    if len(head) > 196 and head[4] == 0x47 and head[196] == 0x47:
        return "mpegts"  # M2TS / MTS: 4-byte timecode before each 188-byte packet
    return None


def sniff_media_kind(path: Path) -> str | None:
    """ "image" or "video" from the file's first bytes (its content, not its extension); None when the
    content is not recognised or the file cannot be read. A GIF named .mp4 is an image file, an
    MPEG-TS named .dat is a video."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError:
        return None
    if sniff_image_format(head):
        return "image"
    if sniff_video_container(head):
        return "video"
    return None


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
