"""Progress records of shard tasks, as small JSON files in the run folder, and their sum per stage.

A shard task writes `progress/<stage>-<shard>.json` (rows done of its total, ok / rejected /
failed, LLM requests and cache hits) at most every few seconds while it works, and once more when
it is finished. The flow process reads them all to log one progress line per stage (flows/
progress.py). Files, not callbacks: shard tasks may run in other processes (Dask or Ray workers)
that share only the run folder. The shard's Parquet file is still written whole at the end; these
records are only ever a view of work in progress.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROGRESS_DIR = "progress"
# A shard rewrites its record at most this often (one small file per shard: cheap at any scale).
WRITE_EVERY_S = 2.0


def progress_dir(run_dir: Path) -> Path:
    return Path(run_dir) / PROGRESS_DIR


def record_path(run_dir: Path, stage: str, shard: int) -> Path:
    return progress_dir(run_dir) / f"{stage}-{shard:05d}.json"


def clear_records(run_dir: Path) -> None:
    """A run starts: the records of an earlier run of this folder say nothing about this one."""
    d = progress_dir(run_dir)
    if d.is_dir():
        for p in d.glob("*.json"):
            p.unlink(missing_ok=True)


@dataclass
class ShardRecord:
    stage: str
    shard: int
    total: int = 0  # rows entering this stage in this shard
    done: int = 0  # rows with a result (reused + computed so far)
    reused: int = 0
    ok: int = 0
    rejected: int = 0
    failed: int = 0
    llm_requests: int = 0
    llm_cache_hits: int = 0
    started: float = 0.0
    updated: float = 0.0
    finished: bool = False


class ShardProgress:
    """The record one shard task keeps up to date (thread-safe: rows finish on the gateway loop)."""

    def __init__(self, run_dir: Path, stage: str, shard: int, total: int, every_s: float = WRITE_EVERY_S):
        self._path = record_path(run_dir, stage, shard)
        self._every_s = every_s
        self._lock = threading.Lock()
        now = time.time()
        self.record = ShardRecord(stage=stage, shard=shard, total=total, started=now, updated=now)
        self._written = 0.0
        self._write()

    def reused(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            r = self.record
            r.reused += len(rows)
            for row in rows:
                self._count(row)
        self._maybe_write(force=True)

    def row_done(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._count(row)
            r = self.record
            r.llm_requests += int(row.get("requests") or 0)
            r.llm_cache_hits += int(row.get("cache_hits") or 0)
        self._maybe_write()

    def finish(self, ok: int, rejected: int, failed: int, llm: dict[str, int]) -> None:
        """The shard file is written: the record now holds the shard's final counts."""
        with self._lock:
            r = self.record
            r.ok, r.rejected, r.failed = ok, rejected, failed
            r.done = r.total = ok + rejected + failed
            r.llm_requests = int(llm.get("llm_requests", 0))
            r.llm_cache_hits = int(llm.get("llm_cache_hits", 0))
            r.finished = True
        self._maybe_write(force=True)

    def _count(self, row: dict[str, Any]) -> None:
        r = self.record
        r.done += 1
        status = row.get("status")
        if status == "ok":
            r.ok += 1
        elif status == "rejected":
            r.rejected += 1
        else:
            r.failed += 1

    def _maybe_write(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._written < self._every_s:
            return
        self._write()

    def _write(self) -> None:
        with self._lock:
            self.record.updated = self._written = time.time()
            data = json.dumps(asdict(self.record)).encode()
        try:
            _replace_file(self._path, data)
        except OSError:  # progress is a view; never a reason for a shard to fail
            pass


def _replace_file(path: Path, data: bytes) -> None:
    """Write to a temporary file and rename over `path` (readers see a whole record, never half).
    No fsync: a record lost in a crash costs nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_records(run_dir: Path) -> list[ShardRecord]:
    out = []
    d = progress_dir(run_dir)
    if not d.is_dir():
        return out
    for p in d.glob("*.json"):
        try:
            out.append(ShardRecord(**json.loads(p.read_text())))
        except (OSError, ValueError, TypeError):  # replaced or removed while we read: skip this time
            continue
    return out


@dataclass
class StageProgress:
    """One stage's progress summed over its shard records."""

    stage: str
    shards: int  # shards in the run
    shards_started: int = 0
    shards_finished: int = 0
    total: int = 0  # rows entering the stage (estimated where `exact` is False)
    exact: bool = True
    done: int = 0
    reused: int = 0
    ok: int = 0
    rejected: int = 0
    failed: int = 0
    llm_requests: int = 0
    llm_cache_hits: int = 0
    started: float = 0.0
    updated: float = 0.0

    @property
    def finished(self) -> bool:
        return self.shards > 0 and self.shards_finished >= self.shards

    def rate(self, now: float) -> float:
        """Rows computed per second since the stage's first shard started (reused rows are free)."""
        elapsed = now - self.started
        computed = self.done - self.reused
        return computed / elapsed if elapsed > 0 and computed > 0 else 0.0

    def eta_s(self, now: float) -> float | None:
        left = max(0, self.total - self.done)
        if left == 0:
            return 0.0
        rate = self.rate(now)
        return left / rate if rate > 0 else None


def summarize(
    records: list[ShardRecord], stages: list[str], shards: int, source_ok: list[int] | None = None
) -> dict[str, StageProgress]:
    """Sum the records per stage. A shard a stage has not started yet counts with the rows that
    will enter it: exact when the stage before finished that shard (its ok rows), else estimated
    from the rows the stage before lets through so far. `source_ok`: ok rows per sources shard."""
    by_key = {(r.stage, r.shard): r for r in records if r.shard < shards}
    out: dict[str, StageProgress] = {}
    # Rows entering the first row stage, per shard: the ok rows of `sources`.
    upstream: list[tuple[float, bool]] = [(float(n), True) for n in (source_ok or [0] * shards)]
    for stage in stages:
        sp = StageProgress(stage=stage, shards=shards)
        mine: list[tuple[float, bool]] = []
        passed = entered = 0
        for shard in range(shards):
            r = by_key.get((stage, shard))
            if r is None:
                mine.append(upstream[shard] if shard < len(upstream) else (0.0, False))
                continue
            mine.append((float(r.total), True))
            sp.shards_started += 1
            sp.shards_finished += int(r.finished)
            for name in ("done", "reused", "ok", "rejected", "failed", "llm_requests", "llm_cache_hits"):
                setattr(sp, name, getattr(sp, name) + getattr(r, name))
            sp.started = min(sp.started, r.started) if sp.started else r.started
            sp.updated = max(sp.updated, r.updated)
            if r.finished:
                passed, entered = passed + r.ok, entered + r.total
        sp.total = round(sum(n for n, _ in mine))
        sp.exact = all(exact for _, exact in mine)
        out[stage] = sp
        # What reaches the next stage per shard: this stage's ok rows where it finished the shard,
        # else its inputs scaled by the share it let through so far (1 before any shard finished).
        ratio = passed / entered if entered else 1.0
        upstream = []
        for shard, (n, exact) in enumerate(mine):
            r = by_key.get((stage, shard))
            upstream.append((float(r.ok), exact) if r is not None and r.finished else (n * ratio, False))
    return out


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_line(sp: StageProgress, now: float) -> str:
    """`caption: 256/300 rows (85%), 12.4 rows/s, ETA 0:04, llm requests 512, cache hits 10,
    rejected 3, failed 0, shards 4/5 done`"""
    total = sp.total
    pct = f" ({100 * sp.done / total:.0f}%)" if total else ""
    approx = "" if sp.exact else "~"
    eta = sp.eta_s(now)
    parts = [
        f"{sp.stage}: {sp.done}/{approx}{total} rows{pct}",
        f"{sp.rate(now):.1f} rows/s",
        f"ETA {_clock(eta)}" if eta is not None else "ETA unknown",
    ]
    if sp.llm_requests or sp.llm_cache_hits:
        parts.append(f"llm requests {sp.llm_requests}, cache hits {sp.llm_cache_hits}")
    parts.append(f"rejected {sp.rejected}, failed {sp.failed}")
    parts.append(f"shards {sp.shards_finished}/{sp.shards} done")
    return ", ".join(parts)
