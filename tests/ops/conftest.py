"""The `procs` fixture: background processes (server, workers) killed at the end of each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect_server import Processes


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    p = Processes(log_dir)
    try:
        yield p
    finally:
        p.stop_all()
