"""Generic annotation files: JSONL, JSON list, CSV, Parquet, with user column names.

One reader per format, each a generator of RawRecords in file order: JSONL line by line, Parquet by
record batches, CSV row by row, so 100k+ rows never sit in memory at once (a JSON list has to be
parsed whole; that is the format's cost). A line that does not parse becomes a record carrying its
error, and reading goes on.

Column rules (applied to every reader, Video-R1 and Hugging Face included):
- `column_map` renames user columns first (an explicit mapping wins over a column already named
  like its target; the displaced column is kept in meta).
- Then built-in aliases, first non-empty wins:
  media_path <- media_path | path | video | image | media;  problem <- problem | question;
  solution <- solution | answer.  Other canonical columns go by their own name: data_type,
  options, problem_type, data_source, meta, id.
- `options`: a list, a JSON list in a string, "A. x|B. y" (pipe-separated: the CSV spelling; use a
  JSON list when an option contains "|"), or one option per line. Unlettered options get A, B, ...
- `data_type` is inferred from the media extension when missing (video: .mp4 .avi .mov .mkv .webm
  .m4v; image: .jpg .jpeg .png .webp .bmp .gif); anything else is rejected.
- `meta`: a dict or a JSON object in a string. Columns no rule claims are kept in meta under their
  own name (meta's own keys win). `id` never sets identity: the stable id is computed, and the
  source's id is kept as meta["source_id"] (unless it equals the computed id).
- CSV: every cell is text; an empty cell is a missing value.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from curation.sources.config import SourceConfig
from curation.sources.validate import Prepared, RawRecord, is_missing, raw_json

ALIASES: dict[str, tuple[str, ...]] = {
    "media_path": ("media_path", "path", "video", "image", "media"),
    "problem": ("problem", "question"),
    "solution": ("solution", "answer"),
    "data_type": ("data_type",),
    "options": ("options",),
    "problem_type": ("problem_type",),
    "data_source": ("data_source",),
    "meta": ("meta",),
    "id": ("id",),
}

PARQUET_BATCH_ROWS = 1024

# ---------------------------------------------------------------------------------------------
# Formats


def detect_format(path: Path) -> str:
    """jsonl | json | csv | parquet, from the extension; a .json file is JSONL unless it starts with '['."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        # Video-R1 ships JSON lists, VideoRFT JSONL under either extension: look at the first byte.
        return "json" if _first_char(path) == "[" else "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ValueError(
        f"cannot tell the format of {path} from its extension; set format to jsonl, json, csv or parquet"
    )


def _first_char(path: Path) -> str:
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        while chunk := fh.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped[0]
    return ""


def iter_jsonl(path: Path) -> Iterator[RawRecord]:
    """One record per non-blank line; `raw` is the line itself, so even a broken line is kept."""
    with open(path, "rb") as fh:
        index = 0
        for lineno, line in enumerate(fh, start=1):
            if lineno == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                text = line.decode("utf-8", errors="replace").rstrip("\r\n")
                yield RawRecord(
                    index, None, json.dumps(text, ensure_ascii=False), f"line {lineno} is not UTF-8: {exc}"
                )
                index += 1
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RawRecord(index, None, text, f"invalid JSON on line {lineno}: {exc}")
            else:
                if isinstance(obj, dict):
                    yield RawRecord(index, obj, text)
                else:
                    yield RawRecord(
                        index, None, text, f"line {lineno} is not a JSON object (got {type(obj).__name__})"
                    )
            index += 1


def iter_json_list(path: Path) -> Iterator[RawRecord]:
    """A JSON list has to be parsed whole; done at call time so a broken file fails at once."""
    with open(path, encoding="utf-8-sig") as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ValueError(f"{path} must hold a JSON list of rows, got a {type(data).__name__}")
    return _json_list_records(data)


def _json_list_records(data: list[Any]) -> Iterator[RawRecord]:
    for index, item in enumerate(data):
        raw = json.dumps(item, ensure_ascii=False)
        if isinstance(item, dict):
            yield RawRecord(index, item, raw)
        else:
            yield RawRecord(index, None, raw, f"row {index} is not a JSON object (got {type(item).__name__})")


def iter_csv(path: Path) -> Iterator[RawRecord]:
    # Questions with long option lists or meta JSON exceed csv's 128 KiB default field limit.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        for index, row in enumerate(reader):
            if None in row:  # DictReader files surplus cells under the key None
                raw = json.dumps(
                    {**{k: v for k, v in row.items() if k is not None}, "": row[None]}, ensure_ascii=False
                )
                yield RawRecord(index, None, raw, f"row {index} has more cells than the header has columns")
                continue
            # A short row gives None for the missing cells; an empty cell is a missing value in CSV.
            record = {k: (None if v is None or v == "" else v) for k, v in row.items()}
            yield RawRecord(index, record, json.dumps(row, ensure_ascii=False))


def iter_parquet(path: Path, batch_rows: int = PARQUET_BATCH_ROWS) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq  # deferred: only Parquet sources pay for the import

    index = 0
    with pq.ParquetFile(path) as pf:
        for batch in pf.iter_batches(batch_size=batch_rows):
            for row in batch.to_pylist():
                yield RawRecord(index, row, raw_json(row))
                index += 1


def iter_records(path: Path, fmt: str) -> Iterator[RawRecord]:
    readers: dict[str, Callable[[Path], Iterator[RawRecord]]] = {
        "jsonl": iter_jsonl,
        "json": iter_json_list,
        "csv": iter_csv,
        "parquet": iter_parquet,
    }
    return readers[fmt](path)


def file_records(cfg: SourceConfig) -> Iterator[RawRecord]:
    """Check the file now (a config error, not a row error), then read it lazily."""
    path = cfg.path.expanduser()
    if not path.exists():
        raise FileNotFoundError(f"source file not found: {path}")
    if not path.is_file():
        raise ValueError(f"source path is not a file: {path} (use kind: hf for a dataset folder)")
    fmt = detect_format(path) if cfg.format == "auto" else cfg.format
    return iter_records(path, fmt)


# ---------------------------------------------------------------------------------------------
# Columns


def _blank(value: Any) -> bool:
    return is_missing(value) or (isinstance(value, str) and not value.strip())


def canonical_fields(record: dict[str, Any], column_map: dict[str, str] | None = None) -> Prepared:
    """Map a record's columns onto canonical names (see the module docstring for the rules)."""
    column_map = column_map or {}
    renamed: dict[str, Any] = {k: v for k, v in record.items() if k not in column_map}
    extra: dict[str, Any] = {}
    for source, target in column_map.items():
        if source in record:
            if target in renamed:
                extra[target] = renamed.pop(target)  # displaced by the user's explicit mapping
            renamed[target] = record[source]

    fields: dict[str, Any] = {}
    used: set[str] = set()
    for canonical, names in ALIASES.items():
        present = [n for n in names if n in renamed]
        if not present:
            continue
        # First non-empty alias wins; if all are empty keep the first, so the reason says "empty".
        chosen = next((n for n in present if not _blank(renamed[n])), present[0])
        fields[canonical] = renamed[chosen]
        used.add(chosen)
    for key, value in renamed.items():
        if key not in used:
            extra.setdefault(key, value)
    return Prepared(fields=fields, extra=extra)


def prepare_generic(column_map: dict[str, str]) -> Callable[[dict[str, Any]], Prepared]:
    def prepare(record: dict[str, Any]) -> Prepared:
        return canonical_fields(record, column_map)

    return prepare
