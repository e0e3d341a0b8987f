"""Figures for the report's summary and published-set sections, as plain data (no HTML here).

Counts come from the stage tables when a stage has one (that is what the run holds now) and from
the manifest otherwise; timings, reuse and LLM counters come from the manifest, falling back to
the rows' own bookkeeping columns for runs whose manifest lacks them.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation.report.load import LLM_STAGES, STAGES, strip_think

STATUSES = ("ok", "rejected", "failed")
LLM_KEYS = ("llm_requests", "llm_cache_hits", "llm_retries", "llm_errors")
TOKEN_KEYS = ("prompt_tokens", "completion_tokens", "reasoning_tokens")

# Manifest entries shown in "run info" must never leak a credential, even if someone adds one.
_SECRET_KEY_RE = re.compile(r"(?i)(api[_-]?key|secret|passw|authori[sz]ation|bearer|credential|cookie)")
_SECRET_VALUE_RE = re.compile(r"(?i)^(sk-|hf_|bearer\s|ghp_|xox[bp]-)")
_HIDDEN_TOP = {"stages", "history", "publish"}


@dataclass
class SetTally:
    """A set's make-up accumulated row by row (counts and CoT lengths, never the rows themselves)."""

    rows: int = 0
    by_problem_type: Counter = field(default_factory=Counter)
    by_source: Counter = field(default_factory=Counter)
    lengths: list[int] = field(default_factory=list)

    def add(self, problem_type: Any, data_source: Any, process: Any) -> None:
        self.rows += 1
        self.by_problem_type[str(problem_type or "(none)")] += 1
        self.by_source[str(data_source or "(none)")] += 1
        if process:
            self.lengths.append(len(strip_think(str(process)).split()))


@dataclass
class StageTally:
    rows: int = 0
    counts: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    llm: Counter = field(default_factory=Counter)  # requests, cache_hits and token columns of the rows


@dataclass
class FilterTally:
    """The filter stage step by step. A rejected row's reason is `<first failing step>: <why>`
    (steps run in the configured order, every step judges every row, datatrove style)."""

    rows: int = 0
    failed: int = 0
    kept: int = 0
    order: list[str] = field(default_factory=list)
    first: Counter = field(default_factory=Counter)  # step -> rows it rejected (first failing step)
    alone: Counter = field(default_factory=Counter)  # step -> rows failing it, whatever else failed
    reasons: Counter = field(default_factory=Counter)  # (step, full reason) -> rows
    other: Counter = field(default_factory=Counter)  # rejected rows whose reason names no step

    def add(self, row: dict[str, Any], verdicts: dict[str, Any]) -> None:
        self.rows += 1
        for step, verdict in verdicts.items():
            if step not in self.order:
                self.order.append(step)
            if isinstance(verdict, dict) and verdict.get("kept") is False:
                self.alone[step] += 1
        status, reason = row.get("status") or "failed", row.get("reason") or ""
        if status == "ok":
            self.kept += 1
        elif status == "failed":
            self.failed += 1
        else:
            step = reason.split(":", 1)[0].strip()
            if step in verdicts or step in self.order:
                self.first[step] += 1
                self.reasons[(step, reason)] += 1
            else:
                self.other[reason] += 1


def filter_funnel(t: FilterTally) -> dict[str, Any] | None:
    """Rows in → kept after each step, in the configured order, with the reasons each step gave."""
    if not t.rows:
        return None
    left = t.rows - t.failed
    steps = []
    for step in t.order:
        dropped = t.first.get(step, 0)
        steps.append(
            {
                "step": step,
                "in": left,
                "dropped": dropped,
                "kept": left - dropped,
                "alone": t.alone.get(step, 0),
                "reasons": [
                    {"reason": r, "text": r.split(":", 1)[1].strip() if ":" in r else r, "count": n}
                    for (s, r), n in t.reasons.most_common()
                    if s == step
                ],
            }
        )
        left -= dropped
    return {
        "rows": t.rows,
        "failed": t.failed,
        "kept": t.kept,
        "steps": steps,
        "other": [{"reason": r, "count": n} for r, n in t.other.most_common()],
    }


