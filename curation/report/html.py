"""The run report: one self-contained HTML file (inline CSS, JS, data and thumbnails; no network).

Python does the heavy lifting once, at build time: it joins the stage tables into one view per
sample, computes the draft/revision word diffs, makes the thumbnails and the statistics. The page
gets the samples as a single JSON blob and a small vanilla script renders one page of the table at
a time and a sample's detail only when it is opened, so a 1,000-sample report opens quickly. Runs
larger than `MAX_SAMPLES` are summarised whole but embed a chosen subset (`choose_samples`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from curation.provenance import run_provenance
from curation.report.charts import histogram_svg
from curation.report.diff import diff_stats
from curation.report.load import STAGES, SUMMARY_COLUMNS, iter_shard_views, open_run
from curation.report.stats import (
    RunTally,
    facets,
    filter_funnel,
    published_stats,
    run_info,
    source_status,
    stage_summary,
    totals,
)
from curation.report.thumbs import ThumbStore, pick_frames
from curation.store import atomic_write_bytes

TEMPLATES = Path(__file__).parent / "templates"

# Long model reasoning (R1's reasoning channel runs to thousands of tokens) would dominate the
# page's weight; the report shows the head, `videorft inspect` shows everything.
MAX_REASONING_CHARS = 1_200

# Thumbnails get at least this much even when the sample data alone fills the size budget, so the
# table of a huge run still shows frames for its first samples.
MIN_THUMB_BYTES = 1_000_000

# The page around the data: template, CSS, JS, summary tables.
PAGE_OVERHEAD_BYTES = 200_000

# Samples embedded in the page (~10 KB each). The summary always counts every sample; beyond this
# many, the page shows a chosen subset (`choose_samples`) and `videorft inspect` shows any sample.
# A 100,000-sample run embedded whole made a 1 GB page and a multi-GB peak in the flow process.
MAX_SAMPLES = 2_000


def write_report(
    run_dir: Path | str,
    out: Path | None = None,
    *,
    table_frames: int = 4,
    # Every frame of a 16-frame sample (VideoRFT's count), each beside its caption; the size budget
    # drops extra detail frames first on big runs.
    detail_frames: int = 16,
    thumb_width: int = 96,
    thumb_quality: int = 65,
    size_budget_mb: float = 18.0,
    max_samples: int = MAX_SAMPLES,
) -> Path:
    """Write the run's report (default `run_dir/report.html`) and return its path.

    Thumbnails: `table_frames` per sample in the table, up to `detail_frames` in the detail view.
    The report aims to stay under `size_budget_mb`: the sample data is embedded whole, thumbnails
    fill what is left. Table thumbnails are made first for every sample, then the extra detail
    frames rank by rank, so a huge run loses detail frames before it loses table frames, rather
    than becoming too heavy to open.
    """
    run_dir = Path(run_dir)
    store = open_run(run_dir)
    manifest = store.manifest.data
    # Pass 1, cheap columns only: exact totals over every sample, and which samples to embed.
    tally, ok_ids, other_ids, shard_of = RunTally(), [], [], {}
    for shard, shard_views in iter_shard_views(store, SUMMARY_COLUMNS):
        for v in shard_views:
            tally.add(v)
            (ok_ids if v["status"] == "ok" else other_ids).append(v["id"])
            shard_of[v["id"]] = shard
    chosen = choose_samples(other_ids, ok_ids, max_samples)
    del ok_ids, other_ids
    # Pass 2, full rows of the chosen samples' shards only.
    views = [
        v
        for _, shard_views in iter_shard_views(store, ids=chosen, shards={shard_of[i] for i in chosen})
        for v in shard_views
    ]
    del shard_of
    plans = [plan_frames(len(v["frames"]), table_frames, detail_frames) for v in views]
    text_bytes = len(embed_json([_payload(run_dir, v, p, None) for v, p in zip(views, plans, strict=True)]))
    budget = max(MIN_THUMB_BYTES, int(size_budget_mb * 1e6) - text_bytes - PAGE_OVERHEAD_BYTES)
    thumbs = ThumbStore(thumb_width, thumb_quality, budget_bytes=budget)
    _add_thumbnails(run_dir, views, plans, thumbs)
    data = {
        "stages": list(STAGES),
        "thumbs": thumbs.urls,
        "samples": [_payload(run_dir, v, p, thumbs) for v, p in zip(views, plans, strict=True)],
    }
    summary = stage_summary(manifest, tally)
    context = {
        "run_name": run_dir.resolve().name,
        # What the flow wrote last: "completed", "failed" (with `error`), "interrupted", or
        # "running" while a run is still going (or died without a word: a killed process).
        "run_status": str(manifest.get("status") or "unknown"),
        "run_error": str(manifest.get("error") or ""),
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "summary": summary,
        "totals": totals(summary, tally),
        "shown": len(views),
        "first_in": max((s["in"] for s in summary), default=0),
        "info": run_info(manifest),
        "facets": facets(views),
        "published": published_stats(run_dir, manifest, tally),
        "funnel": filter_funnel(tally.filter_steps),
        "provenance": run_provenance(manifest.get("stages") or {}),
        "by_source": source_status(tally),
        "interrupted": manifest.get("interrupted") if manifest.get("status") == "interrupted" else None,
        "css": Markup(_raw("report.css")),
        "js": Markup(_raw("report.js")),
        "data_json": Markup(embed_json(data)),
    }
    html = _env().get_template("report.html.jinja").render(**context)
    target = Path(out) if out is not None else run_dir / "report.html"
    atomic_write_bytes(target, html.encode("utf-8"))
    return target


def choose_samples(other: list[str], ok: list[str], limit: int) -> set[str]:
    """Which samples a page of at most `limit` embeds: all of them when they fit; else the rejected
    and failed ones first (up to half the page, more if there are too few ok ones), evenly spread
    over the run, and ok ones evenly spread over the rest. Deterministic: the same run gives the
    same page."""
    if len(other) + len(ok) <= limit:
        return set(other) | set(ok)
    n_other = min(len(other), max(limit // 2, limit - len(ok)))
    return set(_spread(other, n_other)) | set(_spread(ok, limit - n_other))


def _spread(items: list[str], k: int) -> list[str]:
    """`k` items evenly spaced over `items` (first one included)."""
    k = min(k, len(items))
    return [items[(i * len(items)) // k] for i in range(k)] if k > 0 else []


def embed_json(data: Any) -> str:
    """JSON safe inside <script type="application/json">: no "<" can close the element early."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


