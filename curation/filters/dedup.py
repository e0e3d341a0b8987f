"""Dedup: near-duplicate questions on the same media.

Two questions are near-duplicates when they ask about the same `media_path` and their normalised
text is equal: lowercase, punctuation removed, whitespace folded, plus the normalised options (the
same stem with other options is another item). Keeping both would over-weight one video and, worse,
put the same question in train and test.

This step is GLOBAL: it needs every row of the run, so it cannot run per shard. Two entry points:

- `DedupIndex`: streaming, first seen wins; the runner's sources stage feeds samples in source
  order and rejects duplicates before any LLM request is paid for.
- `dedup_questions(rows)`: over any iterable of rows, keeps the smallest sample id of each group
  (order-independent) and returns `{id: "near-duplicate of <kept id>"}` for the others.

Memory: one 16-byte digest per distinct question (plus the kept id), never the question text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from curation.filters.config import DedupConfig

_PUNCT_RE = re.compile(r"[^\w\s]|_")
_SPACE_RE = re.compile(r"\s+")


def normalize_text(text: str | None) -> str:
    """Lowercase, NFKC, punctuation stripped, whitespace folded."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = _PUNCT_RE.sub(" ", text)
    return _SPACE_RE.sub(" ", text).strip()


def question_key(
    media_path: str | None, problem: str | None, options: Sequence[str] | None, include_options: bool = True
) -> bytes:
    """Digest identifying a question on a media file (16 bytes)."""
    parts = [media_path or "", normalize_text(problem)]
    if include_options:
        parts.extend(normalize_text(o) for o in (options or []))
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=16).digest()


def _options_of(row: Any) -> Sequence[str] | None:
    options = row.get("options") if isinstance(row, dict) else getattr(row, "options", None)
    return list(options) if options is not None else None


class DedupIndex:
    """Streaming near-duplicate check, first seen wins. `check(sample)` returns the id of the earlier
    sample it duplicates, or None (and remembers it). Accepts a `Sample` or a row dict."""

    name = "dedup"

    def __init__(self, config: DedupConfig | None = None):
        self.config = config or DedupConfig()
        self._first: dict[bytes, str] = {}
        self.checked = 0
        self.duplicates = 0

    def check(self, sample: Any) -> str | None:
        get = sample.get if isinstance(sample, dict) else lambda k: getattr(sample, k, None)
        key = question_key(
            get("media_path"), get("problem"), _options_of(sample), self.config.include_options
        )
        self.checked += 1
        first = self._first.get(key)
        if first is not None and first != get("id"):
            self.duplicates += 1
            return first
        self._first.setdefault(key, get("id"))
        return None


def dedup_questions(rows: Iterable[dict[str, Any]], config: DedupConfig | None = None) -> dict[str, str]:
    """`{id: "near-duplicate of <kept id>"}` for every row but the smallest id of each group.

    Streams `rows` once reading only id, media_path, problem and options; the result does not depend
    on the order of `rows`.
    """
    cfg = config or DedupConfig()
    kept: dict[bytes, str] = {}
    others: dict[bytes, list[str]] = {}
    for row in rows:
        sid = row["id"]
        key = question_key(row.get("media_path"), row.get("problem"), _options_of(row), cfg.include_options)
        current = kept.get(key)
        if current is None:
            kept[key] = sid
        elif sid == current:
            continue  # the same row twice is not a duplicate of itself
        elif sid < current:
            others.setdefault(key, []).append(current)
            kept[key] = sid
        else:
            others.setdefault(key, []).append(sid)
    return {
        sid: f"near-duplicate of {kept[key]}"
        for key, ids in others.items()
        for sid in ids
        if sid != kept[key]
    }
