"""Fault campaign: transport faults, SIGKILLs, a full disk and bad inputs. Is anything lost or paid twice?

Every scenario runs the real CLI (`python -m flows.cli curate ...`) in its own session against the
simulated endpoint, which runs in a separate child process (so it survives the kills and keeps
counting). The corpus mixes good synthetic videos with bad videos (zero bytes, truncated, not a
video, missing) and bad annotation rows (malformed JSON, missing fields, unknown problem type, a
path escaping the media root, multiple choice without options, duplicates). After each scenario
the run is rerun to completion and checked:

- no lost rows: the sources table has one row per annotation line; every stage table holds exactly
  the ok ids of the stage before; the manifest says in == ok + rejected + failed and agrees with the
  tables; publish got every filter-ok row;
- no duplicates: ids are unique in every stage table;
- no repaid requests: the endpoint's `resent_after_success` is 0 across the faults and the rerun.
  Across a SIGKILL, the only requests a rerun may send again are those the endpoint answered while
  the killed process could no longer store the answer (in flight at the kill), or that came back
  after the client's timeout had given up on them: counted as (answers the endpoint gave) - (rows
  in the response cache), and reported; a full disk that refuses the cache write loses answers too;
- a consistent manifest (status completed, counts equal to the tables, every Parquet file readable).

    python benchmarks/fault_campaign.py            # full: 5 kinds x {5, 20, 50}%, 16 kill points, full disk
    python benchmarks/fault_campaign.py --quick    # reduced: every kind at 10% in one run, 2 kills, full disk
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, figure, prefect_env, print_figures, write_json  # noqa: E402

FAULT_KINDS = ("server_error", "rate_limited", "hang", "malformed", "truncated")
ROW_STAGES = ("extract", "caption", "draft", "revise", "filter")
UPSTREAM = {
    "extract": "sources",
    "caption": "extract",
    "draft": "caption",
    "revise": "draft",
    "filter": "revise",
}
ENDPOINT = {
    "timeout_s": 2.0,
    "max_retries": 12,
    "backoff_base_s": 0.02,
    "backoff_max_s": 0.2,
    "max_in_flight": 16,
}


# ---- corpus -----------------------------------------------------------------------------------


@dataclass
class Corpus:
    root: Path
    media: Path
    annotations: Path  # what the pipeline reads: good and bad rows
    sim_annotations: Path  # the good rows only (what the simulated endpoint loads)
    lines: int  # non-empty lines of `annotations` (one sources row each)
    bad: dict[str, str] = field(default_factory=dict)  # problem text -> what is wrong with it


def make_corpus(root: Path, n_good: int, seed: int = 0) -> Corpus:
    """`n_good` real synthetic samples plus a corpus of bad videos and bad annotation rows."""
    from curation.sources.synthetic import generate

    media = root / "media"
    clean = generate(media, n_good, seed=seed)
    rows = [json.loads(line) for line in clean.read_text().splitlines() if line.strip()]
    sim_ann = root / "sim-annotations.jsonl"
    shutil.copyfile(clean, sim_ann)
    good_video = media / rows[0]["media_path"]
    bad_dir = media / "bad"
    bad_dir.mkdir(exist_ok=True)
    (bad_dir / "zero.mp4").write_bytes(b"")
    data = good_video.read_bytes()
    (bad_dir / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (bad_dir / "text.mp4").write_text("this is not a video\n" * 50)
    lines = [json.dumps(r, sort_keys=True) for r in rows]
    bad: dict[str, str] = {}

    def variant(kind: str, **changes: Any) -> None:
        row = dict(rows[len(bad) % len(rows)])
        row["problem"] = f"{row['problem']} [bad: {kind}]"
        row.update(changes)
        row = {k: v for k, v in row.items() if v is not None}
        bad[row.get("problem", kind)] = kind
        lines.append(json.dumps(row, sort_keys=True))

    variant("zero-byte video", media_path="bad/zero.mp4")
    variant("truncated video", media_path="bad/truncated.mp4")
    variant("not a video", media_path="bad/text.mp4")
    variant("missing video", media_path="bad/missing.mp4")
    variant("path escaping the media root", media_path="../../etc/passwd")
    variant("unknown problem type", problem_type="essay")
    variant("multiple choice without options", problem_type="multiple choice", options=[], solution="A")
    variant("missing solution", solution=None)
    lines.append(
        json.dumps({k: v for k, v in rows[1].items() if k != "problem"}, sort_keys=True)
    )  # no problem
    lines.append('{"problem": "a malformed line", "media_path": ')  # not JSON
    lines.append(json.dumps(rows[2], sort_keys=True))  # exact duplicate
    near = dict(rows[3])
    near["problem"] = near["problem"].upper().replace("?", " ?!")  # same question, other case/punctuation
    lines.append(json.dumps(near, sort_keys=True))
    ann = root / "annotations.jsonl"
    ann.write_text("\n".join(lines) + "\n")
    return Corpus(root, media, ann, sim_ann, len(lines), bad)


def write_recipe(
    path: Path,
    corpus: Corpus,
    base_url: str,
    runs_dir: Path,
    *,
    shard_size: int = 3,
    parallel: int = 2,
    publish_dir: Path | None = None,
) -> Path:
    import yaml

    data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    for ep in data["llm"]["endpoints"].values():
        ep.update(base_url=base_url, **ENDPOINT)
    data["source"].update(path=str(corpus.annotations), media_root=str(corpus.media))
    data["run"].update(runs_dir=str(runs_dir), shard_size=shard_size, max_parallel_shards=parallel)
    data.setdefault("publish", {})["out_dir"] = str(publish_dir or runs_dir / "published")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ---- processes --------------------------------------------------------------------------------


@contextmanager
def prefect_server(home: Path) -> Iterator[dict[str, str]]:
    """One local Prefect server for every CLI run of the campaign (a flow then starts in ~1 s,
    not ~10-20 s for a temporary server per process). Yields the environment for the children."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=REPO,
        start_new_session=True,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        import httpx

        deadline = time.time() + 240
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1.0, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(
                    f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.3)
        yield {**env, "PREFECT_API_URL": url}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        log.close()


