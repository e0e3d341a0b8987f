"""The one exception every video function raises for bad media, with a reason a user can act on.

`reason` is what lands in a failed row. It starts with a fixed phrase ("file not found",
"truncated file", "cannot decode", ...) and puts variable detail after a colon, so reports can
group failures by the phrase.
"""

from __future__ import annotations

import re
from typing import Final

# Kinds say *why* a file failed; the loader only retries another decoder for decoder-specific kinds.
NOT_FOUND: Final = "not_found"
NOT_A_FILE: Final = "not_a_file"
EMPTY: Final = "empty"
TRUNCATED: Final = "truncated"
NOT_VIDEO: Final = "not_video"
UNDECODABLE: Final = "undecodable"
NO_VIDEO_STREAM: Final = "no_video_stream"
ZERO_DURATION: Final = "zero_duration"
TOO_SMALL: Final = "too_small"
UNSAFE_PATH: Final = "unsafe_path"
READER_UNAVAILABLE: Final = "reader_unavailable"

# A different decoder may succeed where one failed only for these; the others are facts about the file.
DECODER_SPECIFIC_KINDS: Final = frozenset({UNDECODABLE, READER_UNAVAILABLE})


class VideoError(Exception):
    """Bad or unreadable media. `reason` is the human message, `kind` one of the constants above."""

    def __init__(self, reason: str, kind: str = UNDECODABLE) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


def clean_decoder_message(message: str) -> str:
    """First meaningful line of a decoder's error, without log prefixes and file paths.

    decord prefixes "[12:00:00] /src/video_reader.cc:151: Check failed: ... ERROR"; PyAV appends
    ": '/abs/path'" and prefixes "[Errno N]". Paths would make reasons differ per file and leak
    the machine's layout into published datasets.
    """
    lines = [line.strip() for line in (message or "").strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    text = _LOG_PREFIX.sub("", text)
    if "ERROR " in text:
        text = text.split("ERROR ", 1)[1]
    text = _ERRNO.sub("", text)
    text = _TRAILING_PATH.sub("", text)
    if _DECORD_OPEN.match(text):
        text = "could not open the file"
    return text.strip() or "unknown decoder error"


# "[13:10:53] /github/workspace/src/video/video_reader.cc:486: " (decord's logger)
_LOG_PREFIX = re.compile(r"^\[[0-9:]+\]\s*(\S+\.(?:cc|cpp|c|h):\d+:\s*)?")
_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")
_TRAILING_PATH = re.compile(r":\s*'[^']*'$")
# decord's whole message when avformat_open_input fails: "Error reading /abs/path..."
_DECORD_OPEN = re.compile(r"^Error reading .*\.\.\.$")
