"""Publish configuration (the recipe's `publish:` slice)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class PublishConfig(BaseModel):
    """Where and how the curated sets are published.

    name: dataset name, the folder under `out_dir` (`<out_dir>/<name>/<version>/{cot,rl}`).
    version: version label; default `v<YYYYMMDD-HHMMSS>` (UTC). The folder is `<version>-<content
        hash>`, so two publishes of the same rows are recognisable and never overwrite different data.
    test_fraction: share of samples in a `test` split, chosen by a hash of the sample id (a sample
        lands in the same split in every publish, CoT and RL alike). 0 = train only.
    license: Hub licence id for the cards. Default "other": the rows inherit their sources' licences.
    pretty_name / tags: card metadata (tags are added to the built-in ones).
    templates_dir: card templates; default the repository's `data_cards/`.
    histogram_bins: bins of the CoT length histogram in the CoT card.
    max_reason_rows: longest rejection table in a card (the rest is summed in one line).
    push_to_hub / hub_token_env / hub_private: upload the sets after publishing, to
        `<push_to_hub>-cot` and `<push_to_hub>-rl`, with the token read from that env var at call time.
    """

    model_config = ConfigDict(extra="forbid")

    out_dir: Path = Path("published")
    name: str = "videorft"
    version: str | None = None
    test_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    license: str = "other"
    pretty_name: str | None = None
    tags: list[str] = Field(default_factory=list)
    templates_dir: Path | None = None
    histogram_bins: int = Field(10, ge=1, le=50)
    max_reason_rows: int = Field(40, ge=1)
    push_to_hub: str | None = None
    hub_token_env: str = "HF_TOKEN"
    hub_private: bool = True

    @field_validator("name", "version")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        # Both become folder names: no separators, no leading dot (a hidden folder), no "..".
        if value is not None and (not _NAME_RE.match(value) or ".." in value):
            raise ValueError(f"{value!r} must be letters, digits, '.', '_' or '-' (no leading '.', no '/')")
        return value
