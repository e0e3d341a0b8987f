"""Version folders of a published dataset: which one holds given content, and `latest`.

A version folder is `<label>-<content hash[:8]>` and its `publish.json` records the full content
hash (of both sets' rows, in order, with their splits). Publishing the same rows again must not
make a new, identical version nor move `latest`: `same_content_version` finds the folder that
already holds them.
"""

from __future__ import annotations

import json
from pathlib import Path

from curation.store.atomic import atomic_write_bytes

LATEST = "latest"


def read_latest(root: Path) -> str | None:
    try:
        return (Path(root) / LATEST).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def write_latest(root: Path, version: str) -> bool:
    """Point `latest` at `version`; returns False when it already did (the file is not rewritten)."""
    if read_latest(root) == version:
        return False
    atomic_write_bytes(Path(root) / LATEST, (version + "\n").encode("utf-8"))
    return True


def _content_hash(folder: Path) -> str | None:
    try:
        return json.loads((folder / "publish.json").read_text(encoding="utf-8")).get("content_hash")
    except (OSError, ValueError, AttributeError):
        return None


def same_content_version(root: Path, content_hash: str, label: str | None = None) -> str | None:
    """The version folder under `root` whose publish.json has `content_hash`, else None.

    `label`: the recipe's explicit `publish.version`; then only a folder with that label counts
    (asking for "v2" gets a "v2-…" folder even if "v1-…" holds the same rows). Several matches: the
    one `latest` names, else the newest by name (labels default to a UTC timestamp).
    """
    root = Path(root)
    suffix = f"-{content_hash[:8]}"
    matches = sorted(
        p.name
        for p in root.glob(f"*{suffix}")
        if p.is_dir()
        and not p.name.startswith(".")
        and (label is None or p.name == f"{label}{suffix}")
        and _content_hash(p) == content_hash
    )
    if not matches:
        return None
    latest = read_latest(root)
    return latest if latest in matches else matches[-1]
