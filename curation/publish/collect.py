"""Reading a run store for publishing: which samples are kept, their lineage, and the run's counts.

Everything streams shard by shard (`RunStore.iter_rows` with only the columns needed). What stays in
memory is bounded by the output: the ids of kept samples with their CoT text and lineage, and small
counters (per stage and reason, per filter step).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from curation.records import OK
from curation.store import RunStore

log = logging.getLogger(__name__)

# Stage tables in pipeline order; any other stage folder found in the run is reported after them.
PIPELINE_STAGES: tuple[str, ...] = ("sources", "extract", "caption", "draft", "revise", "filter")
LLM_STAGES: tuple[str, ...] = ("caption", "draft", "revise")
# An optional table of global dedup verdicts (`id`, `status`, `reason`), if a runner writes one.
DEDUP_STAGE = "dedup"


# Keys (split on "_", "-", ".") naming credentials, or where an environment's values end up
# (endpoints, local paths, env var names): dropped from anything a card or publish.json shows.
_SECRET_KEY_RE = re.compile(
    r"(?i)(?:^|[_\-. ])(?:api_?key|keys?|tokens?|secrets?|passw(?:or)?d|auth\w*|credentials?|cookies?|bearer"
    r"|urls?|hosts?|endpoints?|paths?|dirs?|root|home|env)(?:$|[_\-. ])"
)
_SECRET_VALUE_RE = re.compile(
    r"(?i)\b(sk-[a-z0-9_-]{8,}|hf_[a-z0-9]{8,}|gh[pousr]_[a-z0-9]{8,}|xox[abpr]-[a-z0-9-]{8,}|"
    r"AKIA[0-9A-Z]{12,}|bearer\s+\S+)|https?://\S+|(?<![\w.])/(?:home|root|Users|tmp|var|mnt|data|work)/\S*"
)


@dataclass
class StageSummary:
    stage: str
    rows: int = 0
    ok: int = 0
    rejected: int = 0
    failed: int = 0
    reasons: Counter = field(default_factory=Counter)  # (status, reason) -> rows

    def count(self, status: str | None, reason: str | None) -> None:
        self.rows += 1
        if status == OK:
            self.ok += 1
            return
        if status == "rejected":
            self.rejected += 1
        else:
            self.failed += 1
        self.reasons[(status or "missing status", reason or "")] += 1


@dataclass
class Lineage:
    model_caption: str = ""
    model_draft: str = ""
    model_revise: str = ""
    prompt_hash_caption: str = ""
    prompt_hash_draft: str = ""
    prompt_hash_revise: str = ""
    # stage -> the model name the recipe asked for (the model_* fields hold what answered).
    requested: dict[str, str] = field(default_factory=dict)


@dataclass
class RunSummary:
    """What publish needs from the run besides the sources rows themselves."""

    stages: dict[str, StageSummary] = field(default_factory=dict)
    # Ids with filter status ok (and not dedup-rejected): ids only, the texts are read per shard.
    kept: set[str] = field(default_factory=set)
    # filter steps: step -> rows it would drop (any verdict), reason counts, rows it owns (first fail)
    step_drops: Counter = field(default_factory=Counter)
    step_reasons: Counter = field(default_factory=Counter)  # (step, reason) -> rows
    step_first: Counter = field(default_factory=Counter)
    step_order: list[str] = field(default_factory=list)


def stage_names(store: RunStore) -> list[str]:
    """Stages with a table in this run: pipeline order first, then any others (sorted)."""
    present = [s for s in PIPELINE_STAGES if store.shards(s)]
    extra = sorted(
        p.name
        for p in store.run_dir.iterdir()
        if p.is_dir() and p.name not in PIPELINE_STAGES and p.name != "frames" and store.shards(p.name)
    )
    return present + extra


def _summarise_filter(store: RunStore, summary: RunSummary) -> None:
    stage = StageSummary("filter")
    for row in store.iter_rows("filter", columns=["id", "status", "reason", "verdicts"]):
        stage.count(row.get("status"), row.get("reason"))
        if row.get("status") == OK:
            summary.kept.add(row["id"])
        reason = row.get("reason") or ""
        if row.get("status") != OK and ":" in reason:
            summary.step_first[reason.split(":", 1)[0]] += 1
        raw = row.get("verdicts")
        if not raw:
            continue
        try:
            verdicts = json.loads(raw)
        except (TypeError, ValueError):
            log.warning("filter row %s has unreadable verdicts", row.get("id"))
            continue
        for step, v in verdicts.items():
            if step not in summary.step_order:
                summary.step_order.append(step)
            if not v.get("kept", True):
                summary.step_drops[step] += 1
                summary.step_reasons[(step, v.get("reason") or "")] += 1
    summary.stages["filter"] = stage


def summarise_run(store: RunStore) -> RunSummary:
    """Counts and kept ids: one pass per stage table (only the columns needed), filter first."""
    summary = RunSummary()
    names = stage_names(store)
    if "filter" in names:
        _summarise_filter(store, summary)
    if DEDUP_STAGE in names:
        stage = StageSummary(DEDUP_STAGE)
        for row in store.iter_rows(DEDUP_STAGE, columns=["id", "status", "reason"]):
            stage.count(row.get("status"), row.get("reason"))
            if row.get("status") != OK:
                summary.kept.discard(row["id"])
        summary.stages[DEDUP_STAGE] = stage
    for name in names:
        if name in ("filter", DEDUP_STAGE):
            continue
        stage = StageSummary(name)
        for row in store.iter_rows(name, columns=["id", "status", "reason"]):
            stage.count(row.get("status"), row.get("reason"))
        summary.stages[name] = stage
    # Pipeline stages first (in order), then the rest: the card's tables follow the pipeline.
    order = {name: i for i, name in enumerate(names)}
    summary.stages = dict(sorted(summary.stages.items(), key=lambda kv: order.get(kv[0], len(order))))
    return summary


def extracted_ids(store: RunStore, shard: int) -> set[str]:
    """Ids of one shard whose media extracted ok: the only questions a trainer can load media for.

    A question whose media failed (missing, zero-byte, truncated, audio-only, undecodable) is not
    published in any set; its extract reason is in the card's rejection table.
    """
    rows = store.read_shard("extract", shard, ["id", "status"]) or []
    return {row["id"] for row in rows if row.get("status") == OK}


def kept_cots(store: RunStore, shard: int, kept: set[str]) -> dict[str, tuple[str, Lineage]]:
    """Revised CoT and lineage of the kept ids in one shard.

    Every stage's shard `i` holds rows of sources shard `i` (the runner derives each stage's shard
    from the same sources shard), so publish joins shard by shard and never holds a whole run's
    texts: 75,000 CoTs are ~250 MiB of Python strings.
    """
    lineage: dict[str, Lineage] = {}
    process: dict[str, str] = {}
    for name in LLM_STAGES:
        columns = ["id", "status", "model", "served_model", "prompt_hash"] + (
            ["process"] if name == "revise" else []
        )
        for row in store.read_shard(name, shard, columns) or []:
            sid = row.get("id")
            if sid not in kept or row.get("status") != OK:
                continue
            lin = lineage.setdefault(sid, Lineage())
            # The model that answered (rows from before `served_model` existed: the one asked for).
            setattr(lin, f"model_{name}", row.get("served_model") or row.get("model") or "")
            lin.requested[name] = row.get("model") or ""
            setattr(lin, f"prompt_hash_{name}", row.get("prompt_hash") or "")
            if name == "revise" and row.get("process"):
                process[sid] = row["process"]
    return {sid: (text, lineage[sid]) for sid, text in process.items()}


# An absolute POSIX path inside free text (not a URL's path, not "3/16"): at least two segments.
_ABS_PATH_RE = re.compile(r"(?<![\w.:/~-])/(?:[\w.~+@-]+/)+([\w.~+@-]*)")


def redact_paths(text: str) -> str:
    """Absolute local paths in a reason reduced to their file name ("…/clip.mp4"): rejection reasons
    come from decoders and annotation files, and a card must not show the machine's layout."""
    return _ABS_PATH_RE.sub(lambda m: f"…/{m.group(1)}" if m.group(1) else "…/", text or "")


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Dotted key -> short string, for the card's lineage list."""
    if isinstance(value, dict):
        items: list[tuple[str, str]] = []
        for k, v in value.items():
            items.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return items
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, list | tuple) else str(value)
    return [(prefix, text if len(text) <= 160 else text[:157] + "...")]


def sanitize(value: Any) -> Any:
    """A copy of `value` without secrets: keys that name credentials, URLs, hosts or local paths are
    dropped; strings that look like tokens are redacted. Used on everything a card or publish.json
    shows from the caller's lineage."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if _SECRET_KEY_RE.search(str(k)):
                continue
            out[str(k)] = sanitize(v)
        return out
    if isinstance(value, list | tuple):
        return [sanitize(v) for v in value]
    if isinstance(value, str):
        return _SECRET_VALUE_RE.sub("[redacted]", value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return sanitize(str(value))
