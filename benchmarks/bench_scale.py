"""Scale: one curate flow run over N samples against the simulated endpoint. Do the claims hold?

N annotation rows reuse 20 real synthetic videos (distinct questions, the originals' ground truth,
so the simulated endpoint answers every row). The endpoint runs in a child process (its own GIL)
with latency 2.0 s ± 0.4 and capacity 256, i.e. at most 128 requests/s: one vLLM server with
256 sequences in flight answering each in 2 s. That is already an optimistic endpoint for this
workload (a reasoning model's draft CoT of 500-1,000 tokens takes 10-30 s under load, so a real
server delivers fewer requests/s; 128/s is a fleet of such servers behind one URL). Every size runs
in a fresh child process (own PREFECT_HOME, own memory peak). Figures:

- wall time; LLM requests/s against capacity/latency over the window in which LLM shards ran;
- Prefect's share: (a) worker-thread time inside Prefect's task engine but outside our shard
  functions, over all worker-thread time; (b) flow edges (call → first shard function, last shard
  function → return); (c) the same run without Prefect (a plain thread pool with the same
  pipelined schedule) vs through the flow, at the quick size;
- peak RSS of the flow process at two sizes, both past pipeline fill (memory must not grow with N);
- run store size on disk, frame files written, extract's share of shard-function time;
- the flow's own ceiling: requests/s it drives when the endpoint is not the limit (latency 0.05 s),
  i.e. the fastest endpoint (or fleet) one flow process on this machine keeps saturated.

    python benchmarks/bench_scale.py --quick          # 2,048 and 6,000 samples + a plain run at 6,000
    python benchmarks/bench_scale.py --n 100000       # 10,000 and 100,000 samples
    python benchmarks/bench_scale.py --child --n 2000 --mode prefect --json out.json   # one size
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    OUT,
    REPO,
    RssSampler,
    count_files,
    du_bytes,
    figure,
    prefect_env,
    print_figures,
    scale_corpus,
    write_json,
)

LATENCY_S, JITTER_S, CAPACITY = 2.0, 0.4, 256
# The ceiling run: an endpoint ~20x faster than the flow can feed, so the flow is the only limit.
CEILING_LATENCY_S, CEILING_JITTER_S = 0.05, 0.01
# The quick size (`make bench`): three times the pipeline fill of the default schedule (8 x 256).
QUICK_N = 6000
N_VIDEOS = 20


def make_recipe(
    ann: Path, media: Path, runs: Path, base_url: str, *, shard_size: int, parallel: int, in_flight: int
):
    import yaml

    from curation.config import recipe_from_dict

    data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    for ep in data["llm"]["endpoints"].values():
        ep.update(base_url=base_url, max_in_flight=in_flight, timeout_s=60)
    data["source"].update(path=str(ann), media_root=str(media))
    data["run"].update(runs_dir=str(runs), name="scale", shard_size=shard_size, max_parallel_shards=parallel)
    data.setdefault("publish", {})["out_dir"] = str(runs / "published")
    return recipe_from_dict(data, origin="bench_scale")


class Timings:
    """(kind, stage, start, end) of every shard function and every Prefect task-engine call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fn: list[tuple[str, float, float]] = []  # (stage, start, end)
        self.engine: list[tuple[float, float]] = []

    def add_fn(self, stage: str, t0: float, t1: float) -> None:
        with self.lock:
            self.fn.append((stage, t0, t1))

    def instrument_flow(self) -> None:
        """Wrap the functions the flow's tasks call, and Prefect's sync task engine."""
        import prefect.task_engine as te

        import flows.curate as fc

        def wrap(name: str, fn, stage_of):
            def inner(*a, **kw):
                t0 = time.time()
                try:
                    return fn(*a, **kw)
                finally:
                    self.add_fn(stage_of(a, kw), t0, time.time())

            inner.__name__ = name
            return inner

        fc.run_sources = wrap("run_sources", fc.run_sources, lambda a, kw: "sources")
        fc.run_stage_shard = wrap("run_stage_shard", fc.run_stage_shard, lambda a, kw: a[1])
        import curation.publish_step as ps
        import curation.report.html as report_html

        ps.run_publish = wrap("run_publish", ps.run_publish, lambda a, kw: "publish")
        # The report is our work, not Prefect's: timed like a shard function (report_task imports it late).
        report_html.write_report = wrap("write_report", report_html.write_report, lambda a, kw: "report")
        real_engine = te.run_task_sync

        def engine(*a, **kw):
            t0 = time.time()
            try:
                return real_engine(*a, **kw)
            finally:
                with self.lock:
                    self.engine.append((t0, time.time()))

        te.run_task_sync = engine


