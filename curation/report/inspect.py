"""`videorft inspect`: look at a run's rows and at one sample across all stages, in a terminal.

`inspect_rows` / `inspect_sample` return plain data (usable from notebooks and tests); the
`format_*` functions turn it into text with rich. Without colour (a pipe, a log file) the word diff
falls back to git's `[-removed-]{+added+}` markers so it stays readable.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from curation.report.diff import diff_stats
from curation.report.load import STAGE_COLUMNS, STAGES, open_run, present_stages, sample_view
from curation.store import RunStore
from curation.user_errors import UserError

STATUSES = ("ok", "rejected", "failed")
STATUS_STYLE = {"ok": "green", "rejected": "yellow", "failed": "red"}


# -- rows ------------------------------------------------------------------------------------------


def inspect_rows(
    run_dir: Path | str, stage: str | None = None, status: str | None = None, limit: int | None = 50
) -> list[dict[str, Any]]:
    """Rows (`stage`, `id`, `status`, `reason`) of one stage or of all stages in pipeline order.

    `status` keeps only rows with that status; `limit` caps the count (None or 0: no cap).
    """
    if stage is not None and stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; statuses are {', '.join(STATUSES)}")
    store = open_run(run_dir)
    out: list[dict[str, Any]] = []
    for st in [stage] if stage else present_stages(store):
        for row in store.iter_rows(st, ["id", "status", "reason"]):
            if status is not None and row.get("status") != status:
                continue
            out.append(
                {
                    "stage": st,
                    "id": row.get("id"),
                    "status": row.get("status"),
                    "reason": row.get("reason") or "",
                }
            )
            if limit and len(out) >= limit:
                return out
    return out


def format_rows(
    rows: list[dict[str, Any]], *, plain: bool = False, width: int = 120, color: bool | None = None
) -> str:
    """A table of rows from `inspect_rows`: rich box drawing, or plain aligned columns."""
    if not rows:
        return "no rows match\n"
    if plain:
        cols = ("stage", "id", "status", "reason")
        widths = {c: max(len(c), *(len(str(r.get(c) or "")) for r in rows)) for c in cols[:-1]}
        lines = ["  ".join(c.ljust(widths[c]) for c in cols[:-1]) + "  reason"]
        lines += [
            "  ".join(str(r.get(c) or "").ljust(widths[c]) for c in cols[:-1]) + "  " + str(r["reason"])
            for r in rows
        ]
        return "\n".join(lines) + "\n"
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("stage", style="bold")
    table.add_column("id", style="cyan", no_wrap=True)
    table.add_column("status")
    table.add_column("reason", overflow="fold")
    for r in rows:
        table.add_row(r["stage"], str(r["id"]), _status_text(r["status"]), r["reason"])
    return _render(table, width=width, color=color)


# -- one sample ------------------------------------------------------------------------------------


def inspect_sample(run_dir: Path | str, sample_id: str) -> dict[str, Any]:
    """One sample across every stage (a unique id prefix is enough); KeyError when not found.

    Same shape as the report's view: sample fields, `status` / `stopped_at` / `reason`, `stages`,
    `video`, `frames` (path + timestamp), `caption` (parsed JSON), `draft`, `revision`, `diff`
    (word segments), `filter` (verdicts + scores) and per-stage `llm` bookkeeping.
    """
    store = open_run(run_dir)
    full_id = resolve_id(store, sample_id)
    rows = {
        stage: row for stage in present_stages(store) if (row := _find_row(store, stage, full_id)) is not None
    }
    return sample_view(full_id, rows)


def resolve_id(store: RunStore, sample_id: str) -> str:
    """The full id for an exact id or a unique prefix of one."""
    matches: set[str] = set()
    for stage in present_stages(store):
        for shard in store.shards(stage):
            ids = pq.read_table(store.shard_path(stage, shard), columns=["id"]).column("id").to_pylist()
            if sample_id in ids:
                return sample_id
            matches.update(i for i in ids if i and i.startswith(sample_id))
    if len(matches) == 1:
        return matches.pop()
    if not matches:
        raise SampleNotFound(
            f"no sample {sample_id!r} in {store.run_dir}",
            f"`videorft inspect {store.run_dir}` lists the run's sample ids",
        )
    raise SampleNotFound(
        f"{sample_id!r} is ambiguous: {', '.join(sorted(matches)[:5])}{'...' if len(matches) > 5 else ''}",
        "give more characters of the id",
    )


class SampleNotFound(UserError, KeyError):
    """`--id` names no sample of the run, or several (a KeyError, as a lookup by id would give)."""


def _find_row(store: RunStore, stage: str, sample_id: str) -> dict[str, Any] | None:
    found = None
    for shard in store.shards(stage):
        path = store.shard_path(stage, shard)
        wanted = STAGE_COLUMNS.get(stage)
        names = set(pq.read_schema(path).names)
        columns = [c for c in wanted if c in names] if wanted else None
        rows = pq.read_table(path, columns=columns, filters=[("id", "==", sample_id)]).to_pylist()
        if rows:
            found = rows[-1]
    return found


def format_sample(d: dict[str, Any], *, width: int = 110, color: bool | None = None) -> str:
    """`inspect_sample`'s dict as terminal text (ANSI colour when `color`, default: stdout is a tty)."""
    use_color = sys.stdout.isatty() if color is None else color
    parts: list[RenderableType] = [
        Rule(Text.assemble(("sample ", "bold"), (d["id"], "bold cyan"), "  ", _status_text(d["status"]))),
        _overview(d),
        _question(d),
        _pipeline(d),
        _frames(d),
        _caption(d),
        _cot(d, use_color),
        _filter(d),
        _llm(d),
    ]
    return _render(Group(*[p for p in parts if p is not None]), width=width, color=use_color)


