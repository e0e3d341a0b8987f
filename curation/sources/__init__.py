"""Sources: read annotation files, Video-R1 JSON and saved HF datasets into Samples.

    for row in read_source(SourceConfig(path="data/annotations.jsonl")):
        row.status, row.reason, row.sample, row.raw

Every source row comes out exactly once, in order, as `ok` (with its Sample) or `rejected` (with a
specific reason and the raw row), so `rows in == ok + rejected` always holds. Column rules:
annotations.py; Video-R1 specifics: videor1.py; validation rules: validate.py; path safety: paths.py.

Kept light on purpose (no pyarrow / datasets at import): the synthetic generator and the CLI import
this package too.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain, islice

from curation.sources.annotations import canonical_fields, file_records, prepare_generic
from curation.sources.config import SourceConfig
from curation.sources.paths import UnsafePathError, media_kind, resolve_media
from curation.sources.validate import RawRecord, SourceRow, build_rows
from curation.sources.videor1 import looks_like_videor1, prepare_videor1

__all__ = [
    "SourceConfig",
    "SourceRow",
    "UnsafePathError",
    "media_kind",
    "read_source",
    "resolve_media",
]

# How many unreadable rows to look past when guessing the dialect from the first good row.
_SNIFF_ROWS = 100


def read_source(cfg: SourceConfig) -> Iterator[SourceRow]:
    """Stream a source's rows as SourceRows.

    Config problems (missing file, unknown format, missing split) raise here, at call time; row
    problems never raise, they become rejected rows. The file is read lazily, as rows are consumed.
    """
    path = cfg.path.expanduser()
    if cfg.kind == "hf" or (cfg.kind == "auto" and path.is_dir()):
        from curation.sources.hf_disk import hf_records  # deferred: imports `datasets`

        records = hf_records(cfg)
        # A saved dataset can hold either dialect (e.g. Video-R1 pushed to the hub as-is).
        dialect = "auto"
    else:
        records = file_records(cfg)
        dialect = cfg.kind  # "annotations" | "videor1" | "auto"
    return _rows(cfg, records, dialect)


def _rows(cfg: SourceConfig, records: Iterator[RawRecord], dialect: str) -> Iterator[SourceRow]:
    if cfg.limit is not None:
        records = islice(records, cfg.limit)
    if dialect == "auto":
        dialect, records = sniff_dialect(records, cfg.column_map)
    prepare = prepare_videor1(cfg.column_map) if dialect == "videor1" else prepare_generic(cfg.column_map)
    yield from build_rows(
        records,
        prepare,
        media_root=cfg.resolved_media_root(),
        default_source=cfg.default_data_source(),
    )


def sniff_dialect(
    records: Iterator[RawRecord], column_map: dict[str, str] | None = None
) -> tuple[str, Iterator[RawRecord]]:
    """("videor1" | "annotations", the same records) judged by the first row that parsed.

    Decided once per source, not per row, so that every row of a file follows the same rules.
    """
    head: list[RawRecord] = []
    dialect = "annotations"
    for rec in records:
        head.append(rec)
        if rec.record is not None:
            prepared = canonical_fields(rec.record, column_map)
            if looks_like_videor1({**prepared.extra, **prepared.fields}):
                dialect = "videor1"
            break
        if len(head) >= _SNIFF_ROWS:
            break
    return dialect, chain(head, records)
