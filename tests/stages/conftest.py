"""Stage-test fixtures; the helpers themselves live in `stage_fakes.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.prompts import PROMPTS_ROOT, PromptSet, load_prompt


@pytest.fixture(scope="session")
def prompts() -> dict[str, PromptSet]:
    return {name: load_prompt(PROMPTS_ROOT / name) for name in ("caption", "draft", "revise")}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    return d