def source_status(tally: RunTally) -> dict[str, Any]:
    """Samples per data source and final status (ok / rejected / failed), with totals."""
    sources = sorted({src for src, _ in tally.by_source})
    rows = []
    for src in sources:
        counts = {st: tally.by_source.get((src, st), 0) for st in STATUSES}
        rows.append({"source": src, **counts, "total": sum(counts.values())})
    totals = {st: sum(r[st] for r in rows) for st in STATUSES}
    return {"rows": rows, "totals": {**totals, "total": sum(totals.values())}}


@dataclass
class RunTally:
    """Everything the summary needs from every sample, accumulated one view at a time, so a report of
    a 300,000-sample run never holds 300,000 views (`curation.report.load.iter_shard_views`)."""

    samples: int = 0
    final: Counter = field(default_factory=Counter)
    kept_by_filter: int = 0
    filtered: bool = False
    stages: dict[str, StageTally] = field(default_factory=dict)
    kept: SetTally = field(default_factory=SetTally)
    # (data_source, final status) -> samples
    by_source: Counter = field(default_factory=Counter)
    filter_steps: FilterTally = field(default_factory=lambda: FilterTally())

    def add(self, view: dict[str, Any]) -> None:
        self.samples += 1
        self.final[view["status"]] += 1
        self.by_source[(view["data_source"] or "(none)", view["status"])] += 1
        if view.get("filter") is not None and "filter" in view["stages"]:
            self.filter_steps.add(view["stages"]["filter"], view["filter"].get("verdicts") or {})
        for stage, row in view["stages"].items():
            st = self.stages.setdefault(stage, StageTally())
            st.rows += 1
            status = row["status"] or "failed"
            st.counts[status] += 1
            if status != "ok":
                st.reasons[f"{row['status']}: {row['reason'] or '(no reason given)'}"] += 1
        for stage, llm in view["llm"].items():
            self.stages.setdefault(stage, StageTally()).llm.update(
                {
                    k: int(v or 0)
                    for k, v in llm.items()
                    if k not in ("model", "requested_model", "prompt_hash")
                }
            )
        if "filter" in view["stages"]:
            self.filtered = True
            if view["stages"]["filter"]["status"] == "ok":
                self.kept_by_filter += 1
                process = (view["revision"] or {}).get("text", "")
                self.kept.add(view["problem_type"], view["data_source"], process)


def stage_summary(manifest: dict[str, Any], tally: RunTally) -> list[dict[str, Any]]:
    """One entry per stage that ran, in pipeline order."""
    mstages = manifest.get("stages") or {}
    out = []
    for stage in STAGES:
        st = tally.stages.get(stage)
        has_rows = st is not None and st.rows > 0
        entry = mstages.get(stage) or {}
        if not has_rows and not entry:
            continue
        if has_rows:
            counts, reasons, n_in = st.counts, st.reasons, st.rows
        else:
            counts = Counter({s: int(entry.get(s, 0)) for s in STATUSES})
            reasons = Counter({k: int(v) for k, v in (entry.get("reasons") or {}).items()})
            n_in = int(entry.get("in", sum(counts.values())))
        llm = {k: int(entry.get(k, 0) or 0) for k in (*LLM_KEYS, *TOKEN_KEYS)}
        if stage in LLM_STAGES and not any(llm.values()):
            llm = _llm_from_rows(tally.stages.get(stage))
        out.append(
            {
                "stage": stage,
                "in": n_in,
                **{s: counts.get(s, 0) for s in STATUSES},
                "reused": int(entry.get("reused", 0) or 0),
                "computed": int(entry.get("computed", 0) or 0),
                "seconds": float(entry.get("seconds", 0.0) or 0.0),
                "shards": int(entry.get("shards", 0) or 0),
                **llm,
                "tokens": sum(llm[k] for k in TOKEN_KEYS),
                "cache_rate": _ratio(llm["llm_cache_hits"], llm["llm_requests"] + llm["llm_cache_hits"]),
                "reasons": [{"reason": k, "count": v} for k, v in reasons.most_common()],
            }
        )
    return out


def _llm_from_rows(st: StageTally | None) -> dict[str, int]:
    llm = st.llm if st is not None else Counter()
    out = dict.fromkeys((*LLM_KEYS, *TOKEN_KEYS), 0)
    out["llm_requests"] = llm["requests"]
    out["llm_cache_hits"] = llm["cache_hits"]
    for k in TOKEN_KEYS:
        out[k] = llm[k]
    return out


