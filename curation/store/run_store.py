"""Sharded Parquet tables, one folder per stage, inside one run folder.

Layout::

    runs/<name>/
      manifest.json
      sources/shard-00000.parquet    # one file per shard, rewritten whole and atomically
      extract/shard-00000.parquet
      ...
      frames/<media key>/<video config hash>/000.jpg   # one folder per video file, shared by its questions

A shard file is the unit of resume: it is written only when its shard is complete, so a killed run
leaves either the old file or the new one. Every row carries `id`, `key`, `status`, `reason`.
pandas (`pd.read_parquet(run/"extract")`) and `datasets` open any stage folder directly.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation.store.atomic import atomic_write_bytes
from curation.store.manifest import Manifest

_SHARD_RE = re.compile(r"^shard-(\d{5})\.parquet$")


def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}.parquet"


class RunStore:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest(self.run_dir / "manifest.json")

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def frames_dir(self) -> Path:
        return self.run_dir / "frames"

    def stage_dir(self, stage: str) -> Path:
        return self.run_dir / stage

    def shard_path(self, stage: str, shard: int) -> Path:
        return self.stage_dir(stage) / shard_name(shard)

    def shards(self, stage: str) -> list[int]:
        d = self.stage_dir(stage)
        if not d.is_dir():
            return []
        out = []
        for p in d.iterdir():
            m = _SHARD_RE.match(p.name)
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    def has_shard(self, stage: str, shard: int) -> bool:
        return self.shard_path(stage, shard).exists()

    def write_shard(self, stage: str, shard: int, rows: list[dict[str, Any]]) -> Path:
        """Write a whole shard atomically. An empty shard is written too (it is a finished shard)."""
        table = rows_to_table(rows)
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        path = self.shard_path(stage, shard)
        atomic_write_bytes(path, buf.getvalue())
        return path

    def read_shard(
        self, stage: str, shard: int, columns: list[str] | None = None
    ) -> list[dict[str, Any]] | None:
        path = self.shard_path(stage, shard)
        if not path.exists():
            return None
        table = pq.read_table(path, columns=_existing(path, columns))
        return table.to_pylist()

    def iter_rows(self, stage: str, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Stream a stage's rows shard by shard (memory bounded by one shard)."""
        for shard in self.shards(stage):
            rows = self.read_shard(stage, shard, columns)
            if rows:
                yield from rows

    def read_stage(self, stage: str, columns: list[str] | None = None):
        """The whole stage table as a pandas DataFrame (for inspection, reports, small runs)."""
        import pandas as pd

        frames = []
        for shard in self.shards(stage):
            path = self.shard_path(stage, shard)
            frames.append(pq.read_table(path, columns=_existing(path, columns)).to_pandas())
        if not frames:
            return pd.DataFrame(columns=columns or [])
        return pd.concat(frames, ignore_index=True)

    def drop_shards_from(self, stage: str, first_stale: int) -> int:
        """Remove shard files beyond the current shard count (the source shrank)."""
        removed = 0
        for shard in self.shards(stage):
            if shard >= first_stale:
                self.shard_path(stage, shard).unlink(missing_ok=True)
                removed += 1
        return removed


def _existing(path: Path, columns: list[str] | None) -> list[str] | None:
    if columns is None:
        return None
    names = set(pq.read_schema(path).names)
    return [c for c in columns if c in names]


def rows_to_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    rows = list(rows)
    if not rows:
        return pa.table(
            {
                "id": pa.array([], pa.string()),
                "key": pa.array([], pa.string()),
                "status": pa.array([], pa.string()),
                "reason": pa.array([], pa.string()),
            }
        )
    # Union of keys in first-seen order: rows of one stage may differ (a failed row lacks outputs).
    names: dict[str, None] = {}
    for r in rows:
        for k in r:
            names.setdefault(k, None)
    cols = {name: [r.get(name) for r in rows] for name in names}
    return pa.table(cols)
