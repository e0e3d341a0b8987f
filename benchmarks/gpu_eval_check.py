"""GPU check of benchmark-scale evaluation: vLLM generation, kill + resume, the transformers path.

    python benchmarks/gpu_eval_check.py --model /models/Qwen2.5-VL-3B-Instruct     # ~5-8 min on one GPU

What CI cannot run (no GPU, vLLM pins its own torch/transformers), checked end to end on a GPU worker
whose environment has the `gpu` extra (`pip install -e '.[gpu]'`):

1. writes synthetic videos and two evaluation files in Video-R1's layout (`eval_mvbench.json`: MC and
   numerical rows, `eval_vsibench.json`: MC and regression rows);
2. starts `python -m training.bench_eval ... --use_vllm true`, SIGKILLs it once a few batches are
   answered, starts it again: the second run must report exactly the rows the first had written as
   already answered, generate only the others, and leave one predictions file per benchmark with every
   row once (the rows answered before the kill keep their outputs);
3. runs the transformers path (same interface) on the first rows and reports how often it agrees
   with vLLM (near-greedy decoding: most answers should match; informational);
4. prints rows/s of both generators and PASS / FAIL lines. Exit 0 when every check passed, 1 when one
   failed, 77 (skipped) without a CUDA GPU or without vLLM.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIPPED = 77


def _skip(reason: str) -> int:
    print(f"SKIPPED: {reason}")
    return SKIPPED


def write_eval_files(folder: Path, n: int) -> dict[str, int]:
    """Synthetic videos + eval_mvbench.json / eval_vsibench.json in Video-R1's evaluation layout."""
    sys.path.insert(0, str(REPO))
    from curation.sources.synthetic import generate

    annotations = generate(folder, n, seed=3)
    mv, vsi = [], []
    for i, line in enumerate(annotations.read_text().splitlines()):
        a = json.loads(line)
        record = {
            "problem_id": i,
            "problem": a["problem"],
            "data_type": a["data_type"],
            "problem_type": a["problem_type"],
            "options": a["options"],
            "solution": f"<answer>{a['solution']}</answer>",
            "path": "./" + a["media_path"],
            "data_source": a["data_source"],
        }
        if a["problem_type"] in ("multiple choice", "numerical"):
            mv.append(record)
        if a["problem_type"] in ("multiple choice", "regression"):
            vsi.append(record)
    (folder / "eval_mvbench.json").write_text(json.dumps(mv, indent=1))
    (folder / "eval_vsibench.json").write_text(json.dumps(vsi, indent=1))
    return {"mvbench": len(mv), "vsibench": len(vsi)}


