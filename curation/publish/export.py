"""Video-R1 / VideoRFT JSONL export of the published sets.

One JSON object per line with Video-R1's field names (shared/reference/videorft.md §2.1):
`problem_id` (int), `problem`, `data_type`, `problem_type` (Video-R1 spellings), `options`,
`process` (CoT set only), `solution` ("<answer>…</answer>"), `path` ("./" + media_path: Video-R1's
loaders strip "./" and prepend their media root), `data_source`.

`problem_id` is the sample's position in the RL set (all valid questions, source order), so a sample
has the same id in both exports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from curation.records import normalize_problem_type

VIDEOR1_FIELDS_RL: tuple[str, ...] = (
    "problem_id",
    "problem",
    "data_type",
    "problem_type",
    "options",
    "solution",
    "path",
    "data_source",
)
VIDEOR1_FIELDS_COT: tuple[str, ...] = (*VIDEOR1_FIELDS_RL[:5], "process", *VIDEOR1_FIELDS_RL[5:])


def videor1_record(row: dict[str, Any], problem_id: int) -> dict[str, Any]:
    """A published set row (CoT or RL) as a Video-R1 record; `process` only when the row has one."""
    media = str(row["media_path"])
    record: dict[str, Any] = {
        "problem_id": int(problem_id),
        "problem": row["problem"],
        "data_type": row["data_type"],
        "problem_type": normalize_problem_type(row["problem_type"]) or row["problem_type"],
        "options": list(row.get("options") or []),
    }
    if "process" in row:
        record["process"] = row["process"]
    record["solution"] = row["solution"]
    record["path"] = media if media.startswith("./") else "./" + media.lstrip("/")
    record["data_source"] = row["data_source"]
    return record


class JsonlExporter:
    """Streams Video-R1 records of one set into `<dir>/<set>-<split>.jsonl`, one file per split."""

    def __init__(self, out_dir: Path, set_name: str):
        self.out_dir = Path(out_dir)
        self.set_name = set_name
        self.paths: dict[str, Path] = {}
        self._files: dict[str, IO[str]] = {}

    def add(self, split: str, row: dict[str, Any], problem_id: int) -> None:
        if split not in self._files:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"{self.set_name}-{split}.jsonl"
            self.paths[split] = path
            self._files[split] = path.open("w", encoding="utf-8")
        self._files[split].write(json.dumps(videor1_record(row, problem_id), ensure_ascii=False) + "\n")

    def close(self) -> dict[str, Path]:
        """Close every file; a train file always exists (possibly empty). Returns split -> path."""
        if "train" not in self._files and "train" not in self.paths:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.paths["train"] = self.out_dir / f"{self.set_name}-train.jsonl"
            self.paths["train"].write_text("")
        for fh in self._files.values():
            fh.close()
        self._files.clear()
        return dict(self.paths)