@dataclass(frozen=True)
class FramePlan:
    """Which of a sample's frames get thumbnails: `table` ones first, then `extra` in rank order."""

    table: list[int]
    extra: list[int]

    @property
    def detail(self) -> list[int]:
        return sorted(self.table + self.extra)


def plan_frames(n: int, table_frames: int, detail_frames: int) -> FramePlan:
    table = pick_frames(n, min(table_frames, detail_frames))
    # The detail view adds frames spread evenly over the ones the table does not show.
    rest = [i for i in range(n) if i not in table]
    extra = [rest[j] for j in pick_frames(len(rest), max(0, detail_frames - len(table)))]
    return FramePlan(table, extra)


def frame_file(run_dir: Path, rel: str) -> Path | None:
    """A frame's file, only if its path stays inside the run folder (as the contract says it does).

    A self-contained report must embed nothing but the run's own frames, whatever a table says.
    """
    # Plain string checks: this runs for every frame of every sample, pathlib is slow at that.
    if not rel or rel.startswith(("/", "\\")) or ".." in rel.replace("\\", "/").split("/"):
        return None
    return run_dir / rel


def _add_thumbnails(
    run_dir: Path, views: list[dict[str, Any]], plans: list[FramePlan], thumbs: ThumbStore
) -> None:
    def paths(v: dict[str, Any], indices: list[int]) -> list[Path]:
        return [f for i in indices if (f := frame_file(run_dir, v["frames"][i]["path"])) is not None]

    # Every table thumbnail before any extra one, then extras rank by rank: when the budget runs
    # out, each sample has lost the same number of detail frames, and none its table frames.
    pairs = list(zip(views, plans, strict=True))
    thumbs.add_many(f for v, plan in pairs for f in paths(v, plan.table))
    for rank in range(max((len(p.extra) for p in plans), default=0)):
        thumbs.add_many(
            f for v, plan in pairs if rank < len(plan.extra) for f in paths(v, [plan.extra[rank]])
        )