def run_plain(recipe, timings: Timings) -> dict[str, Any]:
    """The flow's schedule without Prefect: the same runner functions, the same pipelining
    (at most max_parallel_shards shard tasks at once, started shards advance before new ones), the
    same publish and report."""
    from curation.publish_step import run_publish
    from curation.runner import (
        ROW_STAGES,
        STAGE_VERSIONS,
        CurationContext,
        finalize_stage,
        run_config_header,
        run_sources,
        run_stage_shard,
        shard_count,
    )
    from curation.store import RunStore

    store = RunStore(recipe.run_dir)
    ctx = CurationContext(recipe=recipe, store=store)
    store.manifest.update(**run_config_header(ctx), status="running")
    try:
        t0 = time.time()
        st = run_sources(ctx)
        timings.add_fn("sources", t0, time.time())
        store.manifest.set_stage(st, version=STAGE_VERSIONS["sources"])
        n = shard_count(store)
        per_stage: dict[str, list[Any]] = {s: [None] * n for s in ROW_STAGES}
        workers = recipe.run.max_parallel_shards

        def job(stage: str, shard: int):
            t = time.time()
            try:
                return run_stage_shard(ctx, stage, shard)
            finally:
                timings.add_fn(stage, t, time.time())

        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: dict[Any, tuple[int, int]] = {}
            ready: list[tuple[int, int]] = []
            next_shard = 0
            while pending or ready or next_shard < n:
                while len(pending) < workers and (ready or next_shard < n):
                    if ready:
                        shard, k = ready.pop(0)
                    else:
                        shard, k = next_shard, 0
                        next_shard += 1
                    pending[pool.submit(job, ROW_STAGES[k], shard)] = (shard, k)
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    shard, k = pending.pop(fut)
                    per_stage[ROW_STAGES[k]][shard] = fut.result()
                    if k + 1 < len(ROW_STAGES):
                        ready.append((shard, k + 1))
        for stage in ROW_STAGES:
            finalize_stage(ctx, stage, per_stage[stage])
        t0 = time.time()
        run_publish(ctx)
        timings.add_fn("publish", t0, time.time())
        if recipe.run.report:  # the flow writes it too: same work on both sides
            from curation.report.html import write_report

            t0 = time.time()
            write_report(ctx.run_dir)
            timings.add_fn("report", t0, time.time())
        store.manifest.update(status="completed")
        return store.manifest.data
    finally:
        ctx.close()


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) of this process and of each kind of child process so far."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    out = {"flow process": t.user + t.system}
    for c in me.children(recursive=True):
        try:
            cmd = " ".join(c.cmdline())
            ct = c.cpu_times()
        except psutil.Error:
            continue
        kind = (
            "endpoint (sim)"
            if "sim_server" in cmd
            else ("prefect server" if "prefect" in cmd else "other child")
        )
        out[kind] = out.get(kind, 0.0) + ct.user + ct.system
    return out


