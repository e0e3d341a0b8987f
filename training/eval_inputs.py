"""What `videorft eval` evaluates: a Video-R1 evaluation file, or the held-out rows of a published set.

`dataset_name` may be
- a Video-R1 evaluation file (`eval_mvbench.json`, ...; or our own `videor1/*.json` export): read by
  `training.bench_formats`, media resolved against `media_root`, by default the file's folder (where
  Video-R1 keeps the benchmark media); prompt style `auto` means eval_bench.py's prompt;
- a published dataset: the name folder (`published/<name>`, its `latest` version), a version folder
  (`.../<version>`), or a set folder (`.../cot`, `.../rl`; the RL set when not said: it holds every
  valid question), or any `save_to_disk` / parquet / json dataset `training.data.load_rows` reads.

`eval_split: auto` takes the held-out `test` split publish writes when `publish.test_fraction > 0`,
and otherwise the split that exists (`train`), with a warning that the model has seen those rows.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from training.bench_formats import benchmark_of, looks_like_videor1, read_videor1_eval, row_key

logger = logging.getLogger("training.evaluate")

AUTO = "auto"


def resolve_published(path: str | Path) -> Path:
    """A published name or version folder -> its RL set folder; anything else is returned unchanged."""
    p = Path(path)
    if (p / "latest").is_file() and not (p / "dataset_dict.json").exists():
        p = p / (p / "latest").read_text().strip()
    if (p / "publish.json").is_file() and (p / "rl").is_dir():
        p = p / "rl"
    return p


def available_splits(path: Path) -> list[str]:
    if (path / "dataset_dict.json").is_file():
        return list(json.loads((path / "dataset_dict.json").read_text()).get("splits", []))
    names = (
        {f.name.split("-")[0] for f in (path / "data").glob("*.parquet")}
        if (path / "data").is_dir()
        else set()
    )
    return sorted(names, key=lambda s: (s != "train", s))


def pick_split(path: Path, split: str) -> tuple[str, str | None]:
    """(split to read, a note for the tables when it is not a held-out split)."""
    if split != AUTO:
        return split, None
    splits = available_splits(path)
    if "test" in splits:
        return "test", None
    chosen = "train" if "train" in splits or not splits else splits[0]
    note = (
        f"{path} has no held-out `test` split (publish.test_fraction is 0): evaluating on `{chosen}`, "
        "which the model has seen; set publish.test_fraction for a real held-out evaluation"
    )
    logger.warning(note)
    return chosen, note


def load_eval_rows(dataset_name: str, split: str = AUTO) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows to evaluate (each with `index` and `key`) and what the tables say about where they came from."""
    from training.data import load_rows

    path = Path(dataset_name)
    if looks_like_videor1(path):
        rows = read_videor1_eval(path)
        return rows, {"kind": "videor1_eval", "file": str(path), "benchmark": benchmark_of(path)}
    path = resolve_published(path)
    chosen, note = pick_split(path, split) if path.is_dir() else (split if split != AUTO else "train", None)
    rows = load_rows(path, chosen).to_list()
    for i, row in enumerate(rows):
        row["index"] = i
        row["key"] = row_key(i, row)
    info: dict[str, Any] = {"kind": "dataset", "dataset": str(path), "split": chosen}
    if note:
        info["note"] = note
    return rows, info
