"""The run manifest: what ran, with which configuration, and where every row went.

Per stage: `in`, `ok`, `rejected`, `failed` (in == ok + rejected + failed), `reused` (rows whose
content key already had a result), `computed`, `seconds`, LLM `llm_requests` / `llm_cache_hits`
and token counts, `llm_retries` (attempts after the first) and `llm_errors` (failed attempts; by
kind in `llm_errors_by_kind`). Reason tables (`reasons`) count rejections and failures by reason.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curation.store.atomic import atomic_write_json

LLM_COUNTERS = (
    "llm_requests",
    "llm_retries",
    "llm_cache_hits",
    "llm_errors",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
)


@dataclass
class StageStats:
    """Counts of one stage (or one shard of it); shards add up with `merge`."""

    stage: str
    in_: int = 0
    ok: int = 0
    rejected: int = 0
    failed: int = 0
    reused: int = 0
    computed: int = 0
    seconds: float = 0.0
    started: float = 0.0
    ended: float = 0.0
    shards: int = 0
    shards_skipped: int = 0
    llm: dict[str, int] = field(default_factory=dict)
    # Failed LLM attempts by kind ("http_500", "timeout", "dropped", ...); they sum to llm_errors.
    llm_errors_by_kind: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)

    def count_row(self, status: str, reason: str) -> None:
        self.in_ += 1
        if status == "ok":
            self.ok += 1
        elif status == "rejected":
            self.rejected += 1
            self.reasons[f"rejected: {reason}"] = self.reasons.get(f"rejected: {reason}", 0) + 1
        else:
            self.failed += 1
            self.reasons[f"failed: {reason}"] = self.reasons.get(f"failed: {reason}", 0) + 1

    def merge(self, other: StageStats) -> None:
        for name in ("in_", "ok", "rejected", "failed", "reused", "computed", "shards", "shards_skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds = max(self.seconds, other.seconds)
        if other.started and (not self.started or other.started < self.started):
            self.started = other.started
        self.ended = max(self.ended, other.ended)
        for k, v in other.llm.items():
            self.llm[k] = self.llm.get(k, 0) + v
        for k, v in other.reasons.items():
            self.reasons[k] = self.reasons.get(k, 0) + v
        for k, v in other.llm_errors_by_kind.items():
            self.llm_errors_by_kind[k] = self.llm_errors_by_kind.get(k, 0) + v

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["in"] = d.pop("in_")
        d.pop("stage")
        llm = d.pop("llm")
        for name in LLM_COUNTERS:
            d[name] = int(llm.get(name, 0))
        d["seconds"] = round(float(d["seconds"]), 3)
        d.pop("started")
        d.pop("ended")
        d["accounted"] = d["in"] == d["ok"] + d["rejected"] + d["failed"]
        return d

    @classmethod
    def from_dict(cls, stage: str, d: dict[str, Any]) -> StageStats:
        return cls(
            stage=stage,
            in_=d.get("in", 0),
            ok=d.get("ok", 0),
            rejected=d.get("rejected", 0),
            failed=d.get("failed", 0),
            reused=d.get("reused", 0),
            computed=d.get("computed", 0),
            seconds=d.get("seconds", 0.0),
            shards=d.get("shards", 0),
            shards_skipped=d.get("shards_skipped", 0),
            llm={k: d.get(k, 0) for k in LLM_COUNTERS},
            reasons=dict(d.get("reasons", {})),
            llm_errors_by_kind=dict(d.get("llm_errors_by_kind", {})),
        )


class Manifest:
    """`runs/<name>/manifest.json`, rewritten atomically on every update (thread-safe)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.data: dict[str, Any] = self._load()

    def _load(self) -> dict[str, Any]:
        if self.path.exists():
            return json.loads(self.path.read_text())
        return {"stages": {}, "history": []}

    def update(self, **fields: Any) -> None:
        with self._lock:
            self.data.update(fields)
            atomic_write_json(self.path, self.data)

    def set_stage(self, stats: StageStats, **extra: Any) -> None:
        with self._lock:
            entry = stats.to_dict()
            entry.update(extra)
            self.data.setdefault("stages", {})[stats.stage] = entry
            atomic_write_json(self.path, self.data)

    def stage(self, name: str) -> dict[str, Any] | None:
        return self.data.get("stages", {}).get(name)

    def append_history(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.data.setdefault("history", []).append(event)
            atomic_write_json(self.path, self.data)
