"""Follow and stop a curate run as an operator would, without a terminal (issue 14's "Done when").

`videorft curate` runs with stdout and stderr to a file (as under `nohup`) on N synthetic samples
against the simulated endpoint (a child process, latency 0.5 s); after `--stop-after` seconds of
flow run it gets SIGINT; then the same command runs again to completion. Figures:

- the largest gap between progress lines in each run's log (goal: at most 30 s; default
  `run.progress_interval_s` is 10);
- SIGINT to process exit (goal: under 10 s), exit status (130), manifest status (`interrupted`),
  nothing published;
- the rerun's `resuming: ...` lines and wall time;
- requests the endpoint received over both runs against distinct requests (goal: equal, i.e. no
  answer paid twice).

    python benchmarks/bench_follow_stop.py --n 2000 --stop-after 60
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROGRESS_TS = re.compile(r"^(\d\d:\d\d:\d\d) INFO prefect\.flow_runs: progress ")


def _recipe(work: Path, annotations: Path, base_url: str) -> Path:
    import yaml

    data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    for ep in data["llm"]["endpoints"].values():
        ep["base_url"] = base_url
    data["source"].update(path=str(annotations), media_root=str(annotations.parent))
    data["run"].update(runs_dir=str(work / "runs"), name="follow")
    data.setdefault("publish", {})["out_dir"] = str(work / "datasets")
    path = work / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _max_gap(log: Path) -> tuple[int, float]:
    stamps = sorted(
        {
            datetime.strptime(m.group(1), "%H:%M:%S")
            for ln in log.read_text().splitlines()
            if (m := PROGRESS_TS.match(ln))
        }
    )
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    return len(stamps), max(gaps, default=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--stop-after", type=float, default=60.0, help="seconds of flow run before SIGINT")
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()

    from curation.sources.synthetic import generate
    from sim_endpoint.server import SimConfig, running_sim_server, sim_stats

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-follow-"))
    shutil.rmtree(work / "runs", ignore_errors=True)
    shutil.rmtree(work / "datasets", ignore_errors=True)
    annotations = work / "synth" / "annotations.jsonl"
    if not annotations.exists():
        generate(work / "synth", args.n, seed=1)
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "PYTHONUNBUFFERED": "1"}
    env.pop("PREFECT_API_URL", None)
    sim = SimConfig(annotations=[str(annotations)], latency_s=args.latency, jitter_s=0.1, capacity=64)
    out: dict = {"n": args.n, "stop_after_s": args.stop_after}
    with running_sim_server(sim, subprocess=True) as base_url:
        recipe = _recipe(work, annotations, base_url)
        cmd = [sys.executable, "-m", "flows.cli", "curate", str(recipe)]
        log1 = work / "run1.log"
        with log1.open("w") as fh:
            proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        while "Beginning flow run" not in log1.read_text():
            if proc.poll() is not None:
                raise SystemExit(f"curate ended early:\n{log1.read_text()}")
            time.sleep(0.2)
        time.sleep(args.stop_after)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc1 = proc.wait(timeout=120)
        out["sigint_to_exit_s"] = round(time.monotonic() - t0, 2)
        out["run1_exit_status"] = rc1
        manifest = json.loads((work / "runs" / "follow" / "manifest.json").read_text())
        out["run1_status"] = manifest.get("status")
        out["run1_published"] = (work / "datasets").exists()
        out["run1_progress_lines"], out["run1_max_gap_s"] = _max_gap(log1)

        log2 = work / "run2.log"
        t0 = time.monotonic()
        with log2.open("w") as fh:
            rc2 = subprocess.run(
                cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False
            ).returncode
        out["rerun_s"] = round(time.monotonic() - t0, 1)
        out["rerun_exit_status"] = rc2
        out["resuming"] = [
            ln.split("flow_runs: ", 1)[-1] for ln in log2.read_text().splitlines() if "resuming:" in ln
        ]
        out["run2_progress_lines"], out["run2_max_gap_s"] = _max_gap(log2)
        stats = sim_stats(base_url)
        out["endpoint_requests"] = stats["requests"]
        out["endpoint_distinct_requests"] = stats["distinct_requests"]
        out["endpoint_resent_after_success"] = stats["resent_after_success"]
    print(json.dumps(out, indent=2))
    print(f"logs: {log1} {log2}")


if __name__ == "__main__":
    main()
