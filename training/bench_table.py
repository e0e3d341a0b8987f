"""The six-benchmark table: our numbers beside VideoRFT-7B's and Video-R1-7B's published ones.

Published numbers: VideoRFT paper (arXiv 2505.12434, NeurIPS 2025) Table 1 — VideoRFT-7B at 32
frames / 256·28·28 px, and the Video-R1-7B row it reports (Video-R1's own 32-frame result, Video-R1
paper Table 1). Both were computed by `eval_bench.py`: accuracy, VSI-Bench as (MC accuracy + MRA) / 2.
"""

from __future__ import annotations

from typing import Any

from training.bench_formats import BENCHMARK_TITLES, BENCHMARKS

PUBLISHED: dict[str, dict[str, float]] = {
    "VideoRFT-7B": {
        "vsibench": 36.8,
        "videommmu": 51.1,
        "mmvu": 68.5,
        "mvbench": 62.1,
        "tempcompass": 73.7,
        "videomme": 59.8,
    },
    "Video-R1-7B": {
        "vsibench": 35.8,
        "videommmu": 52.3,
        "mmvu": 63.8,
        "mvbench": 63.9,
        "tempcompass": 73.2,
        "videomme": 59.3,
    },
}
PUBLISHED_SOURCE = (
    "VideoRFT paper (arXiv 2505.12434) Table 1: VideoRFT-7B and Video-R1-7B, 32 frames, 256·28·28 px "
    "per frame, eval_bench.py scoring"
)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def bench_summary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per benchmark: our eval_bench score (0–100) and the published ones, for bench.json."""
    rows = {}
    for name in BENCHMARKS:
        metrics = results.get(name)
        bench = (metrics or {}).get("eval_bench") or {}
        rows[name] = {
            "title": BENCHMARK_TITLES[name],
            "ours": None if bench.get("score") is None else 100 * bench["score"],
            "mean_acc": bench.get("mean_acc"),
            "mean_mra": bench.get("mean_mra"),
            "score_rule": bench.get("score_rule"),
            "rows": bench.get("rows"),
            "scored": bench.get("scored"),
            "skipped_media": bench.get("skipped_media"),
            "evaluated": metrics is not None,
            **{model: numbers[name] for model, numbers in PUBLISHED.items()},
        }
    return {"benchmarks": rows, "published_source": PUBLISHED_SOURCE}


def bench_markdown(results: dict[str, dict[str, Any]], run: dict[str, Any]) -> str:
    """The table `videorft bench-eval` writes (bench.md) and prints."""
    summary = bench_summary(results)["benchmarks"]
    models = list(PUBLISHED)
    lines = [
        f"# Benchmarks: {run.get('model')}",
        "",
        "| benchmark | ours | " + " | ".join(models) + " | metric | rows | scored | skipped (media) |",
        "|---|---:|" + "---:|" * len(models) + "---|---:|---:|---:|",
    ]
    for name, r in summary.items():
        if not r["evaluated"]:
            lines.append(
                f"| {r['title']} | not run | "
                + " | ".join(f"{r[m]:.1f}" for m in models)
                + f" | eval_{name}.json not found | | | |"
            )
            continue
        rule = r["score_rule"].replace("mean_acc", "acc").replace("mean_mra", "MRA")
        ours = "–" if r["ours"] is None else f"{r['ours']:.1f}"
        lines.append(
            f"| {r['title']} | **{ours}** | "
            + " | ".join(f"{r[m]:.1f}" for m in models)
            + f" | {rule} | {r['rows']} | {r['scored']} | {r['skipped_media']} |"
        )
    lines += ["", f"Published numbers: {PUBLISHED_SOURCE}.", ""]
    lines += ["## Per problem type", "", "| benchmark | problem type | rows | score |", "|---|---|---:|---:|"]
    for name in BENCHMARKS:
        bench = (results.get(name) or {}).get("eval_bench")
        for ptype, s in (bench or {}).get("by_problem_type", {}).items():
            label = "MRA" if ptype == "regression" else "acc"
            lines.append(f"| {BENCHMARK_TITLES[name]} | {ptype} ({label}) | {s['n']} | {_pct(s['mean'])} |")
    lines += [
        "",
        "## How these numbers were made",
        "",
        f"- model: `{run.get('model')}`; generator: {run.get('generator')}; processes: {run.get('processes')}",
        f"- frames: {run.get('num_frames')} per video at ≤ {run.get('video_max_pixels')} px; "
        f"temperature {run.get('temperature')}, top_p {run.get('top_p')}, max {run.get('max_new_tokens')} new tokens",
        "- scoring: eval_bench.py's (exact match for multiple choice, Video-R1's numerical rule, MRA in "
        "float32 for regression, the whole output when the `<answer>` tag is missing); a benchmark with "
        "both kinds (VSI-Bench) scores (acc + MRA) / 2",
        f"- prompt style: `{run.get('prompt_style')}`; multiple-choice user turn (media first):",
        "",
        "```text",
        str((run.get("prompt") or {}).get("template") or (run.get("prompt") or {}).get("system_prompt", "")),
        "```",
        "",
        f"- prompt file hashes: {', '.join(f'`{k}` {v}' for k, v in (run.get('prompt') or {}).get('hashes', {}).items())}",
        "",
    ]
    return "\n".join(lines)