def _payload(
    run_dir: Path, view: dict[str, Any], plan: FramePlan, thumbs: ThumbStore | None
) -> dict[str, Any]:
    """What the page needs of one sample (drops what only `inspect` shows, like stage keys).

    Without `thumbs` (sizing the text before any thumbnail exists) every frame has none.
    """
    frames = view["frames"]

    def thumb(i: int) -> int | None:
        file = frame_file(run_dir, frames[i]["path"])
        return thumbs.index(file) if thumbs is not None and file is not None else None

    draft, revision = view["draft"] or {}, view["revision"] or {}
    reasoning = draft.get("reasoning", "")
    diff = view["diff"]
    return {
        "id": view["id"],
        "status": view["status"],
        "stopped_at": view["stopped_at"],
        "reason": view["reason"],
        "problem_type": view["problem_type"],
        "data_source": view["data_source"],
        "data_type": view["data_type"],
        "media_path": view["media_path"],
        "problem": view["problem"],
        "options": view["options"],
        "solution": view["solution"],
        "stages": [[s, r["status"], r["reason"]] for s, r in view["stages"].items()],
        "thumbs": [t for i in plan.table if (t := thumb(i)) is not None],
        "frames": [[thumb(i), frames[i]["timestamp"]] for i in plan.detail],
        # Per caption frame: [thumbnail, the extracted frame's time] of the frame it describes.
        "caption_frames": [
            [thumb(i), frames[i]["timestamp"]] if i is not None else [None, None]
            for i in caption_frame_indices(view["caption"], frames)
        ],
        "n_frames": len(frames),
        "video": view["video"],
        "caption": view["caption"],
        "draft_answer": draft.get("answer", ""),
        "answer": revision.get("answer", ""),
        "reasoning": reasoning[:MAX_REASONING_CHARS],
        "reasoning_chars": len(reasoning),
        "diff": [list(seg) for seg in diff] if diff else None,
        "diff_stats": diff_stats(diff) if diff else None,
        # Without a diff (one side missing) the page shows the side that exists as plain text.
        "draft_text": "" if diff else draft.get("text", ""),
        "revised_text": "" if diff else revision.get("text", ""),
        "verdicts": (view["filter"] or {}).get("verdicts"),
        "scores": (view["filter"] or {}).get("scores"),
        "llm": view["llm"],
    }


def caption_frame_indices(caption: Any, frames: list[dict[str, Any]]) -> list[int | None]:
    """Which extracted frame each per-frame caption describes.

    The captioner saw the extracted frames in order, so with as many captions as frames the i-th
    caption is the i-th frame. Otherwise (a `max_frames` subset, a model that skipped one) each
    caption goes to the frame nearest its timestamp ("HH:MM:SS" strings, as the prompt asks, or
    seconds).
    """
    cap = caption.get("frames") if isinstance(caption, dict) else None
    if not isinstance(cap, list) or not cap:
        return []
    if len(cap) == len(frames):
        return list(range(len(frames)))
    times = [f.get("timestamp") for f in frames]
    out: list[int | None] = []
    for c in cap:
        t = parse_time(c.get("timestamp")) if isinstance(c, dict) else None
        candidates = [(abs(ft - t), i) for i, ft in enumerate(times) if t is not None and ft is not None]
        out.append(min(candidates)[1] if candidates else None)
    return out


def parse_time(value: Any) -> float | None:
    """Seconds from 3.5, "3.5", "00:00:03", "00:03.5" or "1:02:03"; None when it is none of those."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    parts = str(value).strip().split(":")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        return None
    if len(nums) > 3 or any(n < 0 for n in nums):
        return None
    seconds = 0.0
    for n in nums:
        seconds = seconds * 60 + n
    return seconds


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "jinja"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_num
    env.filters["duration"] = fmt_duration
    env.filters["pct"] = fmt_pct
    env.globals["histogram_svg"] = histogram_svg
    return env


def _raw(name: str) -> str:
    """A template file's text as is: CSS and JS are not Jinja (their braces would confuse it)."""
    return (TEMPLATES / name).read_text(encoding="utf-8")


def fmt_num(value: Any) -> str:
    """1234567 -> "1,234,567"; floats get at most two decimals; None -> "–"."""
    if value is None:
        return "\u2013"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def fmt_duration(seconds: Any) -> str:
    s = float(seconds or 0)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


def fmt_pct(ratio: Any) -> str:
    return "\u2013" if ratio is None else f"{100 * float(ratio):.1f}%"