def totals(summary: list[dict[str, Any]], tally: RunTally) -> dict[str, Any]:
    """Headline figures for the top of the report."""
    final = tally.final
    requests = sum(s["llm_requests"] for s in summary)
    hits = sum(s["llm_cache_hits"] for s in summary)
    return {
        "samples": tally.samples,
        # "kept" means made it through the filter; before a filter ran, nothing is kept yet.
        "kept": tally.kept_by_filter,
        "filtered": tally.filtered,
        "ok": final.get("ok", 0),
        "rejected": final.get("rejected", 0),
        "failed": final.get("failed", 0),
        "requests": requests,
        "cache_hits": hits,
        "cache_rate": _ratio(hits, requests + hits),
        **{k: sum(s[k] for s in summary) for k in TOKEN_KEYS},
        "tokens": sum(s["tokens"] for s in summary),
        "seconds": sum(s["seconds"] for s in summary),
    }


def run_info(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """Scalar manifest entries (config hash, models, prompt hashes...), one nesting level flattened."""
    items: list[tuple[str, str]] = []

    def add(key: str, value: Any) -> None:
        if _SECRET_KEY_RE.search(key):
            return
        if isinstance(value, dict):
            return
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if _SECRET_VALUE_RE.search(text):
            text = "(redacted)"
        items.append((key, text if len(text) <= 160 else text[:157] + "..."))

    for key, value in sorted(manifest.items()):
        if key in _HIDDEN_TOP or _SECRET_KEY_RE.search(key):
            continue
        if isinstance(value, dict):
            for sub, subvalue in sorted(value.items()):
                add(f"{key}.{sub}", subvalue)
        else:
            add(key, value)
    return items


def facets(views: list[dict[str, Any]]) -> dict[str, list[tuple[str, int]]]:
    """Values (with counts) offered by the table's filter menus: those of the samples on the page."""
    stage_rank = {s: i for i, s in enumerate(STAGES)}
    by_stage = Counter(v["stopped_at"] for v in views if v["stopped_at"])
    return {
        "status": [(s, n) for s in STATUSES if (n := sum(1 for v in views if v["status"] == s))],
        "stage": sorted(by_stage.items(), key=lambda kv: stage_rank.get(kv[0], 99)),
        "problem_type": sorted(Counter(v["problem_type"] or "(none)" for v in views).items()),
        "data_source": sorted(Counter(v["data_source"] or "(none)" for v in views).items()),
    }


# -- published sets ------------------------------------------------------------------------------


def published_stats(run_dir: Path, manifest: dict[str, Any], tally: RunTally) -> dict[str, Any]:
    """Rows per published set with their make-up, read from the exported files when possible.

    Without readable exports (not published yet, or a layout this reader does not know) the set the
    filter kept is described from the run tables instead, and says so.
    """
    info = manifest.get("publish") if isinstance(manifest.get("publish"), dict) else None
    sets = []
    if info:
        for name in ("cot", "rl"):
            where = info.get(f"{name}_dir")
            found = read_set(_resolve(run_dir, where)) if where else None
            if found is not None:
                sets.append(
                    set_stats(name.upper(), found, origin=str(where), declared=info.get(f"{name}_rows"))
                )
    if not sets and tally.filtered:
        declared = info.get("cot_rows") if info else None
        sets.append(
            set_stats("Kept by filter", tally.kept, origin="run tables (filter ok)", declared=declared)
        )
    return {
        "published": info is not None,
        "version": (info or {}).get("version"),
        "declared": {k: info.get(k) for k in ("cot_rows", "rl_rows") if k in info} if info else {},
        "exports": _listish(info.get("exports")) if info else [],
        "cards": _listish(info.get("cards")) if info else [],
        "sets": sets,
    }


def set_stats(name: str, tally: SetTally, *, origin: str, declared: Any = None) -> dict[str, Any]:
    n = tally.rows
    return {
        "name": name,
        "origin": origin,
        "rows": n,
        "declared": declared,
        "by_problem_type": _shares(tally.by_problem_type, n),
        "by_source": _shares(tally.by_source, n),
        "cot": length_summary(tally.lengths),
    }


def length_summary(lengths: list[int]) -> dict[str, Any] | None:
    """CoT length in words: quantiles and a histogram (None when the set has no CoT)."""
    if not lengths:
        return None
    ordered = sorted(lengths)
    return {
        "count": len(ordered),
        "min": ordered[0],
        "median": statistics.median(ordered),
        "mean": round(statistics.fmean(ordered), 1),
        "p90": ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)],
        "max": ordered[-1],
        "histogram": histogram(ordered),
    }


