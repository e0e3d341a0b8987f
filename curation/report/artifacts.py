"""The report's key figures as Prefect artifacts the UI can show.

A link artifact to the report's `file://` URL is useless in the Prefect UI (browsers refuse
`file://` links from a web page, and the file is on the machine that ran the flow, not on the
viewer's). So the figures themselves go into a markdown artifact (`<run>-report`) and a table
artifact (`<run>-summary`), with the report's path as text and the command that serves it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from curation.provenance import run_provenance

STAGE_ORDER = ("sources", "extract", "caption", "draft", "revise", "filter", "publish")


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:100]


def key_figures(manifest: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers of a run from its manifest (the same counts the report shows)."""
    stages = manifest.get("stages") or {}
    row_stages = [s for s in STAGE_ORDER if s in stages and s != "publish"]
    pub = manifest.get("publish") or {}
    return {
        "samples": int((stages.get("sources") or {}).get("in", 0)),
        "kept": int((stages.get("filter") or {}).get("ok", 0)) if "filter" in stages else None,
        "rejected": sum(int(stages[s].get("rejected", 0)) for s in row_stages),
        "failed": sum(int(stages[s].get("failed", 0)) for s in row_stages),
        "llm_requests": sum(int(stages[s].get("llm_requests", 0)) for s in row_stages),
        "llm_cache_hits": sum(int(stages[s].get("llm_cache_hits", 0)) for s in row_stages),
        "published_version": pub.get("version"),
        "published_reused": bool(pub.get("reused")),
        "cot_rows": pub.get("cot_rows"),
        "rl_rows": pub.get("rl_rows"),
        "simulated": run_provenance(stages)["simulated"],
    }


def stage_table(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    stages = manifest.get("stages") or {}
    return [
        {
            "stage": s,
            **{k: stages[s].get(k, 0) for k in ("in", "ok", "rejected", "failed", "reused", "llm_requests")},
        }
        for s in STAGE_ORDER
        if s in stages
    ]


def report_markdown(run_name: str, manifest: dict[str, Any], report: Path | str) -> str:
    f = key_figures(manifest)
    run_dir = manifest.get("run_dir") or str(Path(report).parent)
    lines = [f"# Run `{run_name}`", ""]
    if f["simulated"]:
        lines += [
            "> **Simulated endpoint**: the captions, drafts and revisions were written by videorft's "
            "simulated endpoint, not by a model.",
            "",
        ]
    kept = "–" if f["kept"] is None else f"{f['kept']:,}"
    lines += [
        "| samples | kept by filter | rejected | failed | LLM requests | cache hits |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {f['samples']:,} | {kept} | {f['rejected']:,} | {f['failed']:,} | {f['llm_requests']:,} "
        f"| {f['llm_cache_hits']:,} |",
        "",
    ]
    if f["published_version"]:
        how = "unchanged, existing version reused" if f["published_reused"] else "new version"
        lines += [
            f"Published `{f['published_version']}` ({how}): {f['cot_rows']:,} CoT rows, {f['rl_rows']:,} RL rows.",
            "",
        ]
    lines += [
        "**HTML report** (a file on the machine that ran this flow; browsers do not open `file://` "
        "links from this page):",
        "",
        f"    {report}",
        "",
        "Open it there, or serve it and open the address it prints (through an SSH tunnel if remote):",
        "",
        f"    videorft report {run_dir} --serve",
    ]
    return "\n".join(lines) + "\n"


def post_report_artifacts(run_name: str, manifest: dict[str, Any], report: Path | str) -> None:
    """Markdown of the key figures and the report's path, and the stage table (needs a flow run)."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(
        key=artifact_key(run_name, "report"),
        markdown=report_markdown(run_name, manifest, report),
        description=f"run {run_name}: key figures and where the HTML report is",
    )
    create_table_artifact(
        key=artifact_key(run_name, "summary"),
        table=stage_table(manifest),
        description=f"run {run_name}: rows in and where they went, per stage",
    )
