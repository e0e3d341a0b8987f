"""Executors: threads of the flow process vs 2 worker processes (Dask, Ray), same run, same machine.

Each configuration is a fresh `videorft curate` process (its own PREFECT_HOME, its own cluster):

- LLM ceiling: `--until revise` over N rows (20 real videos reused, unique questions) against the
  simulated endpoint in its own process at 0.05 s latency and capacity 512 (far faster than the
  flow can feed), `max_in_flight` 256 per role: requests/s over the window the endpoint was busy.
- extract throughput: `--until extract` over 40 distinct videos (one question each), rows/s over
  the extract stage's wall time.
- per-task overhead: the same LLM run again, every shard reused (skipped): (rerun wall - the same
  rerun `--until sources`) / shard tasks x tasks in flight, i.e. what one task costs its process.

    python benchmarks/bench_executors.py                 # N=3000, threads + dask (+ ray)
    python benchmarks/bench_executors.py --n 1200 --executors threads dask
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, figure, machine, print_figures, scale_corpus, write_json  # noqa: E402

LATENCY_S, CAPACITY, IN_FLIGHT = 0.05, 512, 256


def recipe(path: Path, ann: Path, media: Path, runs: Path, url: str, *, shard_size: int) -> Path:
    import yaml

    data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    for ep in data["llm"]["endpoints"].values():
        ep.update(base_url=url, max_in_flight=IN_FLIGHT, timeout_s=60)
    data["source"].update(path=str(ann), media_root=str(media))
    data["run"].update(
        runs_dir=str(runs), name="bench", shard_size=shard_size, max_parallel_shards=8, report=False
    )
    data.setdefault("publish", {})["out_dir"] = str(runs / "published")
    path.write_text(yaml.safe_dump(data))
    return path


def curate(rec: Path, executor: str, *extra: str) -> tuple[float, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(
        PREFECT_HOME=tempfile.mkdtemp(prefix="vrft-bench-prefect-"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    cmd = [
        sys.executable,
        "-m",
        "flows.cli",
        "curate",
        str(rec),
        "--executor",
        executor,
        "--workers",
        "2",
        *extra,
    ]
    t0 = time.time()
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    shutil.rmtree(env["PREFECT_HOME"], ignore_errors=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    import yaml

    runs = Path(yaml.safe_load(rec.read_text())["run"]["runs_dir"])
    return wall, json.loads((runs / "bench" / "manifest.json").read_text())


def busy_window_s(stats: dict[str, Any]) -> float:
    busy = [i for i, b in enumerate(stats["busy_by_second"]) if b > 0]
    return float(busy[-1] - busy[0] + 1) if busy else 0.0


def measure(executor: str, work: Path, n: int, shard_size: int = 64) -> dict[str, Any]:
    from sim_endpoint.server import SimConfig, running_sim_server, sim_stats

    ann, media = scale_corpus(work / "corpus", n)
    ann_x, media_x = scale_corpus(work / "corpus-x", 40, n_videos=40)
    res: dict[str, Any] = {"executor": executor}
    sim = SimConfig(annotations=[str(ann)], latency_s=LATENCY_S, jitter_s=0.0, capacity=CAPACITY)
    with running_sim_server(sim, subprocess=True) as url:
        runs = work / f"runs-{executor}"
        rec = recipe(work / f"{executor}.yaml", ann, media, runs, url, shard_size=shard_size)
        wall, m = curate(rec, executor, "--until", "revise")
        stats = sim_stats(url)
        res.update(
            llm_wall_s=wall,
            llm_requests=stats["requests"],
            llm_window_s=busy_window_s(stats),
            llm_rps=stats["requests"] / max(busy_window_s(stats), 1e-9),
            resent_after_success=stats["resent_after_success"],
            shards=m["stages"]["caption"]["shards"],
            worker_processes=m.get("worker_processes"),
        )
        shard_s = res["llm_window_s"] / max(1, res["shards"]) * min(8, res["shards"])
        rerun_wall, m2 = curate(rec, executor, "--until", "revise")
        base_wall, _ = curate(rec, executor, "--until", "sources")
        tasks = sum(m2["stages"][s]["shards"] for s in ("extract", "caption", "draft", "revise"))
        in_flight = 1 if executor == "threads" else 2
        res.update(
            rerun_wall_s=rerun_wall,
            sources_only_wall_s=base_wall,
            per_task_s=max(0.0, rerun_wall - base_wall) / tasks * in_flight,
            shard_llm_s=shard_s,
        )
    runs_x = work / f"runs-x-{executor}"
    rec_x = recipe(work / f"{executor}-x.yaml", ann_x, media_x, runs_x, "http://127.0.0.1:9/v1", shard_size=4)
    wall_x, mx = curate(rec_x, executor, "--until", "extract")
    res.update(
        extract_wall_s=wall_x,
        extract_rows=mx["stages"]["extract"]["ok"],
        extract_stage_s=mx["stages"]["extract"]["seconds"],
        extract_rows_per_s=mx["stages"]["extract"]["ok"] / max(mx["stages"]["extract"]["seconds"], 1e-9),
    )
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--executors", nargs="+", default=["threads", "dask", "ray"])
    p.add_argument("--shard-size", type=int, default=64, help="rows per shard of the LLM runs")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vrft-bench-exec-"))
    try:
        results = {ex: measure(ex, work, args.n, args.shard_size) for ex in args.executors}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    t = results.get("threads")
    figs = []
    for ex, r in results.items():
        figs += [
            figure(
                f"{ex}: LLM requests/s over the endpoint's busy window (N={args.n})", r["llm_rps"], "req/s"
            ),
            figure(
                f"{ex}: requests sent / resent after success",
                f"{r['llm_requests']} / {r['resent_after_success']}",
            ),
            figure(f"{ex}: extract rows/s (40 distinct videos)", r["extract_rows_per_s"], "rows/s"),
            figure(f"{ex}: whole --until revise wall", r["llm_wall_s"], "s"),
            figure(f"{ex}: per-task overhead (skipped shard)", r["per_task_s"], "s"),
            figure(
                f"{ex}: per-task overhead / a {args.shard_size}-row shard's LLM time",
                r["per_task_s"] / max(r["shard_llm_s"], 1e-9),
                "",
                "< 0.02",
                r["per_task_s"] / max(r["shard_llm_s"], 1e-9) < 0.02,
            ),
        ]
        if t is not None and ex != "threads":
            ratio = r["llm_rps"] / max(t["llm_rps"], 1e-9)
            figs.append(figure(f"{ex} / threads: LLM ceiling ratio", ratio, "x", ">= 1.5", ratio >= 1.5))
            figs.append(
                figure(
                    f"{ex} / threads: extract throughput ratio",
                    r["extract_rows_per_s"] / t["extract_rows_per_s"],
                    "x",
                )
            )
    print_figures("executors", figs, {"machine": machine(), "n": args.n, "shard_size": args.shard_size})
    write_json(f"bench_executors-{args.shard_size}.json", {"results": results, "figures": figs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
