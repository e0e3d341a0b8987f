"""The sample record every stage starts from, and the problem-type vocabulary.

A sample is one (media, question, answer) item. Its id is a stable content hash of where it came
from (source name + media path + question), so the same row read twice, from any reader, gets the
same id, and every stage table can be joined on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Canonical spellings are Video-R1's: they are what the reward functions, the filters and the
# Video-R1 export all use. Readers normalise aliases into these.
MULTIPLE_CHOICE = "multiple choice"
NUMERICAL = "numerical"
OCR = "OCR"
FREE_FORM = "free-form"
REGRESSION = "regression"
PROBLEM_TYPES: tuple[str, ...] = (MULTIPLE_CHOICE, NUMERICAL, OCR, FREE_FORM, REGRESSION)

_ALIASES = {
    "multiple choice": MULTIPLE_CHOICE,
    "multiple_choice": MULTIPLE_CHOICE,
    "multiple-choice": MULTIPLE_CHOICE,
    "mc": MULTIPLE_CHOICE,
    "numerical": NUMERICAL,
    "numeric": NUMERICAL,
    "num": NUMERICAL,
    "ocr": OCR,
    "free-form": FREE_FORM,
    "free_form": FREE_FORM,
    "freeform": FREE_FORM,
    "free form": FREE_FORM,
    "free": FREE_FORM,
    "open-ended": FREE_FORM,
    "regression": REGRESSION,
    "reg": REGRESSION,
}

DATA_TYPES: tuple[str, ...] = ("video", "image")

# Row statuses shared by every stage table.
OK = "ok"
REJECTED = "rejected"
FAILED = "failed"
STATUSES: tuple[str, ...] = (OK, REJECTED, FAILED)


def normalize_problem_type(value: Any) -> str | None:
    """Return the canonical spelling of a problem type, or None when it is unknown."""
    if not isinstance(value, str):
        return None
    return _ALIASES.get(value.strip().lower())


def stable_hash(*parts: Any, length: int = 16) -> str:
    """Short hex digest of JSON-serialised parts; the same inputs give the same hash everywhere."""
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def sample_id(data_source: str, media_path: str, problem: str) -> str:
    return stable_hash("sample/v1", data_source, media_path, problem)


@dataclass
class Sample:
    """One (media, question, answer) item, as every reader produces it.

    `media_path` is relative to the source's media root (never absolute, never escaping it);
    `solution` is the bare answer (no `<answer>` tags; the publish step adds them);
    `options` holds "A. text" lines for multiple choice and is empty otherwise.
    """

    id: str
    media_path: str
    data_type: str
    problem: str
    solution: str
    problem_type: str
    data_source: str
    options: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        """Flat row for a Parquet table: `meta` is stored as a JSON string so its schema can vary."""
        row = asdict(self)
        row["meta"] = json.dumps(self.meta, ensure_ascii=False, sort_keys=True)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Sample:
        meta = row.get("meta") or {}
        if isinstance(meta, str):
            meta = json.loads(meta) if meta else {}
        options = row.get("options")
        return cls(
            id=row["id"],
            media_path=row["media_path"],
            data_type=row["data_type"],
            problem=row["problem"],
            solution=row["solution"],
            problem_type=row["problem_type"],
            data_source=row["data_source"],
            options=list(options) if options is not None else [],
            meta=meta,
        )
