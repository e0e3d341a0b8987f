"""Where a source's rows come from and how to read them.

`extra="forbid"` everywhere: a typo in a recipe (`media_roots:`) fails at load time naming the bad
key, instead of silently falling back to a default and reading the wrong media.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The canonical column names every reader maps rows into (a `column_map` may only target these).
CANONICAL_COLUMNS: tuple[str, ...] = (
    "media_path",
    "data_type",
    "problem",
    "options",
    "solution",
    "problem_type",
    "data_source",
    "meta",
    "id",
)

SourceKind = Literal["annotations", "videor1", "hf", "auto"]
FileFormat = Literal["auto", "jsonl", "json", "csv", "parquet"]


class SourceConfig(BaseModel):
    """One input source.

    kind: "annotations" (generic columns), "videor1" (Video-R1 / VideoRFT JSON), "hf" (a dataset
        saved with `save_to_disk`), or "auto" (a directory is "hf"; a file is "videor1" when its
        first row looks like Video-R1 (`problem_id`/`process` fields or `<answer>` tags), else
        "annotations").
    path: the annotation file, the JSON/JSONL file, or the dataset directory.
    media_root: folder media paths are relative to; default: the folder holding `path`.
    format: file format; "auto" goes by extension (.jsonl/.ndjson, .json, .csv/.tsv, .parquet/.pq),
        and a .json file whose first line is a whole JSON object is read as JSONL.
    data_source: name for rows that carry none; default: the file stem (dataset folder name for hf).
    split: the DatasetDict split for "hf" (ignored when the folder holds a single Dataset).
    limit: read at most this many source rows (rejected rows count too).
    column_map: user column -> canonical column, applied before the built-in aliases,
        e.g. {"question": "problem", "answer": "solution", "video": "media_path"}.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: SourceKind = "auto"
    path: Path
    media_root: Path | None = None
    format: FileFormat = "auto"
    data_source: str | None = None
    split: str = "train"
    limit: int | None = Field(default=None, ge=0)
    column_map: dict[str, str] = Field(default_factory=dict)

    @field_validator("column_map")
    @classmethod
    def _known_targets(cls, value: dict[str, str]) -> dict[str, str]:
        # Name the bad entry: a map to "questoin" would otherwise leave `problem` missing on every row.
        for source, target in value.items():
            if not source:
                raise ValueError("column_map has an empty source column name")
            if target not in CANONICAL_COLUMNS:
                raise ValueError(
                    f"column_map[{source!r}] = {target!r} is not a known column; use one of {', '.join(CANONICAL_COLUMNS)}"
                )
        targets = list(value.values())
        dupes = sorted({t for t in targets if targets.count(t) > 1})
        if dupes:
            raise ValueError(f"column_map maps several columns onto {', '.join(dupes)}")
        return value

    @field_validator("data_source")
    @classmethod
    def _non_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("data_source must not be blank (leave it out to use the file stem)")
        return value

    def resolved_media_root(self) -> Path:
        if self.media_root is not None:
            return self.media_root.expanduser()
        # For a file and for a dataset directory alike: the folder that holds it.
        return self.path.expanduser().absolute().parent

    def default_data_source(self) -> str:
        if self.data_source is not None:
            return self.data_source
        path = self.path.expanduser().absolute()
        return path.name if path.is_dir() else path.stem