def cli_args(recipe: Path, run: str) -> list[str]:
    return [sys.executable, "-m", "flows.cli", "curate", str(recipe), "--run", run]


def run_cli(recipe: Path, run: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli_args(recipe, run),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


def cache_rows(path: Path) -> int:
    from curation.llm.cache import stored_count

    return stored_count(path)


def settled_stats(url: str, timeout: float = 30.0) -> dict[str, Any]:
    """The endpoint's counters once nothing is in flight any more (after a kill)."""
    from sim_endpoint.server import sim_stats

    deadline = time.time() + timeout
    st = sim_stats(url)
    while st["in_flight"] and time.time() < deadline:
        time.sleep(0.1)
        st = sim_stats(url)
    return st


def answered(st: dict[str, Any]) -> int:
    """Answers the endpoint produced (200s with a usable body: ok or truncated)."""
    return int(st["ok"]) + int(st["truncated"])


# ---- checks -----------------------------------------------------------------------------------


def check_run(run_dir: Path, corpus: Corpus) -> dict[str, Any]:
    """Invariants of a finished run. Returns counts and a list of problems (empty = all hold)."""
    import pyarrow.parquet as pq

    problems: list[str] = []
    manifest = json.loads((run_dir / "manifest.json").read_text())
    if manifest.get("status") != "completed":
        problems.append(f"manifest status {manifest.get('status')!r}")
    for p in run_dir.rglob("*.parquet"):
        if p.name.startswith("."):
            continue
        try:
            pq.read_metadata(p)
        except Exception as err:  # noqa: BLE001
            problems.append(f"unreadable {p.relative_to(run_dir)}: {err}")
    tables: dict[str, list[dict[str, Any]]] = {}
    for stage in ("sources", *ROW_STAGES):
        rows = []
        for shard in sorted((run_dir / stage).glob("shard-*.parquet")):
            rows += pq.read_table(shard, columns=["id", "status"]).to_pylist()
        tables[stage] = rows
        ids = [r["id"] for r in rows]
        if len(ids) != len(set(ids)):
            problems.append(f"{stage}: {len(ids) - len(set(ids))} duplicate ids")
        m = manifest.get("stages", {}).get(stage)
        if m is None:
            problems.append(f"{stage}: missing from the manifest")
            continue
        if m["in"] != m["ok"] + m["rejected"] + m["failed"]:
            problems.append(f"{stage}: manifest in {m['in']} != ok + rejected + failed")
        counted = {s: sum(1 for r in rows if r["status"] == s) for s in ("ok", "rejected", "failed")}
        if m["in"] != len(rows) or any(m[s] != counted[s] for s in counted):
            problems.append(
                f"{stage}: manifest {m['in']}/{m['ok']}/{m['rejected']}/{m['failed']} vs table "
                f"{len(rows)}/{counted['ok']}/{counted['rejected']}/{counted['failed']}"
            )
    if len(tables["sources"]) != corpus.lines:
        problems.append(f"sources: {len(tables['sources'])} rows for {corpus.lines} annotation lines")
    for stage, up in UPSTREAM.items():
        want = {r["id"] for r in tables[up] if r["status"] == "ok"}
        have = {r["id"] for r in tables[stage]}
        if want != have:
            problems.append(f"{stage}: {len(want - have)} ok rows of {up} missing, {len(have - want)} extra")
    pub = manifest.get("stages", {}).get("publish")
    filter_ok = sum(1 for r in tables["filter"] if r["status"] == "ok")
    if pub is None or pub["in"] != filter_ok:
        problems.append(f"publish: {pub and pub['in']} rows for {filter_ok} filter-ok rows")
    counts = {s: len(t) for s, t in tables.items()}
    failed = {s: sum(1 for r in t if r["status"] == "failed") for s, t in tables.items()}
    return {"problems": problems, "rows": counts, "failed": failed, "manifest": manifest}


# ---- scenarios --------------------------------------------------------------------------------


@dataclass
class Env:
    work: Path
    corpus: Corpus
    cli_env: dict[str, str]
    seed: int = 0


def _sim_config(corpus: Corpus, faults: dict[str, float] | None = None, **kw: Any):
    from sim_endpoint.server import SimConfig

    return SimConfig(
        annotations=[str(corpus.sim_annotations)],
        latency_s=kw.pop("latency_s", 0.05),
        jitter_s=kw.pop("jitter_s", 0.02),
        capacity=64,
        faults=faults or {},
        retry_after_s=0.05,
        hang_s=4.0,
        seed=kw.pop("seed", 0),
        **kw,
    )


def scenario_faults(env: Env, name: str, faults: dict[str, float]) -> dict[str, Any]:
    """One run with these transport fault rates, then a rerun; every invariant checked."""
    from sim_endpoint.server import running_sim_server, sim_stats

    runs = env.work / f"runs-{name}"
    with running_sim_server(_sim_config(env.corpus, faults, seed=env.seed), subprocess=True) as url:
        recipe = write_recipe(env.work / f"{name}.yaml", env.corpus, url, runs)
        t0 = time.time()
        first = run_cli(recipe, name, env.cli_env)
        st1 = sim_stats(url)
        second = run_cli(recipe, name, env.cli_env)
        st2 = sim_stats(url)
        wall = time.time() - t0
    res = {
        "scenario": name,
        "faults": faults,
        "rc": [first.returncode, second.returncode],
        "wall_s": round(wall, 1),
        "sim_first": _brief(st1),
        "sim_total": _brief(st2),
        "rerun_answers": answered(st2) - answered(st1),
    }
    if first.returncode or second.returncode:
        res["stderr"] = (first.stderr or "")[-1500:] + (second.stderr or "")[-1500:]
    res.update(check_run(runs / name, env.corpus))
    res.pop("manifest")
    return res


def _brief(st: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "requests",
        "distinct_requests",
        "ok",
        "resent_after_success",
        "answered_again",
        *FAULT_KINDS,
        "max_in_flight",
    )
    return {k: st.get(k) for k in keys}


def _shards_since(run_dir: Path, stage: str, since: float) -> int:
    d = run_dir / stage
    if not d.is_dir():
        return 0
    n = 0
    for p in d.glob("shard-*.parquet"):
        try:
            n += p.stat().st_mtime >= since
        except FileNotFoundError:
            pass
    return n


def _landed(run_dir: Path, since: float, total: int) -> str:
    """Where a kill landed: the shards each stage wrote in this attempt (a pipelined run is in
    several stages at once), the deepest stage first."""
    parts = []
    for stage in reversed(ROW_STAGES):
        k = _shards_since(run_dir, stage, since)
        if k:
            parts.append(f"{stage} {k}/{total}")
    if (run_dir / "manifest.json").exists():
        try:
            if "publish" in json.loads((run_dir / "manifest.json").read_text()).get("stages", {}):
                parts.insert(0, "after publish")
        except ValueError:
            pass
    return " + ".join(parts[:2]) if parts else "sources/start-up"


def _wait_for_point(
    proc: subprocess.Popen,
    run_dir: Path,
    stage: str,
    rng: random.Random,
    total: int,
    since: float,
    url: str = "",
) -> bool:
    """Block until the run is inside `stage` (a random share of the shards it still has to write
    written in this attempt; "in-flight": the endpoint is serving its requests); False if the
    process ended first or the stage had nothing left."""
    deadline = time.time() + 300
    if stage == "in-flight":  # requests paid for but not yet received: the kill loses their answers
        from sim_endpoint.server import sim_stats

        while time.time() < deadline and proc.poll() is None:
            if sim_stats(url)["in_flight"] >= 2:
                return True
            time.sleep(0.01)
        return False
    if stage == "sources":
        target_t = time.time() + rng.uniform(0.0, 1.0)
        while time.time() < deadline and proc.poll() is None:
            if (run_dir / "manifest.json").exists() and time.time() >= target_t:
                return True
            time.sleep(0.01)
        return False
    if stage == "publish":
        while time.time() < deadline and proc.poll() is None:
            if _shards_since(run_dir, "filter", since) and all(
                (run_dir / "filter" / f"shard-{i:05d}.parquet").exists() for i in range(total)
            ):
                time.sleep(rng.uniform(0.0, 0.3))
                return proc.poll() is None
            time.sleep(0.01)
        return False
    have = sum(1 for _ in (run_dir / stage).glob("shard-*.parquet")) if (run_dir / stage).is_dir() else 0
    remaining = total - have
    if remaining <= 0:
        return False
    target = rng.randint(1, max(1, remaining - 1))
    while time.time() < deadline and proc.poll() is None:
        if _shards_since(run_dir, stage, since) >= target:
            return True
        time.sleep(0.005)
    return False


def scenario_kills(
    env: Env, name: str, kill_stages: list[str], faults: dict[str, float] | None = None
) -> dict[str, Any]:
    """SIGKILL the CLI's process group once per entry of `kill_stages` (in order, resuming each time),
    then run to completion. The endpoint survives (its own process) and counts across everything."""
    from sim_endpoint.server import running_sim_server

    rng = random.Random(f"{env.seed}/{name}")
    runs = env.work / f"runs-{name}"
    run_dir = runs / name
    kills: list[dict[str, Any]] = []
    total = -(-env.corpus.lines // 2)  # shard_size 2
    with running_sim_server(
        _sim_config(env.corpus, faults, latency_s=0.2, seed=env.seed), subprocess=True
    ) as url:
        recipe = write_recipe(env.work / f"{name}.yaml", env.corpus, url, runs, shard_size=2)
        cache = runs / "llm_cache.sqlite"
        t0 = time.time()
        for stage in kill_stages:
            since = time.time() - 0.01
            proc = subprocess.Popen(
                cli_args(recipe, name),
                cwd=REPO,
                env=env.cli_env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            hit = _wait_for_point(proc, run_dir, stage, rng, total, since, url)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                hit = False
            proc.wait()
            st = settled_stats(url)
            kills.append(
                {
                    "aimed_at": stage,
                    "killed": hit,
                    "landed_in": _landed(run_dir, since, total) if hit else "-",
                    "answers_so_far": answered(st),
                    "cache_rows": cache_rows(cache),
                    "lost_in_flight": max(0, answered(st) - cache_rows(cache)),
                }
            )
        final = run_cli(recipe, name, env.cli_env)
        st = settled_stats(url)
        # Answers the endpoint gave that never reached the cache: lost at a kill (or given after a
        # client timeout had already given up on them). Only these may ever be sent again.
        unstored = max(0, answered(st) - cache_rows(cache))
        wall = time.time() - t0
    res = {
        "scenario": name,
        "kills": kills,
        "rc": final.returncode,
        "wall_s": round(wall, 1),
        "sim": _brief(st),
        "lost_in_flight": unstored,
        "lost_at_kills": kills[-1]["lost_in_flight"] if kills else 0,
    }
    if final.returncode:
        res["stderr"] = final.stderr[-3000:]
    res.update(check_run(run_dir, env.corpus))
    res.pop("manifest")
    return res


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return r.returncode == 0


def scenario_full_disk(env: Env, name: str = "full-disk", size_kib: int = 512) -> dict[str, Any]:
    """The run store (and the response cache in it) on a small tmpfs that fills up mid-run; then the
    same mount grown and the run resumed. Skipped (reported) when mounting is not permitted."""
    from sim_endpoint.server import running_sim_server, sim_stats

    mnt = env.work / "small-disk"
    if not _mount_tmpfs(mnt, f"{size_kib}k"):
        return {"scenario": name, "skipped": "mount -t tmpfs not permitted here", "problems": []}
    try:
        runs = mnt / "runs"
        with running_sim_server(_sim_config(env.corpus, seed=env.seed), subprocess=True) as url:
            recipe = write_recipe(
                env.work / f"{name}.yaml", env.corpus, url, runs, publish_dir=env.work / f"published-{name}"
            )
            t0 = time.time()
            full = run_cli(recipe, name, env.cli_env)
            st_full = settled_stats(url)
            lost = max(0, answered(st_full) - cache_rows(runs / "llm_cache.sqlite"))
            consistent = _store_consistent(runs / name)
            enospc = (
                "No space left" in full.stderr or "disk is full" in full.stderr or "ENOSPC" in full.stderr
            )
            subprocess.run(["mount", "-o", "remount,size=256m", str(mnt)], check=True)
            final = run_cli(recipe, name, env.cli_env)
            st = sim_stats(url)
            wall = time.time() - t0
        res = {
            "scenario": name,
            "size_kib": size_kib,
            "first_rc": full.returncode,
            "saw_enospc": enospc,
            "consistent_after_full": consistent,
            "rc": final.returncode,
            "sim": _brief(st),
            "lost_at_full_disk": lost,
            "wall_s": round(wall, 1),
        }
        if final.returncode:
            res["stderr"] = final.stderr[-3000:]
        if full.returncode == 0:
            res["note"] = "the disk never filled: lower size_kib"
        res.update(check_run(runs / name, env.corpus))
        res.pop("manifest")
        res["problems"] += consistent
        return res
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _store_consistent(run_dir: Path) -> list[str]:
    """After a crash: the manifest parses and every shard file reads (no half-written file)."""
    import pyarrow.parquet as pq

    problems = []
    m = run_dir / "manifest.json"
    if m.exists():
        try:
            json.loads(m.read_text())
        except ValueError as err:
            problems.append(f"manifest unreadable after ENOSPC: {err}")
    for p in run_dir.rglob("shard-*.parquet"):
        try:
            pq.read_table(p)
        except Exception as err:  # noqa: BLE001
            problems.append(f"half-written {p.relative_to(run_dir)}: {err}")
    return problems


# ---- the campaign -----------------------------------------------------------------------------


def campaign(quick: bool, work: Path, seed: int = 0) -> list[dict[str, Any]]:
    corpus = make_corpus(work / "corpus", 18 if quick else 36, seed=seed)
    home = work / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    results = []
    with prefect_server(home) as cli_env:
        env = Env(work, corpus, cli_env, seed)
        if quick:
            results.append(scenario_faults(env, "faults-all-10pct", {k: 0.10 for k in FAULT_KINDS}))
            results.append(scenario_kills(env, "kills", ["in-flight", "revise"]))
        else:
            for kind in FAULT_KINDS:
                for rate in (0.05, 0.2, 0.5):
                    results.append(scenario_faults(env, f"{kind}-{int(rate * 100)}pct", {kind: rate}))
            every = ["sources", "in-flight", *ROW_STAGES, "publish"]
            results.append(scenario_kills(env, "kills-a", every))
            results.append(scenario_kills(env, "kills-b", every, faults={k: 0.04 for k in FAULT_KINDS}))
        results.append(scenario_full_disk(env))
    return results


def figures(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    figs = []
    for r in results:
        name = r["scenario"]
        if r.get("skipped"):
            figs.append(figure(f"{name}: skipped ({r['skipped']})", 0, "", "run", False))
            continue
        figs.append(
            figure(
                f"{name}: invariant violations (lost/duplicate rows, manifest)",
                len(r["problems"]),
                "",
                "0",
                not r["problems"],
            )
        )
        if "sim_total" in r:  # transport faults: nothing may be re-sent after success
            resent = r["sim_total"]["resent_after_success"]
            injected = sum(r["sim_total"][k] or 0 for k in FAULT_KINDS)
            figs.append(
                figure(
                    f"{name}: requests re-sent after success ({injected} faults injected)",
                    resent,
                    "",
                    "0",
                    resent == 0,
                )
            )
            figs.append(
                figure(
                    f"{name}: answers paid on the rerun", r["rerun_answers"], "", "0", r["rerun_answers"] == 0
                )
            )
        elif "kills" in r:
            resent, lost = r["sim"]["resent_after_success"], r["lost_in_flight"]
            landed = "; ".join(f"{k['aimed_at']}: {k['landed_in']}" for k in r["kills"] if k["killed"])
            figs.append(
                figure(
                    f"{name}: SIGKILLs (aimed at: where the attempt was) [{landed}]",
                    sum(k["killed"] for k in r["kills"]),
                    "kills",
                )
            )
            # Answers paid twice, exactly: a lost answer (the server finished it, the client never
            # stored it) may be paid once more, nothing else. Arrivals are context: with injected
            # faults one re-sent request can arrive several times before it is answered.
            again = r["sim"]["answered_again"]
            figs.append(
                figure(
                    f"{name}: answers paid again (answers never stored: {lost}, of which in flight at a "
                    f"kill: {r['lost_at_kills']}; arrivals after success, faults included: {resent})",
                    again,
                    "",
                    "<= answers never stored",
                    again <= lost,
                )
            )
        elif "first_rc" in r:
            figs.append(
                figure(
                    f"{name}: run on a full disk exits non-zero with ENOSPC",
                    int(r["first_rc"] != 0 and r["saw_enospc"]),
                    "",
                    "1",
                    r["first_rc"] != 0 and r["saw_enospc"],
                )
            )
            figs.append(
                figure(
                    f"{name}: requests re-sent after success (answers lost to the full disk: "
                    f"{r['lost_at_full_disk']})",
                    r["sim"]["resent_after_success"],
                    "",
                    "<= lost to the full disk",
                    r["sim"]["resent_after_success"] <= r["lost_at_full_disk"],
                )
            )
        rc = r.get("rc")
        ok = (rc == 0) if not isinstance(rc, list) else all(x == 0 for x in rc)
        figs.append(figure(f"{name}: rerun completes", int(ok), "", "1", ok))
    return figs


def run(quick: bool = True, seed: int = 0, keep: bool = False) -> list[dict[str, Any]]:
    prefect_env()
    from _common import temp_dir

    with temp_dir("videorft-faults-", keep=keep) as work:
        t0 = time.time()
        results = campaign(quick, work, seed)
        wall = time.time() - t0
    write_json(f"fault_campaign{'-quick' if quick else ''}.json", {"wall_s": wall, "results": results})
    figs = figures(results)
    kills = sum(k["killed"] for r in results for k in r.get("kills", []))
    want = 2 if quick else 10
    figs.append(
        figure("SIGKILLs that landed mid-run, all scenarios", kills, "kills", f">= {want}", kills >= want)
    )
    figs.append(figure("campaign wall time", wall, "s"))
    return figs


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    figs = run(quick=a.quick, seed=a.seed, keep=a.keep)
    print_figures(f"fault_campaign{' (reduced)' if a.quick else ''}", figs)
    sys.exit(0 if all(f["holds"] is not False for f in figs) else 1)