def _overview(d: dict[str, Any]) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="dim")
    t.add_column()
    for label, value in (
        ("source", d["data_source"]),
        ("type", f"{d['problem_type']} · {d['data_type']}"),
        ("media", d["media_path"]),
        ("stopped at", d["stopped_at"]),
        ("reason", d["reason"]),
    ):
        if value and value != " · ":
            t.add_row(label, value)
    if d["video"]:
        v = d["video"]
        t.add_row(
            "video",
            f"{v['duration']} s · {v['fps']} fps · {v['frame_count']} frames · {v['width']}x{v['height']} · "
            f"{v['codec']} ({v['reader']})",
        )
    return t


def _question(d: dict[str, Any]) -> Panel:
    body = Text(d["problem"] or "(no question)")
    for option in d["options"]:
        body.append("\n  " + option)
    body.append("\n")
    answers = [("ground truth", d["solution"])]
    if d["draft"]:
        answers.append(("draft answer", d["draft"]["answer"]))
    if d["revision"]:
        answers.append(("revised answer", d["revision"]["answer"]))
    for label, value in answers:
        body.append(f"\n{label}: ", style="dim")
        body.append(value or "–", style="bold")
    return Panel(body, title="question", title_align="left", box=box.ROUNDED)


def _pipeline(d: dict[str, Any]) -> Text:
    text = Text("pipeline: ", style="dim")
    for n, (stage, row) in enumerate(d["stages"].items()):
        if n:
            text.append(" → ", style="dim")
        text.append(stage + " ")
        text.append_text(_status_text(row["status"]))
        if row["reason"]:
            text.append(f" ({row['reason']})", style="dim")
    return text


