"""Progress of a curate run: log lines for everyone, and rich bars for a terminal.

- `ProgressReporter`: a thread of the flow process that, every `run.progress_interval_s`, sums
  the shard tasks' progress records (curation/progress_files.py) and logs one line per active
  stage through the flow run's logger: rows done / total, rate, ETA, LLM requests, failures. It
  is what a person sees under `nohup`, a worker or a deployment (live in the Prefect UI's logs),
  and it works wherever the shard tasks run, since they report through files in the run folder.
- `progress_bars()`: the rich bars the CLI installs when stderr is a terminal (one bar per stage,
  advancing as its shards finish). Deployments and tests install none.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from curation.progress_files import progress_line, read_records, summarize


class ProgressSink(Protocol):
    def start(self, stages: list[str], shards: int) -> None: ...
    def advance(self, stage: str) -> None: ...
    def stop(self) -> None: ...


_SINK: ProgressSink | None = None


def current() -> ProgressSink | None:
    return _SINK


class RichStageProgress:
    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("shards"),
            TimeElapsedColumn(),
            transient=False,
        )
        self._tasks: dict[str, int] = {}
        self._lock = threading.Lock()

    def start(self, stages: list[str], shards: int) -> None:
        with self._lock:
            self._progress.start()
            for stage in stages:
                self._tasks[stage] = self._progress.add_task(stage, total=shards)

    def advance(self, stage: str) -> None:
        with self._lock:
            if stage in self._tasks:
                self._progress.advance(self._tasks[stage])

    def stop(self) -> None:
        with self._lock:
            self._progress.stop()


@contextmanager
def progress_bars(enabled: bool | None = None) -> Iterator[None]:
    """Install rich progress bars for the duration (default: only when stderr is a terminal)."""
    global _SINK
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield
        return
    sink = RichStageProgress()
    _SINK = sink
    try:
        yield
    finally:
        _SINK = None
        sink.stop()


class ProgressReporter:
    """Logs one progress line per active stage every `interval_s` seconds, from a daemon thread.

    A stage is reported from its first started shard on; the interval in which it finishes gets
    its last line (100%), then it is quiet. `report_once()` is the same step without the thread.
    """

    def __init__(
        self,
        run_dir: Path,
        stages: list[str],
        shards: int,
        log: Callable[[str], None],
        interval_s: float,
    ) -> None:
        self._run_dir = Path(run_dir)
        self._stages = list(stages)
        self._shards = shards
        self._log = log
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._finished: set[str] = set()
        self._source_ok: list[int] | None = None
        self._thread = threading.Thread(target=self._loop, name="videorft-progress", daemon=True)

    def __enter__(self) -> ProgressReporter:
        if self._stages and self._shards:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.report_once()
            except Exception:  # noqa: BLE001 - a progress line is never worth a failed run
                pass

    def report_once(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        if self._source_ok is None:
            self._source_ok = source_ok_counts(self._run_dir, self._shards)
        summary = summarize(read_records(self._run_dir), self._stages, self._shards, self._source_ok)
        lines = []
        for stage in self._stages:
            sp = summary[stage]
            if not sp.shards_started or stage in self._finished:
                continue
            if sp.finished:
                self._finished.add(stage)
            lines.append(progress_line(sp, now))
        for line in lines:
            self._log(line)
        return lines


def source_ok_counts(run_dir: Path, shards: int) -> list[int]:
    """Rows each shard brings into the first row stage (the ok rows of `sources`)."""
    from curation.store import RunStore

    store = RunStore(run_dir)
    return [
        sum(1 for r in store.read_shard("sources", s, columns=["status"]) or [] if r.get("status") == "ok")
        for s in range(shards)
    ]
