"""`videorft bench-eval RECIPE --eval-dir DIR`: the six benchmarks of the papers, as they compute them.

    videorft bench-eval recipes/qwen2_5_vl_7b/eval.yaml --eval-dir /data/Evaluation
    python -m training.bench_eval --config recipes/qwen2_5_vl_7b/eval.yaml --eval_dir /data/Evaluation
    accelerate launch --config_file recipes/accelerate/ddp.yaml -m training.bench_eval --config ... --eval_dir ...

Runs every `eval_<benchmark>.json` found in `eval_dir` (Video-R1's evaluation files) with one model
load, each benchmark resumable in `<output_dir>/<benchmark>/`, then writes `<output_dir>/bench.md`
and `bench.json`: per benchmark our number beside VideoRFT-7B's and Video-R1-7B's published ones,
per-problem-type breakdowns, the rows skipped for missing media (with `skip_bad_media`), and the
prompt used (eval_bench.py's by default). Media paths are relative to `bench_media_root` (CLI
`--media-root`), by default `eval_dir` itself (Video-R1 keeps the benchmark media next to the files).
The recipe's `media_root` and `dataset_name` (a published set's) are not used here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.bench_formats import BENCHMARKS, find_benchmarks, read_videor1_eval
from training.bench_table import bench_markdown, bench_summary
from training.configs import EvalArguments, parse_recipe
from training.eval_loop import EvalTask
from training.evaluate import evaluate_tasks

logger = logging.getLogger("training.evaluate")


@dataclass
class BenchArguments(EvalArguments):
    """Evaluation arguments plus where the benchmark files are."""

    eval_dir: str | None = field(
        default=None, metadata={"help": "Folder holding eval_<benchmark>.json files."}
    )
    benchmarks: list[str] = field(
        default_factory=lambda: list(BENCHMARKS), metadata={"help": f"Subset of {list(BENCHMARKS)}."}
    )
    bench_media_root: str | None = field(
        default=None,
        metadata={"help": "Folder the files' `path` values are relative to (default: eval_dir)."},
    )


def bench_tasks(args: BenchArguments) -> list[EvalTask]:
    if not args.eval_dir:
        raise ValueError("eval_dir is required (the folder holding eval_<benchmark>.json files)")
    names = list(args.benchmarks)
    found = find_benchmarks(args.eval_dir, names)
    missing = [n for n in names if n not in found]
    if missing:
        logger.warning("not found in %s (left out of the table): %s", args.eval_dir, ", ".join(missing))
    media_root = args.bench_media_root or args.eval_dir
    out = Path(args.output_dir)
    return [
        EvalTask(
            name,
            read_videor1_eval(path),
            out / name,
            media_root,
            "eval_bench",
            {"kind": "videor1_eval", "file": str(path), "benchmark": name},
        )
        for name, path in found.items()
    ]


def main(args: BenchArguments) -> dict[str, Any]:
    """Run the benchmarks, write bench.md / bench.json, print the table (main process)."""
    logging.basicConfig(level=logging.INFO)
    tasks = bench_tasks(args)
    results = evaluate_tasks(args, tasks)
    if not results:
        return {}
    by_name = {t.name: m for t, m in zip(tasks, results, strict=True)}
    run = results[0]["run"]
    table = bench_markdown(by_name, run)
    summary = {**bench_summary(by_name), "run": {k: v for k, v in run.items() if k not in ("args", "file")}}
    out = Path(args.output_dir)
    (out / "bench.md").write_text(table)
    (out / "bench.json").write_text(json.dumps(summary, indent=2, default=str))
    print(table.split("\n## ")[0].rstrip(), flush=True)
    print(f"\nfull table: {out / 'bench.md'}", flush=True)
    return summary


def run_bench(config: str | Path | dict | list[str] | None = None, **overrides: Any) -> dict[str, Any]:
    """In-process entry: `run_bench("recipes/tiny/eval.yaml", eval_dir=..., model_name_or_path=...)`."""
    (args,) = parse_recipe((BenchArguments,), config, **overrides)
    return main(args)


if __name__ == "__main__":
    from trl import TrlParser

    (bench_args,) = TrlParser((BenchArguments,)).parse_args_and_config()
    main(bench_args)
    from training.eval_loop import end_process_group

    end_process_group()