def _frames(d: dict[str, Any]) -> RenderableType:
    if not d["frames"]:
        return Text("frames: none extracted", style="dim")
    t = Table(title="frames", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    t.add_column("#", justify="right")
    t.add_column("time", justify="right")
    t.add_column("path (relative to the run)", overflow="fold")
    for n, f in enumerate(d["frames"]):
        ts = f["timestamp"]
        t.add_row(str(n), "" if ts is None else f"{ts:.2f} s", f["path"])
    return t


def _caption(d: dict[str, Any]) -> RenderableType | None:
    c = d["caption"]
    if c is None:
        return None
    if not isinstance(c, dict):
        return Panel(Text(str(c)), title="caption (not JSON)", title_align="left")
    items: list[RenderableType] = []
    if d["video_caption"]:
        items.append(Text(d["video_caption"]))
    frames = c.get("frames") if isinstance(c.get("frames"), list) else []
    if frames:
        t = Table(box=box.SIMPLE_HEAD, show_edge=False)
        t.add_column("time", justify="right", no_wrap=True)
        t.add_column("caption", ratio=3, overflow="fold")
        t.add_column("key elements", ratio=2, overflow="fold")
        for f in frames:
            if not isinstance(f, dict):
                continue
            ts = f.get("timestamp")
            t.add_row(
                f"{ts:.2f} s" if isinstance(ts, int | float) else str(ts or ""),
                str(f.get("caption", "")),
                _key_elements(f.get("key_elements")),
            )
        items.append(t)
    extra = {k: v for k, v in c.items() if k not in ("video_caption", "frames")}
    if extra:
        items.append(Text(json.dumps(extra, indent=2, ensure_ascii=False), style="dim"))
    return Panel(Group(*items), title="caption", title_align="left", box=box.ROUNDED)


def _key_elements(value: Any) -> str:
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            if v in (None, "", [], {}):
                continue
            shown = (
                ", ".join(map(str, v)) if isinstance(v, list) else v if isinstance(v, str) else json.dumps(v)
            )
            parts.append(f"{k}: {shown}")
        return "; ".join(parts)
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def _cot(d: dict[str, Any], color: bool) -> RenderableType | None:
    draft, revision = d["draft"], d["revision"]
    if not draft and not revision:
        return None
    items: list[RenderableType] = []
    if d["diff"]:
        s = diff_stats(d["diff"])
        items.append(
            Text(f"word diff: -{s['removed']} removed, +{s['added']} added, {s['kept']} kept", style="dim")
        )
        body = Text()
        for op, seg in d["diff"]:
            if op == "=":
                body.append(seg)
            elif color:
                body.append(seg, style="red strike" if op == "-" else "bold green")
            else:
                body.append(f"[-{seg}-]" if op == "-" else f"{{+{seg}+}}")
        items.append(body)
    else:
        if draft:
            items += [Text("draft:", style="dim"), Text(draft["text"] or "(empty)")]
        if revision:
            items += [Text("revision:", style="dim"), Text(revision["text"] or "(empty)")]
    if draft and draft["reasoning"]:
        items += [Text("\ndraft model reasoning:", style="dim"), Text(draft["reasoning"], style="dim")]
    return Panel(
        Group(*items), title="chain of thought: draft → revision", title_align="left", box=box.ROUNDED
    )


def _filter(d: dict[str, Any]) -> RenderableType | None:
    f = d["filter"]
    if not f:
        return None
    verdicts = f["verdicts"] if isinstance(f["verdicts"], dict) else {}
    scores = f["scores"] if isinstance(f["scores"], dict) else {}
    t = Table(title="filter", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    t.add_column("step", style="bold")
    t.add_column("verdict")
    t.add_column("reason", overflow="fold")
    t.add_column("scores", overflow="fold")
    for step in list(dict.fromkeys([*verdicts, *scores])):
        v = verdicts.get(step) if isinstance(verdicts.get(step), dict) else {}
        kept = v.get("kept")
        verdict = (
            Text("kept", style="green")
            if kept is True
            else Text("dropped", style="red")
            if kept is False
            else Text("")
        )
        sc = scores.get(step)
        shown = ", ".join(f"{k}={_fmt(x)}" for k, x in sc.items()) if isinstance(sc, dict) else _fmt(sc)
        t.add_row(step, verdict, str(v.get("reason") or ""), shown)
    return t


def _llm(d: dict[str, Any]) -> RenderableType | None:
    if not d["llm"]:
        return None
    t = Table(title="models", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    for col in ("stage", "model", "prompt", "requests", "cache hits", "tokens in/out/reasoning"):
        t.add_column(col)
    for stage, r in d["llm"].items():
        t.add_row(
            stage,
            r["model"],
            r["prompt_hash"],
            str(r["requests"]),
            str(r["cache_hits"]),
            f"{r['prompt_tokens']}/{r['completion_tokens']}/{r['reasoning_tokens']}",
        )
    return t


# -- helpers ---------------------------------------------------------------------------------------


def _status_text(status: str | None) -> Text:
    return Text(status or "?", style=STATUS_STYLE.get(status or "", "magenta"))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _render(renderable: RenderableType, *, width: int, color: bool | None) -> str:
    use_color = sys.stdout.isatty() if color is None else color
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width,
        force_terminal=use_color,
        color_system="standard" if use_color else None,
        no_color=not use_color,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )
    console.print(renderable)
    text = buf.getvalue()
    # Rich pads table cells to the column width; trailing blanks only get in the way of a pipe.
    return text if use_color else "\n".join(line.rstrip() for line in text.split("\n"))