def child(
    n: int,
    mode: str,
    work: Path,
    *,
    shard_size: int,
    parallel: int,
    in_flight: int,
    latency_s: float = LATENCY_S,
    jitter_s: float = JITTER_S,
    capacity: int = CAPACITY,
) -> dict[str, Any]:
    """One size, one mode, one endpoint, in this (fresh) process."""
    prefect_env(work / "prefect-home")
    from sim_endpoint.server import SimConfig, running_sim_server, sim_stats

    t_data = time.time()
    ann, media = scale_corpus(work / "data", n, N_VIDEOS)
    t_data = time.time() - t_data
    runs = work / f"runs-{mode}-{n}-{latency_s:g}"
    shutil.rmtree(runs, ignore_errors=True)  # a fresh run store and a fresh LLM cache: every row computed
    sim = SimConfig(annotations=[str(ann)], latency_s=latency_s, jitter_s=jitter_s, capacity=capacity)
    timings = Timings()
    out: dict[str, Any] = {
        "n": n,
        "mode": mode,
        "shard_size": shard_size,
        "parallel": parallel,
        "in_flight": in_flight,
        "endpoint": {"latency_s": latency_s, "jitter_s": jitter_s, "capacity": capacity},
        "corpus_s": round(t_data, 2),
    }
    with running_sim_server(sim, subprocess=True, startup_timeout_s=600) as url:
        recipe = make_recipe(
            ann, media, runs, url, shard_size=shard_size, parallel=parallel, in_flight=in_flight
        )
        if mode == "prefect":
            from prefect import flow

            @flow(name="warmup")
            def warmup() -> int:
                return 1

            t = time.time()
            warmup()  # starts Prefect's local server: a fixed cost, reported apart
            out["prefect_warmup_s"] = round(time.time() - t, 2)
            timings.instrument_flow()
            from flows.curate import run_curate

        cpu0 = _cpu_seconds()
        with RssSampler(0.25) as rss:
            t_call = time.time()
            manifest = run_curate(recipe=recipe) if mode == "prefect" else run_plain(recipe, timings)
            t_return = time.time()
        cpu1 = _cpu_seconds()
        stats = sim_stats(url)
    out["cpu_s"] = {k: round(cpu1.get(k, 0.0) - cpu0.get(k, 0.0), 1) for k in cpu1}
    fn = timings.fn
    llm = [(a, b) for s, a, b in fn if s in ("caption", "draft", "revise")]
    window = (max(b for _, b in llm) - min(a for a, _ in llm)) if llm else 0.0
    fn_time = sum(b - a for _, a, b in fn)
    by_stage: dict[str, float] = {}
    for s, a, b in fn:
        by_stage[s] = by_stage.get(s, 0.0) + (b - a)
    engine_time = sum(b - a for a, b in timings.engine)
    out.update(
        wall_s=round(t_return - t_call, 3),
        edge_start_s=round(min(a for _, a, _ in fn) - t_call, 3),
        edge_end_s=round(t_return - max(b for _, _, b in fn), 3),
        fn_time_s=round(fn_time, 3),
        fn_time_by_stage_s={k: round(v, 2) for k, v in by_stage.items()},
        engine_time_s=round(engine_time, 3),
        tasks=len(fn),
        llm_window_s=round(window, 3),
        sim=stats,
        peak_rss_mib=round(rss.peak_self_mib, 1),
        peak_children_rss_mib=round(rss.peak_children_mib, 1),
        peak_rss_at_s=rss.peak_at_s,
        rss_trace=rss.samples[:: max(1, len(rss.samples) // 60)],
        run_store_bytes=du_bytes(runs / "scale"),
        frames_bytes=du_bytes(runs / "scale" / "frames") if (runs / "scale" / "frames").exists() else 0,
        frame_files=count_files(runs / "scale" / "frames", suffix=".jpg"),  # 0 when there is none
        llm_cache_bytes=du_bytes(Path(recipe.cache_path)) if Path(recipe.cache_path).exists() else 0,
        stages={
            k: {
                f: v.get(f)
                for f in (
                    "in",
                    "ok",
                    "rejected",
                    "failed",
                    "llm_requests",
                    "llm_cache_hits",
                    "seconds",
                    "accounted",
                )
            }
            for k, v in manifest.get("stages", {}).items()
        },
        status=manifest.get("status"),
    )
    return out


def _spawn(
    n: int,
    mode: str,
    work: Path,
    args: argparse.Namespace,
    timeout: float,
    *,
    latency_s: float | None = None,
    jitter_s: float | None = None,
) -> dict[str, Any]:
    latency_s = args.latency if latency_s is None else latency_s
    jitter_s = args.jitter if jitter_s is None else jitter_s
    out_json = work / f"result-{mode}-{n}-{latency_s:g}.json"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--n",
        str(n),
        "--mode",
        mode,
        "--work",
        str(work),
        "--json",
        str(out_json),
        "--shard-size",
        str(args.shard_size),
        "--parallel",
        str(args.parallel),
        "--in-flight",
        str(args.in_flight),
        "--latency",
        str(latency_s),
        "--jitter",
        str(jitter_s),
        "--capacity",
        str(args.capacity),
    ]
    print(f"-- {mode} run, N={n}, endpoint latency {latency_s:g}s ...", flush=True)
    proc = subprocess.run(
        cmd, cwd=REPO, timeout=timeout, env=dict(os.environ), capture_output=True, text=True
    )
    if proc.returncode != 0 or not out_json.exists():
        raise RuntimeError(f"scale child N={n} {mode} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    res = json.loads(out_json.read_text())
    print(
        f"   wall {res['wall_s']:.1f}s, {res['sim']['requests']} requests, peak RSS {res['peak_rss_mib']} MiB",
        flush=True,
    )
    return res


def figures_for(
    res: dict[str, Any], *, small: dict[str, Any] | None, plain: dict[str, Any] | None
) -> list[dict]:
    from sim_endpoint.server import occupancy

    n = res["n"]
    endpoint = res["endpoint"]
    ceiling = endpoint["capacity"] / endpoint["latency_s"]
    reqs = res["sim"]["requests"]
    rate_window = reqs / res["llm_window_s"] if res["llm_window_s"] else 0.0
    busy, capacity = res["sim"]["busy_by_second"], endpoint["capacity"]
    steady = occupancy(busy, capacity, trim=0.1)
    figs = [
        figure(f"wall time, N={n}", res["wall_s"], "s"),
        figure(f"throughput, N={n}", n / res["wall_s"], "samples/s"),
        figure(f"LLM requests sent (caption cache hits not sent), N={n}", reqs, "requests"),
        figure(
            f"endpoint occupancy, steady state (middle 80% of {len(busy)} s in service), N={n}",
            steady,
            "x of capacity",
            ">= 0.95",
            steady >= 0.95,
        ),
        figure(
            f"endpoint occupancy, first to last request (pipeline fill and drain included), N={n}",
            occupancy(busy, capacity),
            "x of capacity",
        ),
        figure(
            f"requests/s over the LLM window / (capacity/latency = {ceiling:.0f}/s), N={n}",
            rate_window / ceiling,
            "x",
        ),
        figure(f"requests/s over the whole wall / capacity, N={n}", reqs / res["wall_s"] / ceiling, "x"),
        figure(
            f"endpoint max in service (capacity {endpoint['capacity']}), N={n}",
            res["sim"]["max_in_service"],
            "requests",
        ),
        figure(
            f"extract share of shard-function time, N={n}",
            res["fn_time_by_stage_s"].get("extract", 0.0) / max(res["fn_time_s"], 1e-9),
            "x",
        ),
    ]
    if res["mode"] == "prefect":
        # Every shard function ran inside a task in this mode: the rest of the engine's time is Prefect's.
        engine_extra = max(0.0, res["engine_time_s"] - res["fn_time_s"])
        share = engine_extra / max(res["engine_time_s"], 1e-9)
        edges = res["edge_start_s"] + res["edge_end_s"]
        figs += [
            # An upper bound, no goal: in a GIL-bound process this counts the engine's waits for the
            # GIL and for the Prefect server, not only Prefect's own work. The plain run decides.
            figure(
                f"upper bound: worker-thread time in Prefect's engine outside shard fns, N={n}", share, "x"
            ),
            figure(
                f"Prefect flow edges (call->first shard fn + last fn->return) / wall, N={n}",
                edges / res["wall_s"],
                "x",
                "<= 0.05",
                edges / res["wall_s"] <= 0.05,
            ),
            figure(
                "Prefect local server start (first flow, fresh PREFECT_HOME; not in wall)",
                res.get("prefect_warmup_s", 0.0),
                "s",
            ),
        ]
        if plain is not None and plain["n"] == n:
            over = (res["wall_s"] - plain["wall_s"]) / res["wall_s"]
            figs.append(
                figure(
                    f"Prefect overhead vs plain pipelined run ({plain['wall_s']:.1f}s), N={n}",
                    over,
                    "x",
                    "<= 0.05",
                    over <= 0.05,
                )
            )
    if small is not None:
        growth = res["peak_rss_mib"] / small["peak_rss_mib"]
        figs.append(
            figure(
                f"peak RSS N={small['n']} -> N={n} ({small['peak_rss_mib']:.0f} -> "
                f"{res['peak_rss_mib']:.0f} MiB)",
                growth,
                "x",
                "<= 1.2 (flat in N)",
                growth <= 1.2,
            )
        )
    figs += [
        figure(f"peak RSS of the flow process, N={n}", res["peak_rss_mib"], "MiB"),
        figure(f"run store on disk, N={n}", res["run_store_bytes"] / 2**20, "MiB"),
        figure(f"frame files written, N={n}", res["frame_files"], "files"),
        figure(f"LLM response cache on disk, N={n}", res["llm_cache_bytes"] / 2**20, "MiB"),
    ]
    accounted = all(v.get("accounted", True) for v in res["stages"].values())
    figs.append(
        figure(f"manifest accounted (in == ok + rejected + failed), N={n}", accounted, "", "true", accounted)
    )
    return figs


def ceiling_figures(res: dict[str, Any], reference: dict[str, Any]) -> list[dict]:
    """What one flow process drives when the endpoint is never the limit, against `reference`'s endpoint."""
    ref = reference["endpoint"]
    ref_rate = ref["capacity"] / ref["latency_s"]
    reqs = res["sim"]["requests"]
    rate = reqs / res["llm_window_s"] if res["llm_window_s"] else 0.0
    return [
        figure(
            f"flow's own ceiling: requests/s over the LLM window, endpoint latency "
            f"{res['endpoint']['latency_s']:g}s, N={res['n']}",
            rate,
            "requests/s",
        ),
        figure(
            f"flow's own ceiling / the scale runs' endpoint ({ref['capacity']}/{ref['latency_s']:g}s = "
            f"{ref_rate:.0f}/s): headroom",
            rate / ref_rate,
            "x",
        ),
    ]


def run(
    quick: bool = True, n: int | None = None, *, args: argparse.Namespace | None = None
) -> list[dict[str, Any]]:
    args = args or parse_args([])
    big = n or (QUICK_N if quick else 100_000)
    # Memory is compared from the size that fills the pipeline (every parallel shard in flight):
    # below it RSS grows with N by design (more shards in flight), so a smaller N says nothing.
    small = min(max(big // (4 if quick else 10), args.shard_size * args.parallel), big)
    from _common import temp_dir

    with temp_dir("videorft-scale-", keep=args.keep) as work:
        res_small = _spawn(small, "prefect", work, args, timeout=3600)
        res_big = _spawn(big, "prefect", work, args, timeout=4 * 3600)
        # Without Prefect, same schedule: at the big size in quick mode (or --plain), else the small one.
        plain_n = big if (quick or args.plain) else small
        res_plain = _spawn(plain_n, "plain", work, args, timeout=4 * 3600)
        # The flow's own ceiling, at the quick size (enough requests for a steady rate).
        res_ceiling = _spawn(
            min(big, 2000),
            "prefect",
            work,
            args,
            timeout=3600,
            latency_s=CEILING_LATENCY_S,
            jitter_s=CEILING_JITTER_S,
        )
    figs = figures_for(res_small, small=None, plain=res_plain) if (args.verbose or plain_n == small) else []
    figs += figures_for(res_big, small=res_small, plain=res_plain)
    figs += ceiling_figures(res_ceiling, res_big)
    write_json(
        f"bench_scale-{big}.json",
        {"small": res_small, "big": res_big, "plain": res_plain, "ceiling": res_ceiling, "figures": figs},
    )
    return figs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--child", action="store_true")
    p.add_argument("--mode", choices=("prefect", "plain"), default="prefect")
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--shard-size", type=int, default=256)
    p.add_argument("--parallel", type=int, default=8, help="max_parallel_shards")
    p.add_argument("--in-flight", type=int, default=CAPACITY, help="max_in_flight per endpoint")
    p.add_argument("--latency", type=float, default=LATENCY_S, help="endpoint latency, seconds")
    p.add_argument("--jitter", type=float, default=JITTER_S, help="endpoint latency jitter, seconds")
    p.add_argument("--capacity", type=int, default=CAPACITY, help="endpoint requests in service at once")
    p.add_argument("--plain", action="store_true", help="also run the big size without Prefect")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--verbose", action="store_true", help="print the small size's figures too")
    return p.parse_args(argv)


if __name__ == "__main__":
    a = parse_args(sys.argv[1:])
    if a.child:
        work = a.work or OUT / "scale"
        work.mkdir(parents=True, exist_ok=True)
        result = child(
            a.n or 2000,
            a.mode,
            work,
            shard_size=a.shard_size,
            parallel=a.parallel,
            in_flight=a.in_flight,
            latency_s=a.latency,
            jitter_s=a.jitter,
            capacity=a.capacity,
        )
        (a.json or work / "result.json").write_text(json.dumps(result, indent=2, default=str))
        sys.exit(0)
    figs = run(quick=a.quick, n=a.n, args=a)
    print_figures(
        "bench_scale: one curate flow run vs the simulated endpoint",
        figs,
        {
            "endpoint": f"latency {a.latency:g}s ± {a.jitter:g}, capacity {a.capacity} (child process); "
            f"ceiling run at {CEILING_LATENCY_S:g}s",
            "recipe": f"shard_size {a.shard_size}, max_parallel_shards {a.parallel}, "
            f"max_in_flight {a.in_flight}/endpoint, {N_VIDEOS} distinct videos",
        },
    )
