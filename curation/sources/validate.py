"""Turn one source row (already mapped onto canonical column names) into a Sample, or reject it.

Every reader ends here, so every format gets the same rules and the same reject reasons. A reason
names the exact problem ("answer 'E' is not one of the options A–D"), because it ends up in the
run's report and someone has to fix the annotation file from it. `build_sample` signals a bad row
with RowRejected; `build_rows` turns that into a `rejected` SourceRow that keeps the raw text, so
bad data never raises out of a reader and no row is ever lost silently.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.records import (
    DATA_TYPES,
    MULTIPLE_CHOICE,
    NUMERICAL,
    OK,
    REGRESSION,
    REJECTED,
    Sample,
    normalize_problem_type,
    sample_id,
)
from curation.sources.paths import ANIMATED_IMAGE_EXTENSIONS, UnsafePathError, media_kind, resolve_media


@dataclass(frozen=True)
class SourceRow:
    """One source row, read: `sample` when ok, `reason` when rejected, `raw` always."""

    index: int  # row number in the source (0-based; blank JSONL lines are not rows)
    sample: Sample | None
    status: str  # "ok" | "rejected"
    reason: str  # "" when ok
    raw: str  # the original row as a JSON string (the line itself for JSONL)

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(frozen=True)
class RawRecord:
    """What a format reader yields: the parsed row, or the parse error that replaces it."""

    index: int
    record: dict[str, Any] | None
    raw: str
    error: str = ""


@dataclass
class Prepared:
    """A record mapped onto canonical columns: `fields` feed validation, `meta` is reader-added
    metadata (e.g. Video-R1's problem_id), `extra` the columns no rule claimed (kept in meta)."""

    fields: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class RowRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# Small value helpers


def is_missing(value: Any) -> bool:
    """None, or a float NaN (what pandas / CSV-via-pandas put in an empty cell)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def jsonable(value: Any) -> Any:
    """A JSON-serialisable copy of a cell: Parquet / HF rows can hold bytes, dates, numpy scalars."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, _dt.date | _dt.datetime | _dt.time):
        return value.isoformat()
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item):
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)  # numpy array
    if callable(tolist):
        return jsonable(tolist())
    return str(value)


def raw_json(record: Any) -> str:
    return json.dumps(jsonable(record), ensure_ascii=False)