def histogram(values: list[int], max_bins: int = 12) -> list[dict[str, Any]]:
    """Equal-width bins on a round width (10, 20, 25, 50, 100...), bars scaled to the tallest."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    width = _nice_width((hi - lo) / max_bins if hi > lo else 1)
    start = (lo // width) * width
    nbins = int((hi - start) // width) + 1
    counts = [0] * nbins
    for v in values:
        counts[int((v - start) // width)] += 1
    top = max(counts)
    return [
        {
            "lo": start + i * width,
            "hi": start + (i + 1) * width,
            "count": c,
            "height": round(100 * c / top, 1),
        }
        for i, c in enumerate(counts)
    ]


def _nice_width(raw: float) -> int:
    magnitude = 10 ** max(0, math.floor(math.log10(max(raw, 1))))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= raw:
            return max(1, int(step * magnitude))
    return int(10 * magnitude)


_SET_COLUMNS = ["problem_type", "data_source", "process"]


def read_set(path: Path | None) -> SetTally | None:
    """The make-up of an exported set (Parquet, JSON Lines, a JSON list, or a `datasets` Arrow
    folder), read in batches: only counts and lengths are kept, whatever the set's size."""
    if path is None or not path.exists():
        return None
    files = [path] if path.is_file() else set_files(path)
    tally = SetTally()
    found = False
    for f in files:
        try:
            # A file is counted only once it has been read whole: a bad file adds nothing.
            part = SetTally()
            for row in _set_rows(f):
                part.add(row.get("problem_type"), row.get("data_source"), row.get("process"))
        except (OSError, ValueError, pa.ArrowException):
            continue
        if part.rows or f.suffix in (".parquet", ".arrow", ".jsonl") or _is_record_list(f):
            found = True
            tally.rows += part.rows
            tally.by_problem_type.update(part.by_problem_type)
            tally.by_source.update(part.by_source)
            tally.lengths += part.lengths
    return tally if found else None


def set_files(folder: Path) -> list[Path]:
    """The files holding a set's rows, each row once.

    A published set holds the same rows three times (curation/publish/run.py): Hub Parquet under
    `data/`, a `load_from_disk` copy (`<split>/*.arrow`) and the Video-R1 JSONL under `videor1/`.
    Reading all of them counted every row three times; one copy is read, in that order of
    preference. Any other folder: every file in it.
    """
    parquet = sorted((folder / "data").glob("*.parquet"))
    if parquet:
        return parquet
    if (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file():
        return sorted(folder.rglob("*.arrow"))
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _set_rows(f: Path) -> Iterator[dict[str, Any]]:
    if f.suffix == ".parquet":
        parquet = pq.ParquetFile(f)
        names = set(parquet.schema_arrow.names)
        for batch in parquet.iter_batches(columns=[c for c in _SET_COLUMNS if c in names]):
            yield from batch.to_pylist()
    elif f.suffix == ".arrow":
        with pa.memory_map(str(f)) as src:
            for batch in pa.ipc.open_stream(src):
                yield from batch.select([c for c in _SET_COLUMNS if c in batch.schema.names]).to_pylist()
    elif f.suffix == ".jsonl":
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip() and isinstance(row := json.loads(line), dict):
                    yield row
    elif f.suffix == ".json":
        data = json.loads(f.read_text(encoding="utf-8"))
        # dataset_info.json / state.json are dicts: only a list of records is a set.
        if isinstance(data, list):
            yield from (r for r in data if isinstance(r, dict))


def _is_record_list(f: Path) -> bool:
    if f.suffix != ".json":
        return False
    try:
        return isinstance(json.loads(f.read_text(encoding="utf-8")), list)
    except (OSError, ValueError):
        return False


def _resolve(run_dir: Path, where: Any) -> Path | None:
    if not isinstance(where, str) or not where:
        return None
    path = Path(where)
    return path if path.is_absolute() else run_dir / path


def _shares(counter: Counter, total: int) -> list[dict[str, Any]]:
    return [
        {"name": k, "count": v, "pct": round(100 * v / total, 1) if total else 0.0}
        for k, v in counter.most_common()
    ]


def _listish(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{k}: {v}" for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None
