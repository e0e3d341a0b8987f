"""The run store: one folder per run, a manifest and one sharded Parquet table per stage."""

from curation.store.atomic import atomic_write_bytes, atomic_write_json
from curation.store.manifest import Manifest, StageStats
from curation.store.run_store import RunStore

__all__ = ["RunStore", "Manifest", "StageStats", "atomic_write_bytes", "atomic_write_json"]