def bench_cmd(model: str, eval_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "training.bench_eval",
        "--config",
        str(REPO / "recipes/qwen2_5_vl_7b/eval.yaml"),
        "--model_name_or_path",
        model,
        "--eval_dir",
        str(eval_dir),
        "--output_dir",
        str(out),
        "--benchmarks",
        "mvbench",
        "vsibench",
        "--video_num_frames",
        "16",
        "--vllm_max_model_len",
        "16384",
        *extra,
    ]


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # the torn line of a killed write
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="local Qwen2.5-VL checkpoint (e.g. Qwen2.5-VL-3B-Instruct)")
    ap.add_argument("--workdir", default="runs/gpu_eval_check")
    ap.add_argument("--videos", type=int, default=96, help="synthetic videos (about half become eval rows)")
    ap.add_argument("--gpu-memory", default="0.6", help="vllm_gpu_memory_utilization")
    ap.add_argument("--quick", action="store_true", help="(make bench) same as the default on a GPU")
    a = ap.parse_args(argv)

    try:
        import torch
    except ImportError:
        return _skip("torch is not installed")
    if not torch.cuda.is_available():
        return _skip("needs a CUDA GPU (vLLM evaluation)")
    try:
        import vllm  # noqa: F401
    except ImportError:
        return _skip("vLLM is not importable here: pip install -e '.[gpu]' on the GPU worker")
    if not a.model:
        return _skip("pass --model PATH (a local Qwen2.5-VL checkpoint) to run it")

    work = Path(a.workdir).resolve()
    eval_dir, out = work / "Evaluation", work / "vllm"
    subprocess.run(["rm", "-rf", str(work)], check=True)
    eval_dir.mkdir(parents=True)
    counts = write_eval_files(eval_dir, a.videos)
    total = sum(counts.values())
    print(f"eval files: {counts} ({total} rows) in {eval_dir}")
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    vllm_args = ("--use_vllm", "true", "--batch_size", "8", "--vllm_gpu_memory_utilization", a.gpu_memory)
    results: list[tuple[str, bool]] = []

    # ---- 1. vLLM, killed after a few batches ------------------------------------------------------------
    t0 = time.time()
    log1 = (work / "run1.log").open("w")
    proc = subprocess.Popen(
        bench_cmd(a.model, eval_dir, out, *vllm_args),
        cwd=REPO,
        env=env,
        stdout=log1,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    partial = out / "mvbench" / "partial" / "rank-0.jsonl"
    deadline = time.time() + 420
    while time.time() < deadline and proc.poll() is None and len(lines(partial)) < 16:
        time.sleep(0.5)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = {r["key"]: r for r in lines(partial)}
    print(f"run 1: killed after {len(before)} answered rows ({time.time() - t0:.0f}s incl. engine start)")
    results.append(
        ("the first run was killed mid-benchmark with rows answered", 0 < len(before) < counts["mvbench"])
    )

    # ---- 2. the same command again: resume -------------------------------------------------------------------
    t1 = time.time()
    run2 = subprocess.run(
        bench_cmd(a.model, eval_dir, out, *vllm_args), cwd=REPO, env=env, capture_output=True, text=True
    )
    (work / "run2.log").write_text(run2.stdout + run2.stderr)
    wall2 = time.time() - t1
    results.append(("the resumed run exits 0", run2.returncode == 0))
    m = re.search(
        r"mvbench: (\d+) rows, (\d+) already answered, (\d+) to generate", run2.stderr + run2.stdout
    )
    resumed = int(m.group(2)) if m else -1
    results.append(
        (f"it reports the {len(before)} answered rows as answered (got {resumed})", resumed == len(before))
    )
    final = {name: lines(out / name / "predictions.jsonl") for name in counts}
    for name, n in counts.items():
        keys = [r["key"] for r in final[name]]
        results.append(
            (f"{name}: {n} rows in predictions.jsonl, each once", len(keys) == n == len(set(keys)))
        )
    kept = {r["key"]: r["output"] for r in final["mvbench"]}
    results.append(
        (
            "rows answered before the kill keep their outputs",
            all(kept.get(k) == r["output"] for k, r in before.items()),
        )
    )
    generated = total - len(before)
    print(
        f"run 2: {generated} rows generated in {wall2:.0f}s incl. engine start ({generated / wall2:.2f} rows/s)"
    )
    bench = json.loads((out / "bench.json").read_text()) if (out / "bench.json").exists() else {}
    for name in counts:
        row = bench.get("benchmarks", {}).get(name, {})
        print(f"  {name}: score {row.get('ours')} ({row.get('score_rule')}), {row.get('scored')} scored")

    # ---- 3. transformers, same interface, first rows ------------------------------------------------------
    hf_out = work / "transformers"
    t2 = time.time()
    run3 = subprocess.run(
        bench_cmd(
            a.model, eval_dir, hf_out, "--max_eval_samples", "8", "--batch_size", "4", "--device", "cuda"
        ),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    (work / "run3.log").write_text(run3.stdout + run3.stderr)
    wall3 = time.time() - t2
    results.append(("the transformers path runs the same files", run3.returncode == 0))
    hf = {r["key"]: r for name in counts for r in lines(hf_out / name / "predictions.jsonl")}
    vl = {r["key"]: r for name in counts for r in final[name]}
    same = sum(hf[k]["prediction"] == vl[k]["prediction"] for k in hf if k in vl)
    print(
        f"transformers: {len(hf)} rows in {wall3:.0f}s incl. model load; same answer as vLLM on {same}/{len(hf)}"
    )

    print()
    for what, ok in results:
        print(f"{'PASS' if ok else 'FAIL'}: {what}")
    print(f"logs: {work}/run*.log; total {time.time() - t0:.0f}s")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
