"""Helpers for end-to-end curate runs against the simulated endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def deep_update(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_update(base[k], v)
        else:
            base[k] = v
    return base


@pytest.fixture
def sim_recipe():
    """Build a Recipe from configs/demo.yaml pointed at a synthetic dir and a sim endpoint."""
    from curation.config import recipe_from_dict

    def make(synth: Path, base_url: str, runs_dir: Path, run: str = "r", **patch: Any):
        data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
        for ep in data["llm"]["endpoints"].values():
            ep["base_url"] = base_url
        data["source"].update(path=str(synth / "annotations.jsonl"), media_root=str(synth))
        data["run"].update(runs_dir=str(runs_dir), name=run)
        data.setdefault("publish", {})["out_dir"] = str(runs_dir / "published")
        deep_update(data, patch)
        return recipe_from_dict(data, origin="test")

    return make
