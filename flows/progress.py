"""Progress bars for long CLI work (rich): one bar per stage, advancing as its shards finish.

The curate flow reports to whatever sink is installed here; the CLI installs a rich one when it
runs in a terminal. Deployments and tests install none, and get plain structured logs instead.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


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
