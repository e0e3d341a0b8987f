"""Dataset cards: Hugging Face README.md files rendered with jinja2 from `data_cards/`.

The YAML front matter is built here as a dict and dumped with `yaml.safe_dump` inside the template
(`{{ metadata | to_yaml }}`), so it is valid YAML whatever the names and counts are. The body's
numbers come from `card_context`; templates only lay them out. Nothing from the environment is ever
rendered: the caller's lineage goes through `collect.sanitize` first.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from curation.publish.collect import RunSummary, flatten, redact_paths

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "data_cards"
TASK_CATEGORIES = ["video-text-to-text", "visual-question-answering"]
BASE_TAGS = ["video", "chain-of-thought", "reasoning", "videorft", "video-r1"]

_SIZE_CATEGORIES: tuple[tuple[int, str], ...] = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)


def size_category(n: int) -> str:
    """The Hub's `size_categories` label for `n` rows."""
    for bound, label in _SIZE_CATEGORIES:
        if n < bound:
            return label
    return "1B<n<10B"


def _md_cell(value: Any) -> str:
    """A value safe inside a Markdown table cell (no pipe, no newline)."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def _to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)


def environment(templates_dir: Path | None = None) -> Environment:
    folder = Path(templates_dir or DEFAULT_TEMPLATES_DIR)
    if not (folder / "cot.md.jinja").is_file():
        # data_cards/ lives at the repository root (not inside a package): an install without the
        # checkout must point publish.templates_dir at a copy of it.
        raise FileNotFoundError(f"dataset card templates not found in {folder} (set publish.templates_dir)")
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,  # a missing field is a bug in the context, not an empty string
        autoescape=False,  # Markdown, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["to_yaml"] = _to_yaml
    env.filters["cell"] = _md_cell
    env.filters["num"] = lambda n: f"{int(n):,}"
    return env


def render_card(kind: str, context: dict[str, Any], templates_dir: Path | None = None) -> str:
    """Render `data_cards/<kind>.md.jinja` ("cot" or "rl")."""
    return environment(templates_dir).get_template(f"{kind}.md.jinja").render(**context)


# ------------------------------------------------------------------------------------------------
# Context pieces
# ------------------------------------------------------------------------------------------------


def length_stats(lengths: Sequence[int], bins: int = 10, bar_width: int = 40) -> dict[str, Any] | None:
    """min / p50 / p90 / max / mean (nearest-rank percentiles) and an equal-width histogram."""
    if not lengths:
        return None
    values = sorted(lengths)
    n = len(values)

    def pct(p: float) -> int:
        return values[max(0, math.ceil(p / 100 * n) - 1)]

    lo, hi = values[0], values[-1]
    bins = max(1, min(bins, hi - lo + 1))
    width = (hi - lo + 1) / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    peak = max(counts)
    histogram = []
    for i, c in enumerate(counts):
        start = lo + math.ceil(i * width)
        end = lo + math.ceil((i + 1) * width) - 1
        histogram.append(
            {
                "lo": start,
                "hi": max(start, end),
                "count": c,
                "bar": "█" * max(1 if c else 0, round(c / peak * bar_width)),
            }
        )
    return {
        "n": n,
        "min": lo,
        "p50": pct(50),
        "p90": pct(90),
        "max": hi,
        "mean": round(sum(values) / n, 1),
        "histogram": histogram,
    }


def source_table(counts: Counter) -> dict[str, Any]:
    """(data_source, problem_type) -> rows as table rows with one column per problem type."""
    types = sorted({pt for _, pt in counts})
    sources = sorted({src for src, _ in counts})
    rows = []
    for src in sources:
        per = [counts.get((src, pt), 0) for pt in types]
        rows.append({"source": src, "counts": per, "total": sum(per)})
    totals = [sum(counts.get((src, pt), 0) for src in sources) for pt in types]
    return {"types": types, "rows": rows, "totals": totals, "total": sum(totals)}


def funnel(summary: RunSummary) -> list[dict[str, Any]]:
    return [
        {"stage": s.stage, "rows": s.rows, "ok": s.ok, "rejected": s.rejected, "failed": s.failed}
        for s in summary.stages.values()
    ]


def rejection_table(summary: RunSummary, limit: int) -> dict[str, Any]:
    """Every (stage, status, reason) with its count: pipeline order, then most frequent first."""
    rows = []
    for s in summary.stages.values():
        for (status, reason), n in sorted(s.reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append(
                {
                    "stage": s.stage,
                    "status": status,
                    "reason": redact_paths(reason) or "(no reason given)",
                    "count": n,
                }
            )
    shown, rest = rows[:limit], rows[limit:]
    return {"rows": shown, "more_reasons": len(rest), "more_count": sum(r["count"] for r in rest)}


def filter_table(summary: RunSummary) -> list[dict[str, Any]]:
    """Per filter step: rows it would drop on its own verdict, and rows whose reason it is."""
    out = []
    for step in summary.step_order:
        reasons = sorted(
            ((r, n) for (s, r), n in summary.step_reasons.items() if s == step),
            key=lambda kv: (-kv[1], kv[0]),
        )
        out.append(
            {
                "step": step,
                "dropped": summary.step_drops.get(step, 0),
                "first": summary.step_first.get(step, 0),
                "reasons": "; ".join(f"{redact_paths(r)} ({n})" for r, n in reasons[:4])
                + (" …" if len(reasons) > 4 else ""),
            }
        )
    return out


_STAGE_ORDER = {"caption": 0, "draft": 1, "revise": 2}


def models_table(models: Counter) -> list[dict[str, Any]]:
    """(stage, model that answered, model asked for, prompt hash) -> rows, in pipeline order."""
    return [
        {
            "stage": stage,
            "model": model or "(unknown)",
            "requested": requested or "(unknown)",
            "prompt_hash": ph or "(unknown)",
            "rows": n,
        }
        for (stage, model, requested, ph), n in sorted(
            models.items(), key=lambda kv: (_STAGE_ORDER.get(kv[0][0], 9), -kv[1], kv[0])
        )
    ]


def provenance(lineage: dict[str, Any], models: Counter) -> dict[str, Any]:
    """Who wrote the set's text, for the card's first paragraph, its metadata and publish.json.

    Served names come from the published rows (`models`: what answered for exactly these rows) and,
    for stages no published row covers (an empty CoT set), from the run's `lineage["models"]`
    (`{stage: {"requested": name, "served": [names]}}`, curation/provenance.py). `lineage` is
    already sanitised. Returns {"simulated": bool, "stages": [{"stage", "requested", "served"}]}.
    """
    from curation.provenance import is_simulated_name

    served: dict[str, Counter] = {}
    requested: dict[str, str] = {}
    for (stage, model, asked, _ph), n in models.items():
        if model:
            served.setdefault(stage, Counter())[model] += n
        if asked:
            requested.setdefault(stage, asked)
    for stage, entry in (lineage.get("models") or {}).items():
        if not isinstance(entry, dict):
            continue
        requested.setdefault(stage, str(entry.get("requested") or ""))
        if stage not in served:
            served[stage] = Counter({str(name): 0 for name in entry.get("served") or []})
    stages = sorted(set(served) | set(requested), key=lambda s: (_STAGE_ORDER.get(s, 9), s))
    rows = [
        {
            "stage": stage,
            "requested": requested.get(stage, ""),
            "served": [name for name, _ in served.get(stage, Counter()).most_common()],
        }
        for stage in stages
    ]
    simulated = bool(lineage.get("simulated")) or any(
        is_simulated_name(name) for r in rows for name in r["served"]
    )
    return {"simulated": simulated, "stages": rows}


def lineage_items(lineage: dict[str, Any], limit: int = 60) -> list[tuple[str, str]]:
    """The sanitised lineage as (dotted key, value) pairs; the full recipe stays in publish.json."""
    items = [(k, v) for k, v in flatten({k: v for k, v in lineage.items() if k != "recipe"}) if k]
    return items[:limit]


def card_metadata(
    *,
    pretty_name: str,
    license: str,
    rows: int,
    splits: Sequence[str],
    tags: Sequence[str],
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The README's YAML front matter (Hub dataset card metadata).

    `provenance` (from `provenance()`) adds a `videorft` entry naming, per stage, the model asked for
    and the model(s) that answered, and `simulated_endpoint: true` plus a tag when the simulated
    endpoint wrote the text, so a search of the Hub's metadata can tell.
    """
    simulated = bool(provenance and provenance.get("simulated"))
    meta: dict[str, Any] = {
        "license": license,
        "language": ["en"],
        "pretty_name": pretty_name,
        "task_categories": list(TASK_CATEGORIES),
        "size_categories": [size_category(rows)],
        "tags": list(dict.fromkeys([*BASE_TAGS, *(["simulated-endpoint"] if simulated else []), *tags])),
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"data/{split}-*.parquet"} for split in splits],
            }
        ],
    }
    if provenance is not None:
        meta["videorft"] = {
            "simulated_endpoint": simulated,
            "models": {
                r["stage"]: {"requested": r["requested"], "served": list(r["served"])}
                for r in provenance.get("stages") or []
            },
        }
    return meta


def trainer_exports(kind: str, files: dict[str, Path], set_dir: Path) -> dict[str, Any]:
    """The per-trainer export files of one set (paths relative to the set folder) and their fields."""
    from curation.publish.export import (
        VIDEOR1_FIELDS_COT,
        VIDEOR1_FIELDS_RL,
        VIDEORFT_FIELDS_COT,
        VIDEORFT_FIELDS_RL,
    )

    def rel(prefix: str) -> list[str]:
        return [p.relative_to(set_dir).as_posix() for k, p in files.items() if k.startswith(prefix)]

    videor1 = rel(f"{kind}-")
    videorft = rel(f"videorft-{kind}-")
    cot = kind == "cot"
    return {
        "videor1": {
            "files": videor1,
            "train": next(f for f in videor1 if f.endswith("-train.json")),
            "fields": list(VIDEOR1_FIELDS_COT if cot else VIDEOR1_FIELDS_RL),
        },
        "videorft": {
            "files": videorft,
            "train": next(f for f in videorft if f.endswith("-train.jsonl")),
            "fields": list(VIDEORFT_FIELDS_COT if cot else VIDEORFT_FIELDS_RL),
        },
    }
