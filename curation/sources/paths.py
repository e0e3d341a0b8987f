"""Media path safety and media kinds.

Annotation files come from anywhere, so a media path is untrusted input: it must not reach outside
the media root, whether by `..` segments, an absolute path or a symlink. Existence is deliberately
*not* checked here: a missing file is the extract stage's "file not found" failure, so the row is
still accounted for (and reported) there instead of vanishing at read time.
"""

from __future__ import annotations

import posixpath
from pathlib import Path, PurePosixPath

# What FFmpeg-based decoders read, by the names users' folders carry them under. A file with any
# other extension is still accepted when its content is a recognised video or image (`media_kind`).
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi",
        ".mpg", ".mpeg", ".m2v", ".vob",  # MPEG program streams
        ".ts", ".mts", ".m2ts",  # MPEG transport streams (camcorders: .mts)
        ".3gp", ".3g2", ".wmv", ".asf", ".flv", ".f4v", ".ogv", ".mxf", ".dv",
    }
)  # fmt: skip
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)
# Image formats that can hold an animation: read as a video when annotated `data_type: video`
# (TGIF-QA's GIFs).
ANIMATED_IMAGE_EXTENSIONS: frozenset[str] = frozenset({".gif", ".webp", ".png"})


class UnsafePathError(ValueError):
    """A media path that would read outside the media root; `reason` is the row's reject reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalize_media_path(media_path: str) -> str:
    """Forward slashes, no leading "./", no empty or "." segments (lexical only, no filesystem).

    Backslashes are treated as separators: annotation files written on Windows use them, and the
    relative path feeds the stable sample id, which must not depend on the writer's OS.
    """
    text = media_path.strip().replace("\\", "/")
    if not text:
        return ""
    absolute = text.startswith("/")
    normed = posixpath.normpath(text)
    # normpath keeps a leading "//" (POSIX allows it to mean something else); we don't.
    if absolute:
        normed = "/" + normed.lstrip("/")
    return normed


def media_kind(media_path: str, file: Path | None = None) -> str | None:
    """The media kind ("video" or "image"): from the extension (case-insensitive) when it is a known
    one, else from the content of `file` when given and readable; None when neither says."""
    suffix = PurePosixPath(media_path.replace("\\", "/")).suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if file is not None:
        from curation.video.file_checks import sniff_media_kind

        return sniff_media_kind(file)
    return None


def _relative_to_any(path: PurePosixPath, roots: list[PurePosixPath]) -> str | None:
    for root in roots:
        if path == root:
            return ""
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return None


def resolve_media(media_root: str | Path, media_path: str) -> tuple[str, Path]:
    """Return (relative posix path, absolute path) of a media file inside `media_root`.

    Raises UnsafePathError for: an empty path, a NUL byte, `..` escaping the root (also hidden as
    `a/../../x`), an absolute path outside the root, or a path whose symlinks resolve outside it.
    An absolute path inside the root is accepted and made relative, so the same file gets the same
    sample id however the annotation spelled it.
    """
    if not isinstance(media_path, str) or not media_path.strip():
        raise UnsafePathError("empty media path")
    if "\x00" in media_path:
        raise UnsafePathError("media path contains a NUL byte")

    root_given = Path(media_root).expanduser().absolute()
    root_real = root_given.resolve()
    normed = normalize_media_path(media_path)

    if normed.startswith("/"):
        # Compare against both spellings of the root: the user's and the symlink-resolved one
        # (e.g. /tmp -> /private/tmp), otherwise a legitimate absolute path would be refused.
        roots = [
            PurePosixPath(posixpath.normpath(root_given.as_posix())),
            PurePosixPath(root_real.as_posix()),
        ]
        rel = _relative_to_any(PurePosixPath(normed), roots)
        if rel is None:
            # The file name only: the rest is the annotating machine's layout, and reasons are published.
            name = PurePosixPath(normed).name
            raise UnsafePathError(f"absolute media path outside the media root: …/{name}")
    else:
        rel = normed
        if rel == ".." or rel.startswith("../"):
            raise UnsafePathError(f"media path escapes the media root: {media_path.strip()}")
    if rel in ("", "."):
        raise UnsafePathError(f"media path names the media root itself: {media_path.strip()}")

    candidate = root_real / rel
    # resolve(strict=False) follows every symlink that exists along the way; a link inside the
    # root that points outside it would otherwise let the extract stage read any file.
    real = candidate.resolve(strict=False)
    if not real.is_relative_to(root_real):
        # The link's target is a local absolute path: never in a reason (reasons reach dataset cards).
        raise UnsafePathError(f"media path resolves outside the media root through a symlink: {rel}")
    # The lexical path (not the resolved one) is returned: ids must not depend on how links are laid out.
    return rel, root_real / rel
