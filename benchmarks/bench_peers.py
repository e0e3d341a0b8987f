"""Peers in one run: the same LLM workload through distilabel, our gateway and a bare asyncio loop.

Workload: N draft requests (the draft stage's own prompt over a simulated caption of a real
synthetic video, a unique question each; text only, ~3-5 KB of prompt), the same sampling params
for everyone, against one simulated endpoint in a child process (mean latency 0.2 s, capacity 64,
so at most 320 requests/s), under two latency profiles (see PROFILES: answer-length-like log-normal,
where the goal is judged, and near-constant, the peer's best case). Concurrency budget 64 for
everyone:

- distilabel 1.5.3 `OpenAILLM.generate` (benchmarks/peers/distilabel_openai.py, in its own venv
  benchmarks/.venv-distilabel, created here when missing): distilabel bounds concurrency only by
  its batch (`input_batch_size`: one coroutine per row, gathered, then the next batch), so it gets
  batches of 64. For context, also one call with every request (unbounded concurrency);
- our gateway: `Gateway.run` over all N, `max_in_flight=64`, a fresh cache (all misses);
- bare: `asyncio` + `openai.AsyncOpenAI` + `Semaphore(64)`, nothing else (the reference ceiling),
  with openai's aiohttp transport (what our gateway uses) and, for context, its default httpx one
  (what distilabel uses).

    python benchmarks/bench_peers.py            # 2,000 requests
    python benchmarks/bench_peers.py --quick    # 1,000 requests
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH, REPO, draft_messages_corpus, figure, print_figures, write_json  # noqa: E402

LATENCY_S, CAPACITY = 0.2, 64
# Two endpoint profiles with the same mean latency. "length": log-normal (sigma 0.5), as a real
# server's latency follows each answer's length and CoT lengths spread widely; the goal is judged
# here. "uniform": 0.2 s ± 10%, near-constant, which no LLM server shows; kept as context (it
# leaves distilabel's batch barrier almost free, so it is the peer's best case).
PROFILES: dict[str, dict[str, float]] = {
    "length": {"latency_s": LATENCY_S, "latency_sigma": 0.5},
    "uniform": {"latency_s": LATENCY_S, "jitter_s": 0.02},
}
GOAL_PROFILE = "length"
MODEL = "deepseek-ai/DeepSeek-R1"
PARAMS = {"max_tokens": 1024, "temperature": 0.6}
DISTILABEL_VENV = BENCH / ".venv-distilabel"
DISTILABEL_SPEC = ["distilabel[openai]==1.5.3", "requests"]


def ensure_distilabel_venv() -> Path | None:
    """benchmarks/.venv-distilabel with distilabel in it (created once); None if it cannot be made."""
    py = DISTILABEL_VENV / "bin" / "python"
    probe = [str(py), "-W", "ignore", "-c", "import distilabel.models.llms"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(DISTILABEL_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *DISTILABEL_SPEC], check=True, timeout=1200)
    except (subprocess.SubprocessError, OSError) as err:
        print(f"cannot make the distilabel venv: {err}", file=sys.stderr)
        return None
    return py if subprocess.run(probe, capture_output=True).returncode == 0 else None


def run_bare(
    base_url: str, requests: list[list[dict[str, Any]]], concurrency: int, transport: str = "aiohttp"
) -> dict[str, Any]:
    """`transport`: "aiohttp" (openai's aiohttp client, what our gateway uses when installed) or
    "httpx" (the openai client's default, what distilabel uses)."""
    import openai
    from openai import AsyncOpenAI

    async def main() -> tuple[int, float]:
        limits = type(openai.DEFAULT_CONNECTION_LIMITS)(
            max_connections=concurrency, max_keepalive_connections=concurrency
        )
        cls = openai.DefaultAioHttpClient if transport == "aiohttp" else openai.DefaultAsyncHttpxClient
        client = AsyncOpenAI(
            base_url=base_url,
            api_key="not-needed",
            max_retries=3,
            timeout=60,
            http_client=cls(limits=limits, timeout=60),
        )
        sem = asyncio.Semaphore(concurrency)

        async def one(msgs: list[dict[str, Any]]) -> bool:
            async with sem:
                r = await client.chat.completions.create(model=MODEL, messages=msgs, **PARAMS)
                return bool(r.choices[0].message.content)

        await one(requests[0])  # warm the connection pool
        t0 = time.time()
        ok = sum(await asyncio.gather(*(one(m) for m in requests)))
        wall = time.time() - t0
        await client.close()
        return ok, wall

    ok, wall = asyncio.run(main())
    return {
        "peer": f"bare asyncio + AsyncOpenAI ({transport}) + Semaphore",
        "n": len(requests),
        "ok": ok,
        "wall_s": wall,
    }


def run_ours(base_url: str, requests: list[list[dict[str, Any]]], concurrency: int) -> dict[str, Any]:
    from curation.llm.gateway import ChatRequest, EndpointConfig, Gateway

    cfg = EndpointConfig(
        base_url=base_url, model=MODEL, max_in_flight=concurrency, timeout_s=60, max_retries=3
    )
    with tempfile.TemporaryDirectory(prefix="videorft-peers-") as tmp:
        with Gateway({"reasoner": cfg}, cache_path=Path(tmp) / "cache.sqlite") as gw:
            warm = [{"role": "user", "content": "[videorft-stage: none] warm-up"}]
            gw.run([ChatRequest("reasoner", warm, dict(PARAMS))])
            reqs = [ChatRequest("reasoner", m, dict(PARAMS)) for m in requests]
            t0 = time.time()
            results = gw.run(reqs)
            wall = time.time() - t0
            st = gw.stats()["reasoner"]
    return {
        "peer": "videorft Gateway.run (fresh cache, all misses)",
        "n": len(requests),
        "ok": sum(r.ok for r in results),
        "wall_s": wall,
        "cache_hits": st["cache_hits"] - 0,
    }


def run_distilabel(
    py: Path, base_url: str, requests_file: Path, concurrency: int, mode: str
) -> dict[str, Any]:
    cmd = [
        str(py),
        str(BENCH / "peers" / "distilabel_openai.py"),
        "--requests",
        str(requests_file),
        "--base-url",
        base_url,
        "--model",
        MODEL,
        "--batch",
        str(concurrency),
        "--mode",
        mode,
        "--max-new-tokens",
        str(PARAMS["max_tokens"]),
        "--temperature",
        str(PARAMS["temperature"]),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=REPO)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"distilabel driver failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def measure(url: str, requests: list, req_file: Path, py: Path | None, repeat: int) -> dict[str, list[dict]]:
    """Every client over the same requests against the endpoint at `url`, `repeat` rounds each."""
    from sim_endpoint.server import reset_sim_stats, sim_stats

    results: dict[str, list[dict[str, Any]]] = {}
    for _ in range(repeat):
        for name, fn in (
            ("bare", lambda: run_bare(url, requests, CAPACITY, "aiohttp")),
            ("bare-httpx", lambda: run_bare(url, requests, CAPACITY, "httpx")),
            ("ours", lambda: run_ours(url, requests, CAPACITY)),
            ("distilabel", lambda: run_distilabel(py, url, req_file, CAPACITY, "batches") if py else None),
            ("distilabel-all", lambda: run_distilabel(py, url, req_file, CAPACITY, "all") if py else None),
        ):
            reset_sim_stats(url)
            r = fn()
            if r is None:
                continue
            st = sim_stats(url)
            r.update(
                sim_requests=st["requests"],
                max_in_service=st["max_in_service"],
                resent_after_success=st["resent_after_success"],
            )
            results.setdefault(name, []).append(r)
            print(
                f"   {name}: {r['n'] / r['wall_s']:.1f} req/s ({r['ok']}/{r['n']} ok, "
                f"max in service {st['max_in_service']})",
                flush=True,
            )
    return results


def profile_figures(profile: str, results: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """Throughputs and ratios for one endpoint profile; the distilabel goal is judged on `GOAL_PROFILE`."""
    best = {k: max(v, key=lambda r: r["n"] / r["wall_s"]) for k, v in results.items()}
    rate = {k: r["n"] / r["wall_s"] for k, r in best.items()}
    ceiling = CAPACITY / LATENCY_S
    tag = f"[{profile}] "
    figs = [figure(f"{tag}{best[k]['peer']}: throughput", rate[k], "req/s") for k in best]
    figs += [
        figure(f"{tag}{k}: share of capacity/mean latency ({ceiling:.0f}/s)", rate[k] / ceiling, "x")
        for k in best
    ]
    ratio = rate["ours"] / rate["bare"]
    figs.append(
        figure(
            f"{tag}ours / bare (same transport: aiohttp; same concurrency 64)",
            ratio,
            "x",
            ">= 0.95",
            ratio >= 0.95,
        )
    )
    figs.append(
        figure(
            f"{tag}ours / bare with openai's default httpx transport (context)",
            rate["ours"] / rate["bare-httpx"],
            "x",
        )
    )
    if "distilabel" in rate:
        ratio = rate["ours"] / rate["distilabel"]
        name = f"{tag}ours / distilabel (batches of 64, as its Task steps run)"
        if profile == GOAL_PROFILE:
            figs.append(figure(name, ratio, "x", ">= 1.5", ratio >= 1.5))
        else:
            figs.append(figure(name + " (context)", ratio, "x"))
        figs.append(
            figure(
                f"{tag}ours / distilabel given every request at once (unbounded concurrency; context)",
                rate["ours"] / rate["distilabel-all"],
                "x",
            )
        )
    elif profile == GOAL_PROFILE:
        figs.append(figure("ours / distilabel", "not measured (no distilabel venv)", "", ">= 1.5", False))
    ok = all(r["ok"] == r["n"] for r in best.values())
    figs.append(figure(f"{tag}all answers ok", ok, "", "true", ok))
    return figs


def run(quick: bool = True, n: int | None = None, repeat: int = 1) -> list[dict[str, Any]]:
    from sim_endpoint.server import SimConfig, running_sim_server

    n = n or (1000 if quick else 2000)
    figs: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="videorft-peers-") as tmp:
        requests = draft_messages_corpus(n, Path(tmp))
        req_file = Path(tmp) / "requests.json"
        req_file.write_text(json.dumps(requests))
        prompt_kib = sum(len(json.dumps(m)) for m in requests) / len(requests) / 1024
        py = ensure_distilabel_venv()
        for profile, latency in PROFILES.items():
            print(f"-- endpoint profile {profile}: {latency}", flush=True)
            cfg = SimConfig(capacity=CAPACITY, **latency)
            with running_sim_server(cfg, subprocess=True) as url:
                raw[profile] = measure(url, requests, req_file, py, repeat)
            figs += profile_figures(profile, raw[profile])
    write_json(f"bench_peers-{n}.json", {"n": n, "prompt_kib": prompt_kib, "results": raw, "figures": figs})
    return figs


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    figs = run(quick=a.quick, n=a.n, repeat=a.repeat)
    print_figures(
        "bench_peers: one workload, three clients, one simulated endpoint",
        figs,
        {
            "endpoint": f"mean latency {LATENCY_S}s, capacity {CAPACITY} (child process); profiles {PROFILES}",
            "workload": f"{a.n or (1000 if a.quick else 2000)} draft requests, params {PARAMS}",
        },
    )
