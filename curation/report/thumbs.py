"""Small JPEG thumbnails of extracted frames, deduplicated, as data URLs for a self-contained page.

Frames dominate a report's size, so thumbnails are tiny (96 px wide by default), identical ones are
stored once (the same frame file, or two files with the same bytes, or two frames that happen to
shrink to the same thumbnail), and the caller can stop adding them when a byte budget is spent.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

_CHUNK = 256


def pick_frames(n: int, k: int) -> list[int]:
    """`k` indices spread evenly over `n` frames (first and last included), all of them if k >= n."""
    if n <= 0 or k <= 0:
        return []
    if k >= n:
        return list(range(n))
    if k == 1:
        return [n // 2]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def make_thumbnail(path: Path, width: int = 96, quality: int = 65) -> bytes:
    """JPEG bytes of the image scaled to `width` (never upscaled)."""
    with Image.open(path) as im:
        # draft() lets libjpeg decode at 1/2..1/8 scale directly: most of the cost saved.
        im.draft("RGB", (width * 2, max(1, im.height * width * 2 // max(im.width, 1))))
        im = im.convert("RGB")
        if im.width > width:
            im = im.resize((width, max(1, round(im.height * width / im.width))), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality, optimize=True)
        return buf.getvalue()


class ThumbStore:
    """Thumbnails as data URLs in a list; samples refer to them by index."""

    def __init__(self, width: int = 96, quality: int = 65, budget_bytes: int | None = None):
        self.width = width
        self.quality = quality
        self.budget_bytes = budget_bytes
        self.urls: list[str] = []
        self.bytes = 0
        self.full = False  # the budget turned a thumbnail away: decode no more
        self._by_path: dict[str, int | None] = {}
        self._by_source: dict[str, int | None] = {}
        self._by_thumb: dict[str, int] = {}

    def index(self, path: Path) -> int | None:
        """The thumbnail index of a file added before (None: unreadable, or over budget)."""
        return self._by_path.get(os.fspath(path))

    def add_many(self, paths: Iterable[Path]) -> None:
        """Thumbnail new files (in parallel: PIL releases the GIL while decoding), in the given order.

        The order is the priority when a budget is set: once it is spent, later new files get no
        thumbnail while files already seen keep theirs.
        """
        todo: dict[str, str] = {}  # path -> digest of the source bytes
        for path in paths:
            key = os.fspath(path)
            if key in self._by_path or key in todo:
                continue
            try:
                digest = hashlib.sha1(Path(key).read_bytes()).hexdigest()
            except OSError:
                self._by_path[key] = None
                continue
            if digest in self._by_source:
                self._by_path[key] = self._by_source[digest]
            else:
                todo[key] = digest
        unique = list(dict.fromkeys(todo.values()))
        first_path = {d: p for p, d in reversed(todo.items())}
        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2))) as pool:
            # In chunks, so that nothing more is decoded once the budget is spent.
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                if self.full:
                    thumbs: list[bytes | None] = [None] * len(chunk)
                else:
                    thumbs = list(pool.map(self._safe_thumbnail, (first_path[d] for d in chunk)))
                for digest, data in zip(chunk, thumbs, strict=True):
                    self._by_source[digest] = self._store(data)
        for key, digest in todo.items():
            self._by_path[key] = self._by_source[digest]

    def _safe_thumbnail(self, path: str) -> bytes | None:
        try:
            return make_thumbnail(Path(path), self.width, self.quality)
        except (OSError, ValueError, Image.DecompressionBombError):
            # A broken frame file shows as a missing thumbnail; the report is still worth having.
            return None

    def _store(self, data: bytes | None) -> int | None:
        if data is None:
            return None
        digest = hashlib.sha1(data).hexdigest()
        if digest in self._by_thumb:
            return self._by_thumb[digest]
        url = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
        if self.budget_bytes is not None and self.bytes + len(url) > self.budget_bytes:
            self.full = True
            return None
        self.bytes += len(url)
        self.urls.append(url)
        self._by_thumb[digest] = len(self.urls) - 1
        return len(self.urls) - 1
