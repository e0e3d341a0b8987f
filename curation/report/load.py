"""Read a run folder into one view per sample: the only place the report and `inspect` touch the store.

Everything here is forgiving on purpose: a run stopped with `--until`, a stage written by an older
version without some column, or a sample that failed early all still produce a view. Missing pieces
come back as None (or empty) instead of raising, because a report is most useful on broken runs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Container, Iterable, Iterator
from itertools import zip_longest
from pathlib import Path
from typing import Any

from curation.report.diff import word_diff
from curation.store import RunStore

# Pipeline order; "publish" normally has no table (its output is described in the manifest) but a
# future version might write one, so it is read like the others when present.
STAGES: tuple[str, ...] = ("sources", "extract", "caption", "draft", "revise", "filter", "publish")
LLM_STAGES: tuple[str, ...] = ("caption", "draft", "revise")

_BASE = ["id", "key", "status", "reason"]
_LLM = [
    "model",
    "served_model",
    "prompt_hash",
    "requests",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
]
LLM_FIELDS: tuple[str, ...] = tuple(_LLM)

# Columns each stage contributes to a view. `raw` responses are left out on purpose: they can be
# large and the parsed columns already say what the model meant.
STAGE_COLUMNS: dict[str, list[str] | None] = {
    "sources": _BASE
    + [
        "index",
        "media_path",
        "data_type",
        "problem",
        "solution",
        "problem_type",
        "data_source",
        "options",
        "meta",
    ],
    "extract": _BASE
    + ["duration", "fps", "frame_count", "width", "height", "codec", "reader", "frame_paths", "timestamps"],
    "caption": _BASE + ["caption_json", "video_caption", *_LLM],
    "draft": _BASE + ["draft", "draft_reasoning", "draft_answer", *_LLM],
    "revise": _BASE + ["process", "answer", "revision", *_LLM],
    "filter": _BASE + ["scores", "verdicts"],
    "publish": None,
}

# What the report's totals need of every sample (statuses, reasons, LLM counters, the kept CoT's
# length): the first, cheap pass over a run reads only these; full rows are read for the samples
# the page embeds.
SUMMARY_COLUMNS: dict[str, list[str] | None] = {
    "sources": _BASE + ["index", "problem_type", "data_source"],
    "extract": _BASE,
    "caption": _BASE + _LLM,
    "draft": _BASE + _LLM,
    "revise": _BASE + ["process", *_LLM],
    # Verdicts: the filter funnel counts every step's drops.
    "filter": _BASE + ["verdicts"],
    "publish": None,
}

_THINK_RE = re.compile(r"^\s*<think>\s*(.*?)\s*(?:</think>\s*)?$", re.DOTALL)


def open_run(run_dir: Path | str) -> RunStore:
    """The run's store; refuses a missing folder (RunStore would silently create an empty one)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"no run folder at {path}")
    return RunStore(path)


def present_stages(store: RunStore) -> list[str]:
    """Stages that have at least one shard, in pipeline order."""
    return [s for s in STAGES if store.shards(s)]


