"""A Hugging Face dataset saved on disk (`Dataset.save_to_disk` / `DatasetDict.save_to_disk`).

Same column rules as the generic annotations (see annotations.py). Rows are read one at a time from
the memory-mapped Arrow files, so a large dataset is never materialised as Python objects.
Media columns typed as `datasets.Image` / `datasets.Video` are read with decode=False: we want the
file path (the extract stage decodes), and a row that embeds only bytes is rejected with that reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curation.sources.config import SourceConfig
from curation.sources.validate import RawRecord, raw_json


def load_split(path: Path, split: str) -> Any:
    """The Dataset at `path`, or its `split` when `path` holds a DatasetDict."""
    from datasets import Dataset, DatasetDict, load_from_disk  # deferred: importing datasets costs ~1 s

    obj = load_from_disk(str(path))
    if isinstance(obj, DatasetDict):
        if split not in obj:
            raise ValueError(f"split {split!r} not found in {path}; it has: {', '.join(obj)}")
        obj = obj[split]
    if not isinstance(obj, Dataset):
        raise ValueError(f"{path} does not hold a Dataset (got {type(obj).__name__})")
    return _undecoded_media(obj)


def _undecoded_media(ds: Any) -> Any:
    import datasets

    for name, feature in ds.features.items():
        for media_type in (datasets.Image, datasets.Video):
            if isinstance(feature, media_type) and feature.decode:
                ds = ds.cast_column(name, media_type(decode=False))
    return ds


def iter_dataset(ds: Any) -> Iterator[RawRecord]:
    for index, row in enumerate(ds):
        yield RawRecord(index, row, raw_json(row))


def hf_records(cfg: SourceConfig) -> Iterator[RawRecord]:
    """Load now (a missing folder or split is a config error), iterate lazily."""
    path = cfg.path.expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"hf source must be a folder written by save_to_disk: {path}")
    return iter_dataset(load_split(path, cfg.split))
