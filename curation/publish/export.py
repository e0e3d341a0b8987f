"""Exports of the published sets for the peers' own training scripts: one file per trainer.

- **Video-R1** (`tulerfeng/Video-R1`, `sft_video.py` / `grpo.py`): `videor1/<set>-<split>.json`, a JSON
  array like Video-R1's released `Video-R1-COT-165k.json` / `Video-R1-260k.json`. Fields
  (shared/reference/videorft.md §2.1): `problem_id` (int), `problem`, `data_type`, `problem_type`
  (Video-R1 spellings), `options` ("A. text" lines; empty for non-MC rows), `process` (CoT set only),
  `solution` ("<answer>…</answer>"), `path` ("./" + media_path: the scripts strip "./" and prepend
  their media root), `data_source`. Video-R1 appends "Options:\\n" + the `options` lines to the
  problem itself.
- **VideoRFT** (`QiWang98/VideoRFT`, `sft_video.py` / `grpo.py`): `videorft/<set>-<split>.jsonl`, the
  names its scripts use (`VideoRFT-CoT-Data.jsonl`). VideoRFT builds the prompt from `problem` alone and
  never reads `options`, so a multiple-choice `problem` carries its options, one per line after the
  question (the layout VideoRFT's `eval_bench.py` gives benchmark questions: question, then
  "A. …", "B. …"). A row that arrived that way (a VideoRFT-style source) gets its original text back
  unchanged. There is no `options` field: the options live in `problem` only.

Column types are the same on every row whatever the row order, because the peers load these files
with `Dataset.from_json`, which fixes the schema from the first 10 MB chunk of a JSON-lines file: an
`"options": []` row types the column `list<null>` and a later chunk with real options then fails
("Couldn't cast array of type string to null"). So the VideoRFT JSONL has no list column at all, and
the Video-R1 file is a JSON array, which `datasets` reads whole (as it reads Video-R1's own files).

`problem_id` is the source's own `problem_id` (Video-R1 / VideoRFT files carry one) where it is an
integer; rows without one get ids after the largest source id, in source order (positions 0, 1, 2,
... when the source has none), so a sample has the same id in every export and no two ids collide.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from curation.records import MULTIPLE_CHOICE, OK, normalize_problem_type

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
VIDEORFT_FIELDS_RL: tuple[str, ...] = tuple(f for f in VIDEOR1_FIELDS_RL if f != "options")
VIDEORFT_FIELDS_COT: tuple[str, ...] = tuple(f for f in VIDEOR1_FIELDS_COT if f != "options")

VIDEOR1_DIR = "videor1"
VIDEORFT_DIR = "videorft"


def _path(media_path: Any) -> str:
    media = str(media_path)
    return media if media.startswith("./") else "./" + media.lstrip("/")


def videor1_record(row: dict[str, Any], problem_id: int) -> dict[str, Any]:
    """A published set row (CoT or RL) as a Video-R1 record; `process` only when the row has one."""
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
    record["path"] = _path(row["media_path"])
    record["data_source"] = row["data_source"]
    return record


def videorft_problem(row: dict[str, Any], original_problem: str | None = None) -> str:
    """`problem` as VideoRFT's scripts need it: for multiple choice, the question then one option per line.

    `original_problem` is the source's own text when the options were split out of it at ingest
    (meta["original_problem"]): it is given back unchanged, so a VideoRFT file round-trips exactly.
    """
    problem = str(row["problem"])
    options = [str(o).strip() for o in (row.get("options") or []) if str(o).strip()]
    if normalize_problem_type(row.get("problem_type")) != MULTIPLE_CHOICE or not options:
        return problem
    if original_problem:
        return original_problem
    return "\n".join([problem.rstrip(), *options])


def videorft_record(
    row: dict[str, Any], problem_id: int, original_problem: str | None = None
) -> dict[str, Any]:
    """A published set row as a VideoRFT record: options inside `problem`, no `options` field."""
    record = videor1_record(row, problem_id)
    record["problem"] = videorft_problem(row, original_problem)
    del record["options"]
    return record


def source_problem_id(meta: dict[str, Any] | None) -> int | None:
    """The source's integer `problem_id` (an int, or a string of digits), else None."""
    value = (meta or {}).get("problem_id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def parse_meta(meta: Any) -> dict[str, Any]:
    """A stage row's `meta` (a JSON string in the run store) as a dict; anything else is empty."""
    if isinstance(meta, dict):
        return meta
    if isinstance(meta, str) and meta:
        try:
            value = json.loads(meta)
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


class ProblemIds:
    """Export `problem_id` per sample id: the source's own where it has one, fresh ones otherwise."""

    def __init__(self, rows: Iterable[tuple[str, dict[str, Any]]]):
        """`rows`: (sample id, meta) of every published (ok) source row, in source order."""
        order: list[str] = []
        kept: dict[str, int] = {}
        for sid, meta in rows:
            order.append(sid)
            pid = source_problem_id(meta)
            if pid is not None:
                kept[sid] = pid
        next_id = max(kept.values(), default=-1) + 1
        self._ids = dict(kept)
        for sid in order:
            if sid not in self._ids:
                self._ids[sid] = next_id
                next_id += 1
        self.from_source = len(kept)

    @classmethod
    def from_store(cls, store: Any) -> ProblemIds:
        """One pass over the `sources` table's ids and meta (a few MB even at 100k rows)."""

        def rows() -> Iterable[tuple[str, dict[str, Any]]]:
            for shard in store.shards("sources"):
                for src in store.read_shard("sources", shard, ["id", "status", "meta"]) or []:
                    if src.get("status") == OK:
                        yield src["id"], parse_meta(src.get("meta"))

        return cls(rows())

    def __getitem__(self, sid: str) -> int:
        return self._ids[sid]


class _Writer:
    """One open file per split under `out_dir`, named `<set>-<split><suffix>`."""

    suffix = ""

    def __init__(self, out_dir: Path, set_name: str):
        self.out_dir = Path(out_dir)
        self.set_name = set_name
        self.paths: dict[str, Path] = {}
        self._files: dict[str, IO[str]] = {}
        self._counts: dict[str, int] = {}

    def _file(self, split: str) -> IO[str]:
        if split not in self._files:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"{self.set_name}-{split}{self.suffix}"
            self.paths[split] = path
            self._files[split] = path.open("w", encoding="utf-8")
            self._counts[split] = 0
            self._start(self._files[split])
        return self._files[split]

    def _start(self, fh: IO[str]) -> None:
        pass

    def _end(self, fh: IO[str], rows: int) -> None:
        pass

    def write(self, split: str, record: dict[str, Any]) -> None:
        fh = self._file(split)
        self._write(fh, json.dumps(record, ensure_ascii=False), self._counts[split])
        self._counts[split] += 1

    def _write(self, fh: IO[str], line: str, index: int) -> None:
        raise NotImplementedError

    def close(self) -> dict[str, Path]:
        """Close every file; a train file always exists (possibly with no rows). Returns split -> path."""
        self._file("train")
        for split, fh in self._files.items():
            self._end(fh, self._counts[split])
            fh.close()
        self._files.clear()
        return dict(self.paths)


class JsonArrayWriter(_Writer):
    """A JSON array written row by row (`[`, one record per line, `]`): memory stays flat."""

    suffix = ".json"

    def _start(self, fh: IO[str]) -> None:
        fh.write("[")

    def _write(self, fh: IO[str], line: str, index: int) -> None:
        fh.write(("\n" if index == 0 else ",\n") + line)

    def _end(self, fh: IO[str], rows: int) -> None:
        fh.write("\n]\n" if rows else "]\n")


class JsonlWriter(_Writer):
    suffix = ".jsonl"

    def _write(self, fh: IO[str], line: str, index: int) -> None:
        fh.write(line + "\n")


class TrainerExports:
    """Both exports of one set: `<set_dir>/videor1/<set>-<split>.json` and `<set_dir>/videorft/<set>-<split>.jsonl`."""

    def __init__(self, set_dir: Path, set_name: str):
        self.set_name = set_name
        self.videor1 = JsonArrayWriter(Path(set_dir) / VIDEOR1_DIR, set_name)
        self.videorft = JsonlWriter(Path(set_dir) / VIDEORFT_DIR, set_name)

    def add(
        self, split: str, row: dict[str, Any], problem_id: int, original_problem: str | None = None
    ) -> None:
        self.videor1.write(split, videor1_record(row, problem_id))
        self.videorft.write(split, videorft_record(row, problem_id, original_problem))

    def close(self) -> dict[str, Path]:
        """Keys `<set>-<split>` (the Video-R1 file, as before) and `videorft-<set>-<split>`."""
        out = {f"{self.set_name}-{s}": p for s, p in self.videor1.close().items()}
        out |= {f"videorft-{self.set_name}-{s}": p for s, p in self.videorft.close().items()}
        return out