def ordered_ids(tables: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Every sample id seen in any stage: source order first (by `index`), then first-seen order."""
    src = tables.get("sources", {})

    def index_of(sid: str) -> float:
        value = src.get(sid, {}).get("index")
        return float(value) if isinstance(value, int | float) and not _isnan(value) else math.inf

    seen: dict[str, None] = {}
    for stage in STAGES:
        for sid in tables.get(stage, {}):
            seen.setdefault(sid, None)
    order = {sid: n for n, sid in enumerate(seen)}
    return sorted(seen, key=lambda sid: (index_of(sid), order[sid]))


def progress(rows: dict[str, dict[str, Any]]) -> tuple[str, str, str]:
    """(stage where the sample stopped, its status there, reason).

    The first non-ok row ends the journey; a sample that is ok everywhere it went "stopped" at the
    last stage it reached (the end of the pipeline, or where a `--until` run ended).
    """
    last = ""
    for stage in STAGES:
        row = rows.get(stage)
        if row is None:
            continue
        last = stage
        status = str(row.get("status") or "failed")
        if status != "ok":
            return stage, status, str(row.get("reason") or "")
    return last, "ok", ""


def parse_json(value: Any) -> Any:
    """A JSON column's value, or the value itself when it is not a JSON string (None for empty)."""
    if value is None or (isinstance(value, float) and _isnan(value)):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return value
    return value


def strip_think(text: str | None) -> str:
    """The CoT without its `<think>` wrapper, so the draft/revision diff compares reasoning only."""
    if not text:
        return ""
    m = _THINK_RE.match(text)
    return m.group(1) if m else text.strip()


def sample_view(sample_id: str, rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One sample across all stages, as plain data (shared by `inspect` and the HTML report)."""
    src = rows.get("sources") or {}
    stopped_at, status, reason = progress(rows)
    draft, revision = _draft(rows.get("draft")), _revision(rows.get("revise"))
    caption = _caption(rows.get("caption"))
    return {
        "id": sample_id,
        "index": _num(src.get("index")),
        "media_path": _str(src.get("media_path")),
        "data_type": _str(src.get("data_type")),
        "problem": _str(src.get("problem")),
        "options": [str(o) for o in _as_list(src.get("options"))],
        "solution": _str(src.get("solution")),
        "problem_type": _str(src.get("problem_type")),
        "data_source": _str(src.get("data_source")),
        "meta": parse_json(src.get("meta")) or {},
        "status": status,
        "stopped_at": stopped_at,
        "reason": reason,
        "stages": {
            s: {"status": _str(r.get("status")), "reason": _str(r.get("reason")), "key": _str(r.get("key"))}
            for s in STAGES
            if (r := rows.get(s)) is not None
        },
        "video": _video(rows.get("extract")),
        "frames": _frames(rows.get("extract")),
        "caption": caption["json"] if caption else None,
        "video_caption": caption["video_caption"] if caption else "",
        "draft": draft,
        "revision": revision,
        # Only when both sides exist: a diff against nothing would just repaint one text.
        "diff": word_diff(draft["text"], revision["text"])
        if draft and revision and draft["text"] and revision["text"]
        else None,
        "filter": _filter(rows.get("filter")),
        "llm": {s: _llm(r) for s in LLM_STAGES if (r := rows.get(s)) is not None},
    }


def _frames(ext: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not ext:
        return []
    paths, stamps = _as_list(ext.get("frame_paths")), _as_list(ext.get("timestamps"))
    return [{"path": str(p), "timestamp": _num(t)} for p, t in zip_longest(paths, stamps) if p is not None]


def _video(ext: dict[str, Any] | None) -> dict[str, Any] | None:
    if not ext:
        return None
    info: dict[str, Any] = {
        k: _num(ext.get(k)) for k in ("duration", "fps", "frame_count", "width", "height")
    }
    info.update(codec=_str(ext.get("codec")), reader=_str(ext.get("reader")))
    return info


def _caption(cap: dict[str, Any] | None) -> dict[str, Any] | None:
    if not cap:
        return None
    parsed = parse_json(cap.get("caption_json"))
    video_caption = _str(cap.get("video_caption"))
    if not video_caption and isinstance(parsed, dict):
        video_caption = _str(parsed.get("video_caption"))
    return {"json": parsed, "video_caption": video_caption}


def _draft_cot(content: str, reasoning: str) -> str:
    """The draft CoT to diff against the revision: the content when it holds prose (a model that
    writes its reasoning out), else the reasoning channel (a `<think>` block or vLLM's
    reasoning_content, when the content is only the `<answer>`)."""
    text = strip_think(content)
    prose = re.sub(r"<answer>.*?</answer>", "", text, flags=re.S).strip()
    return text if prose or not reasoning else reasoning


def _draft(row: dict[str, Any] | None) -> dict[str, str] | None:
    if not row:
        return None
    reasoning = _str(row.get("draft_reasoning"))
    return {
        "text": _draft_cot(_str(row.get("draft")), reasoning),
        "reasoning": reasoning,
        "answer": _str(row.get("draft_answer")),
    }


def _revision(row: dict[str, Any] | None) -> dict[str, str] | None:
    if not row:
        return None
    process = _str(row.get("process"))
    return {
        "text": strip_think(process or _str(row.get("revision"))),
        "process": process,
        "answer": _str(row.get("answer")),
    }


def _filter(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if not row:
        return None
    return {"verdicts": parse_json(row.get("verdicts")) or {}, "scores": parse_json(row.get("scores")) or {}}


def _llm(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: (_str(row.get(k)) if k in _TEXT_FIELDS else _int(row.get(k))) for k in LLM_FIELDS}
    # "model": what answered (rows from before `served_model` was recorded: what was asked for).
    out["requested_model"] = out["model"]
    out["model"] = out.pop("served_model") or out["model"]
    return out


_TEXT_FIELDS = ("model", "served_model", "prompt_hash")


def iter_shard_views(
    store: RunStore,
    columns: dict[str, list[str] | None] = STAGE_COLUMNS,
    ids: Container[str] | None = None,
    shards: Iterable[int] | None = None,
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(shard, its samples' views) for every shard (or those in `shards`), in source order.

    Shard i of every stage holds the samples of the sources' shard i (each stage runs shard by
    shard on the stage before; `curation.runner.stage_inputs`), so joining shard by shard is the
    whole join, and memory stays bounded by one shard of each stage whatever the run's size.
    """
    stages = present_stages(store)
    every = sorted({n for stage in stages for n in store.shards(stage)})
    for shard in every if shards is None else sorted(set(shards) & set(every)):
        tables: dict[str, dict[str, dict[str, Any]]] = {}
        for stage in stages:
            table: dict[str, dict[str, Any]] = {}
            for row in store.read_shard(stage, shard, columns.get(stage)) or []:
                if row.get("id") is not None and (ids is None or str(row["id"]) in ids):
                    table[str(row["id"])] = row
            tables[stage] = table
        yield (
            shard,
            [
                sample_view(sid, {s: t[sid] for s, t in tables.items() if sid in t})
                for sid in ordered_ids(tables)
            ],
        )


# -- value cleaning: Parquet gives None/NaN for missing cells and numpy-free python values otherwise.


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _str(value: Any) -> str:
    if value is None or _isnan(value):
        return ""
    return str(value)


def _num(value: Any) -> float | int | None:
    if value is None or _isnan(value) or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int:
    n = _num(value)
    return int(n) if n is not None else 0


def _as_list(value: Any) -> list[Any]:
    if value is None or _isnan(value):
        return []
    if isinstance(value, str):
        parsed = parse_json(value)
        return list(parsed) if isinstance(parsed, list) else [value]
    return list(value)