def text_value(fields: dict[str, Any], name: str) -> str:
    """A required text field, stripped. Numbers become text (JSON often stores `"solution": 42`)."""
    value = fields.get(name)
    if is_missing(value):
        raise RowRejected(f"missing field '{name}'")
    if isinstance(value, bool):
        raise RowRejected(f"field '{name}' must be text, got a boolean")
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        raise RowRejected(f"field '{name}' must be text, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise RowRejected(f"empty field '{name}'")
    return value


# ---------------------------------------------------------------------------------------------
# Options and answers

# "A. text", "A) text", "(A) text", "A: text". Capital letters only: "a) ..." or "I think ..." in
# an unlettered option list must not be mistaken for a letter.
OPTION_RE = re.compile(r"^\s*(?:\(([A-Z])\)|([A-Z])[.):：])\s*(.*?)\s*$", re.DOTALL)


def split_option(entry: str) -> tuple[str, str] | None:
    """("B", "text") for a lettered option line, None for a bare one."""
    match = OPTION_RE.match(entry)
    if match is None:
        return None
    return match.group(1) or match.group(2), match.group(3)


def option_entries(value: Any) -> list[str]:
    """The raw option entries of a cell.

    Accepted: a list; a JSON list in a string ('["A. x", "B. y"]'); "A. x|B. y" (pipe-separated, the
    CSV spelling); one option per line. Blank entries (e.g. from a trailing "|") are dropped.
    """
    if is_missing(value):
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise RowRejected(f"options is not a valid JSON list: {exc}") from None
            if not isinstance(value, list):
                raise RowRejected("options is not a valid JSON list")
        elif "|" in text:
            value = text.split("|")
        else:
            value = text.splitlines()
    elif not isinstance(value, list | tuple):
        tolist = getattr(value, "tolist", None)  # numpy array from a pandas-written Parquet
        if not callable(tolist):
            raise RowRejected(f"options must be a list, got {type(value).__name__}")
        value = tolist()
    entries = []
    for entry in value:
        if is_missing(entry):
            continue
        if not isinstance(entry, str | int | float) or isinstance(entry, bool):
            raise RowRejected(f"option entries must be text, got {type(entry).__name__}")
        entry = str(entry).strip()
        if entry:
            entries.append(entry)
    return entries


def normalize_options(entries: list[str]) -> list[str]:
    """'A. text' lines. Unlettered lists get letters in order; lettered ones keep their letters."""
    if not entries:
        return []
    parsed = [split_option(e) for e in entries]
    if all(p is None for p in parsed):
        if len(entries) > 26:
            raise RowRejected(f"too many options ({len(entries)}) to letter A–Z")
        return [f"{chr(ord('A') + i)}. {text}" for i, text in enumerate(entries)]
    if any(p is None for p in parsed):
        bare = next(e for e, p in zip(entries, parsed, strict=True) if p is None)
        raise RowRejected(f"options mix lettered and unlettered entries: {bare!r}")
    seen: set[str] = set()
    out = []
    for letter, text in parsed:  # type: ignore[misc]
        if letter in seen:
            raise RowRejected(f"duplicate option letter '{letter}'")
        if not text:
            raise RowRejected(f"option {letter} has no text")
        seen.add(letter)
        out.append(f"{letter}. {text}")
    return out


def letter_span(letters: list[str]) -> str:
    """'A–D' for a run of consecutive letters, 'A, C, D' otherwise (for reject reasons)."""
    codes = [ord(c) for c in letters]
    if len(codes) > 1 and codes == list(range(codes[0], codes[0] + len(codes))):
        return f"{letters[0]}–{letters[-1]}"
    return ", ".join(letters)


# "B", "b", "B.", "(B)", "B)", "B. text", "B: text".
_ANSWER_LETTER_RE = re.compile(r"^\(?([A-Za-z])\)?(?:\s*[.):：]\s*(.*))?$", re.DOTALL)


def multiple_choice_answer(solution: str, options: list[str]) -> str:
    """The answer as a bare option letter.

    Accepts "B", "b", "(B)", "B." and "B. text"; failing those, an answer equal (case-insensitively)
    to exactly one option's text maps to that option's letter.
    """
    letters = [o[0] for o in options]
    match = _ANSWER_LETTER_RE.match(solution)
    if match is not None:
        letter = match.group(1).upper()
        if letter in letters:
            return letter
    wanted = " ".join(solution.split()).casefold()
    hits = [o[0] for o in options if " ".join(o[3:].split()).casefold() == wanted]
    if len(hits) == 1:
        return hits[0]
    raise RowRejected(f"answer '{solution}' is not one of the options {letter_span(letters)}")


def check_number(solution: str, problem_type: str) -> None:
    """Numerical / regression answers must parse (thousands commas allowed, as Video-R1's reward does).

    The text is kept as written: the numerical reward compares whether a decimal point is present.
    """
    try:
        number = float(solution.replace(",", ""))
    except ValueError:
        raise RowRejected(f"{problem_type} answer '{solution}' is not a number") from None
    if not math.isfinite(number):
        raise RowRejected(f"{problem_type} answer '{solution}' is not a finite number")


def parse_meta(value: Any) -> dict[str, Any]:
    """`meta` as a dict: a dict, a JSON object in a string (CSV, Parquet), or empty."""
    if is_missing(value) or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowRejected(f"meta is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RowRejected(f"meta must be a JSON object, got {type(value).__name__}")
    return jsonable(value)


def media_path_value(fields: dict[str, Any]) -> str:
    value = fields.get("media_path")
    # HF Image/Video features read with decode=False are {"bytes": ..., "path": ...}. With bytes,
    # `path` is only the original basename (save_to_disk embeds the file), which would name the
    # wrong file or none: refuse rather than guess; the stages read media from files.
    if isinstance(value, dict):
        path = value.get("path")
        if value.get("bytes") is not None:
            raise RowRejected(
                f"media embedded as bytes in the dataset (path {path!r}); only media file paths are supported"
            )
        if isinstance(path, str) and path.strip():
            return path
        raise RowRejected("media column holds neither a path nor bytes")
    return text_value(fields, "media_path")


# ---------------------------------------------------------------------------------------------
# The row


def build_sample(prepared: Prepared, *, media_root: Path, default_source: str) -> Sample:
    """Validate canonical fields and build the Sample; raises RowRejected with the reason."""
    fields = prepared.fields
    # Required fields first, in a fixed order, so a row missing several gets a predictable reason.
    for name in ("media_path", "problem", "solution", "problem_type"):
        if is_missing(fields.get(name)):
            raise RowRejected(f"missing field '{name}'")
    problem = text_value(fields, "problem")
    solution = text_value(fields, "solution")
    raw_type = fields.get("problem_type")
    problem_type = normalize_problem_type(raw_type)
    if problem_type is None:
        raise RowRejected(f"unknown problem_type '{raw_type}'")

    raw_media = media_path_value(fields)
    try:
        rel_path, abs_path = resolve_media(media_root, raw_media)
    except UnsafePathError as exc:
        raise RowRejected(exc.reason) from None

    # A known extension decides; otherwise the file's first bytes (an .mts under another name, a
    # video without extension). A missing file with an unknown extension cannot be told apart.
    kind = media_kind(rel_path, abs_path)
    if kind is None:
        suffix = Path(rel_path).suffix
        raise RowRejected(
            f"unsupported media extension '{suffix.lower()}'"
            if suffix
            else f"media path has no extension: {rel_path}"
        )
    data_type = fields.get("data_type")
    if is_missing(data_type) or data_type == "":
        data_type = kind  # inferred from the extension
    elif not isinstance(data_type, str) or data_type.strip().lower() not in DATA_TYPES:
        raise RowRejected(f"unknown data_type '{data_type}' (expected video or image)")
    else:
        data_type = data_type.strip().lower()
        animated = data_type == "video" and Path(rel_path).suffix.lower() in ANIMATED_IMAGE_EXTENSIONS
        if data_type != kind and not animated:
            raise RowRejected(f"data_type '{data_type}' does not match the {kind} file {rel_path}")

    meta = parse_meta(fields.get("meta"))
    entries = option_entries(fields.get("options"))
    if problem_type == MULTIPLE_CHOICE:
        options = normalize_options(entries)
        if not options:
            raise RowRejected("multiple choice without options")
        if len(options) < 2:
            raise RowRejected("multiple choice with a single option")
        solution = multiple_choice_answer(solution, options)
    else:
        # The contract keeps `options` for multiple choice only; keep stray ones where they can be seen.
        options = []
        if entries:
            meta.setdefault("options", entries)
        if problem_type in (NUMERICAL, REGRESSION):
            check_number(solution, problem_type)

    source = fields.get("data_source")
    if is_missing(source) or (isinstance(source, str) and not source.strip()):
        source = default_source
    elif not isinstance(source, str):
        raise RowRejected(f"data_source must be text, got {type(source).__name__}")
    source = source.strip()

    sid = sample_id(source, rel_path, problem)
    for key, value in prepared.meta.items():
        meta.setdefault(key, jsonable(value))
    for key, value in prepared.extra.items():
        # An empty cell carries nothing, and skipping it keeps a CSV (which has every column on
        # every row, empty cells read as missing) and a JSONL (which leaves keys out) equal.
        if not is_missing(value) and value != "":
            meta.setdefault(key, jsonable(value))
    source_id = fields.get("id")
    # The source's own id is kept for tracing back, unless it is just our id (our own export read
    # back), so that Sample -> file -> Sample round-trips exactly.
    if not is_missing(source_id) and source_id != "" and jsonable(source_id) != sid:
        meta.setdefault("source_id", jsonable(source_id))

    return Sample(
        id=sid,
        media_path=rel_path,
        data_type=data_type,
        problem=problem,
        solution=solution,
        problem_type=problem_type,
        data_source=source,
        options=options,
        meta=meta,
    )


def build_rows(
    records: Iterable[RawRecord],
    prepare: Callable[[dict[str, Any]], Prepared],
    *,
    media_root: Path,
    default_source: str,
) -> Iterator[SourceRow]:
    """The shared driver: records in, one SourceRow per record out, same order, lazily.

    A second row with the same sample id (same source, media path and question) is rejected: every
    stage table is keyed by that id, so a duplicate would silently overwrite the first's results.
    """
    first_seen: dict[str, int] = {}  # ids only (16 chars each): fine at 100k+ rows
    for rec in records:
        if rec.record is None:
            yield SourceRow(rec.index, None, REJECTED, rec.error or "unreadable row", rec.raw)
            continue
        try:
            sample = build_sample(prepare(rec.record), media_root=media_root, default_source=default_source)
        except RowRejected as exc:
            yield SourceRow(rec.index, None, REJECTED, exc.reason, rec.raw)
            continue
        first = first_seen.setdefault(sample.id, rec.index)
        if first != rec.index:
            yield SourceRow(
                rec.index,
                None,
                REJECTED,
                f"duplicate of row {first} (same data_source, media path and question; id {sample.id})",
                rec.raw,
            )
            continue
        yield SourceRow(rec.index, sample, OK, "", rec.raw)
