"""The two published sets: row shapes, Arrow schemas, split assignment and the on-disk writers.

Each set folder holds the same rows twice, so every consumer reads it natively:
`data/<split>-00000-of-00001.parquet` (Hub layout, `load_dataset("parquet", ...)`) and a
`DatasetDict.save_to_disk` copy (`dataset_dict.json`, `<split>/`) for `datasets.load_from_disk`.
Rows are streamed into Parquet in batches, and the Parquet files batch by batch into the
`load_from_disk` copy: memory stays flat in the size of the set.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_S = pa.string()

# Column order of the CoT set: the Video-R1 fields first, then lineage.
COT_SCHEMA = pa.schema(
    [
        ("id", _S),
        ("media_path", _S),
        ("data_type", _S),
        ("problem", _S),
        ("options", pa.list_(_S)),
        ("problem_type", _S),
        ("process", _S),
        ("solution", _S),
        ("data_source", _S),
        ("prompt_hash_caption", _S),
        ("prompt_hash_draft", _S),
        ("prompt_hash_revise", _S),
        ("model_caption", _S),
        ("model_draft", _S),
        ("model_revise", _S),
        ("run_name", _S),
    ]
)
RL_SCHEMA = pa.schema(
    [
        ("id", _S),
        ("media_path", _S),
        ("data_type", _S),
        ("problem", _S),
        ("options", pa.list_(_S)),
        ("problem_type", _S),
        ("solution", _S),
        ("data_source", _S),
    ]
)

COLUMN_DOCS: dict[str, str] = {
    "id": "stable sample id (hash of source, media path and question)",
    "media_path": "media file, relative to the source's media root",
    "data_type": '"video" or "image"',
    "problem": "the question",
    "options": 'multiple-choice options as "A. text" lines (empty otherwise)',
    "problem_type": 'Video-R1 spelling: "multiple choice", "numerical", "OCR", "free-form", "regression"',
    "process": 'the revised chain of thought, "<think>…</think>"',
    "solution": 'ground-truth answer, "<answer>…</answer>"',
    "data_source": "source dataset / subset name",
    "prompt_hash_caption": "content hash of the caption prompt",
    "prompt_hash_draft": "content hash of the draft (reasoning) prompt",
    "prompt_hash_revise": "content hash of the revision prompt",
    "model_caption": "captioning model",
    "model_draft": "reasoning model that drafted the CoT",
    "model_revise": "VLM that revised the CoT against the video",
    "run_name": "curation run that produced the row",
}


def split_of(sample_id: str, test_fraction: float) -> str:
    """ "test" for a stable `test_fraction` share of ids, "train" otherwise (same id, same split)."""
    if test_fraction <= 0:
        return "train"
    bucket = int(hashlib.sha256(f"split/v1/{sample_id}".encode()).hexdigest()[:8], 16) / 16**8
    return "test" if bucket < test_fraction else "train"


def parquet_name(split: str) -> str:
    return f"{split}-00000-of-00001.parquet"


class SetWriter:
    """Streams rows of one set into `data/<split>-00000-of-00001.parquet`, per split.

    Keeps a running content hash of the rows (canonical JSON, in order, with their split) so the
    published version can carry a hash of exactly what it contains.
    """

    def __init__(self, set_dir: Path, schema: pa.Schema, batch_rows: int = 1000):
        self.set_dir = Path(set_dir)
        self.schema = schema
        self.batch_rows = batch_rows
        self.counts: dict[str, int] = {}
        self._buffers: dict[str, list[dict[str, Any]]] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._hash = hashlib.sha256()

    def path(self, split: str) -> Path:
        return self.set_dir / "data" / parquet_name(split)

    def add(self, split: str, row: dict[str, Any]) -> None:
        self._hash.update(json.dumps([split, row], sort_keys=True, ensure_ascii=False).encode("utf-8"))
        self._hash.update(b"\n")
        self._buffers.setdefault(split, []).append(row)
        self.counts[split] = self.counts.get(split, 0) + 1
        if len(self._buffers[split]) >= self.batch_rows:
            self._flush(split)

    def _flush(self, split: str) -> None:
        rows = self._buffers.get(split) or []
        if split not in self._writers:
            self.path(split).parent.mkdir(parents=True, exist_ok=True)
            self._writers[split] = pq.ParquetWriter(self.path(split), self.schema, compression="zstd")
        if rows:
            table = pa.Table.from_pylist(rows, schema=self.schema)
            self._writers[split].write_table(table)
        self._buffers[split] = []

    def close(self) -> dict[str, int]:
        """Finish every file; "train" always exists (possibly empty). Returns rows per split."""
        self.counts.setdefault("train", 0)
        for split in self.counts:
            self._flush(split)
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        return dict(self.counts)

    @property
    def content_hash(self) -> str:
        return self._hash.hexdigest()

    def splits(self) -> list[str]:
        """Splits in Hub order: train first."""
        return sorted(self.counts, key=lambda s: (s != "train", s))

    def save_for_load_from_disk(self) -> None:
        """Write the `DatasetDict.save_to_disk` layout next to `data/`, streamed from the Parquet files.

        `DatasetDict.save_to_disk` wants the whole table in memory (815 MiB for 75,000 CoT rows),
        so the same files are written batch by batch with the library's own `ArrowWriter`: one
        Arrow shard per split plus the `state.json` / `dataset_info.json` / `dataset_dict.json`
        that `datasets.load_from_disk` reads. Memory stays at one batch whatever the set's size.
        """
        from datasets import DatasetInfo, Features, config
        from datasets.arrow_writer import ArrowWriter
        from datasets.utils.py_utils import asdict

        features = Features.from_arrow_schema(self.schema)
        info = asdict(DatasetInfo(features=features))
        shard = "data-00000-of-00001.arrow"
        for split in self.splits():
            split_dir = self.set_dir / split
            split_dir.mkdir(parents=True, exist_ok=True)
            writer = ArrowWriter(features=features, path=str(split_dir / shard))
            try:
                for batch in pq.ParquetFile(self.path(split)).iter_batches(batch_size=self.batch_rows):
                    writer.write_table(pa.Table.from_batches([batch], schema=self.schema))
                writer.finalize()
            finally:
                writer.close()
            state = {
                "_data_files": [{"filename": shard}],
                # Same rows, same fingerprint: the content hash of the set and the split's name.
                "_fingerprint": hashlib.sha256(f"{self.content_hash}/{split}".encode()).hexdigest()[:16],
                "_format_columns": None,
                "_format_kwargs": {},
                "_format_type": None,
                "_output_all_columns": False,
                "_split": split,
            }
            (split_dir / config.DATASET_STATE_JSON_FILENAME).write_text(
                json.dumps(state, indent=2, sort_keys=True)
            )
            (split_dir / config.DATASET_INFO_FILENAME).write_text(
                json.dumps({k: info[k] for k in sorted(info)}, indent=2)
            )
        (self.set_dir / config.DATASETDICT_JSON_FILENAME).write_text(json.dumps({"splits": self.splits()}))
