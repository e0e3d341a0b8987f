"""`make bench`: run every benchmark (quick versions by default) and summarise figures vs goals.

Each script prints its own figures; lines that state a goal ("goal", "holds", "MISSES") are
collected into one summary at the end so a reader sees every claim and whether it held.
Full versions: run the scripts one by one without --quick (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# (script, quick args, full args). Scripts that need a GPU say so and exit with SKIPPED on CPU.
BENCHES: list[tuple[str, list[str], list[str]]] = [
    ("bench_video_sampling.py", ["--quick"], []),
    ("bench_video_memory.py", ["--quick", "--sizes", "720p", "4K"], []),
    ("bench_gateway.py", ["--quick"], []),
    ("bench_peers.py", ["--quick"], []),
    ("bench_scale.py", ["--quick"], ["--n", "100000"]),
    ("fault_campaign.py", ["--quick"], []),
    ("bench_semantic_reward.py", [], []),
    ("bench_report.py", ["--quick"], []),
    ("bench_train_step.py", ["--tiny"], []),
    ("gpu_eval_check.py", ["--quick"], []),  # GPU + vLLM only (needs --model there); skipped on CPU
]

GOAL_WORDS = ("goal", "holds", "MISS", "PASS", "FAIL")
SKIPPED = 77  # "not applicable on this machine" (the automake convention); any other non-zero fails


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="quick versions (what `make bench` runs)")
    ap.add_argument("--only", nargs="*", help="script names to run")
    a = ap.parse_args(argv)
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    summary: list[str] = []
    failures = []
    print(
        f"videorft benchmarks, {date.today()} on {platform.node()} ({os.cpu_count()} cores, {platform.machine()})"
    )
    for script, quick, full in BENCHES:
        if a.only and script not in a.only:
            continue
        path = HERE / script
        if not path.exists():
            print(f"\n== {script}: missing, skipped")
            continue
        cmd = [sys.executable, str(path), *(quick if a.quick else full)]
        print(f"\n== {' '.join(cmd[1:])}", flush=True)
        t0 = time.time()
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="")
            if any(w in line for w in GOAL_WORDS):
                summary.append(f"{script}: {line.strip()}")
        rc = proc.wait()
        print(f"-- {script}: exit {rc} in {time.time() - t0:.1f}s")
        if rc == SKIPPED:
            summary.append(f"{script}: skipped here (needs hardware this machine lacks)")
        elif rc != 0:
            failures.append(script)
    print("\n== figures against their goals")
    for line in summary:
        print("  " + line)
    if failures:
        print(f"\nbenchmarks that failed to run: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
