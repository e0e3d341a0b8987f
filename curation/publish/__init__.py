"""Publishing a curation run: Hugging Face datasets (Parquet + save_to_disk), Video-R1 JSONL
exports, dataset cards, and an optional Hub upload.

    from curation.publish import PublishConfig, publish_run
    result = publish_run(RunStore(run_dir), Path("published"), PublishConfig(), run_name="demo", lineage={})

Attributes are imported on first use, so `curation.publish.config` (needed to validate a recipe)
stays cheap to import.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curation.publish.config import PublishConfig
    from curation.publish.hub import push_to_hub
    from curation.publish.run import PublishResult, publish_run

_LAZY = {
    "PublishConfig": "curation.publish.config",
    "PublishResult": "curation.publish.run",
    "publish_run": "curation.publish.run",
    "push_to_hub": "curation.publish.hub",
}

__all__ = ["PublishConfig", "PublishResult", "publish_run", "push_to_hub"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'curation.publish' has no attribute {name!r}")
