"""Benchmark evaluation pieces against eval_bench.py's own definitions, and the resumable, sharded loop.

eval_bench.py's lines are reproduced verbatim (not vendored) from VideoRFT's `src/eval_bench.py`
(github.com/QiWang98/VideoRFT @ bba609969e66c66e152b15399488f0ad94051e3a); Video-R1's
(github.com/tulerfeng/Video-R1 @ 59d65c347e44efa71be27abf9d89b4a2bb7d1c05) differs only where noted.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from training.bench_formats import EvalFileError, find_benchmarks, read_videor1_eval
from training.bench_metrics import benchmark_summary, eval_bench_reward
from training.eval_loop import EvalStateMismatch, EvalTask, PredictionStore, Ranks, run_task
from training.eval_prompts import EvalMediaError, PreparedPrompt, eval_bench_text
from training.scoring import mean_relative_accuracy

# ---- eval_bench.py, verbatim ----------------------------------------------------------------------------

QUESTION_TEMPLATE = (
    "{Question}\n"
    "Please think about this question as if you were a human pondering deeply. "
    "Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', 'let's break it down', etc, or other natural language thought expressions "  # noqa: E501
    "It's encouraged to include self-reflection or verification in the reasoning process. "
    "Provide your detailed reasoning between the <think> and </think> tags, and then give your final answer between the <answer> and </answer> tags."  # noqa: E501
)

TYPE_TEMPLATE = {
    "multiple choice": " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags.",  # noqa: E501
    "numerical": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
    "OCR": " Please transcribe text from the image/video clearly and provide your text answer within the <answer> </answer> tags.",  # noqa: E501
    "free-form": " Please provide your text answer within the <answer> </answer> tags.",
    "regression": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
}


def eval_bench_user_text(x, videor1=False):
    if x["problem_type"] == "multiple choice":
        question = x["problem"] + ("Options:\n" if videor1 else "\n")  # Video-R1: "Options:\n"
        for op in x["options"]:
            question += op + "\n"
    else:
        question = x["problem"]
    return QUESTION_TEMPLATE.format(Question=question) + TYPE_TEMPLATE[x["problem_type"]]


def extract_answer(text):
    pattern = r"<answer>\s*(.*?)\s*</answer>"
    match = re.search(pattern, text, re.DOTALL)
    if match:
        return match.group(1).strip()
    return ""


def normalize_number(num_str):
    try:
        num_str = num_str.replace(",", "")
        return float(num_str)
    except Exception:
        return None


def eb_mean_relative_accuracy(pred, target, start=0.5, end=0.95, interval=0.05):
    if not torch.is_tensor(pred):
        pred = torch.tensor(pred, dtype=torch.float32)
    if not torch.is_tensor(target):
        target = torch.tensor(target, dtype=torch.float32)

    epsilon = 1e-8
    rel_error = torch.abs(pred - target) / (torch.abs(target) + epsilon)

    thresholds = torch.arange(start, end + interval / 2, interval, dtype=torch.float32)

    conditions = rel_error < (1 - thresholds)
    mra = conditions.float().mean()
    return mra.item()


def reward_fn(sample, model_output, question_type):
    try:
        output_ans = extract_answer(model_output)
        if output_ans == "":
            output_ans = model_output
        gt_ans = extract_answer(sample.get("solution", ""))
        if question_type == "multiple choice":
            return 1.0 if output_ans.strip() == gt_ans.strip() else 0.0
        elif question_type == "numerical":
            gt_has_decimal = ("." in gt_ans) or ("," in gt_ans)
            out_has_decimal = ("." in output_ans) or ("," in output_ans)
            if gt_has_decimal != out_has_decimal:
                return 0.0
            gt_number = normalize_number(gt_ans)
            out_number = normalize_number(output_ans)
            if gt_number is None or out_number is None:
                return 0.0
            return 1.0 if round(gt_number, 2) == round(out_number, 2) else 0.0
        elif question_type == "regression":
            gt_number = normalize_number(gt_ans)
            out_number = normalize_number(output_ans)
            if gt_number is None or out_number is None:
                return 0.0
            mra = eb_mean_relative_accuracy(out_number, gt_number)
            return mra
        else:
            return 0.0
    except Exception:
        return 0.0


def eval_bench_final_acc(samples):
    """eval_bench's `final_acc` over (sample, reward) pairs: torch float32 means, per kind."""
    mean_acc = [r for s, r in samples if s["problem_type"] != "regression"]
    mean_mra = [r for s, r in samples if s["problem_type"] == "regression"]
    final_acc = {"mean_acc": 0.0, "mean_mra": 0.0}
    final_acc["mean_acc"] = torch.tensor(mean_acc).mean().item()
    if mean_mra != []:
        final_acc["mean_mra"] = torch.tensor(mean_mra).mean().item()
    return final_acc


# ---- prompts ----------------------------------------------------------------------------------------------

MC = {
    "problem": "What does the person do first?",
    "options": ["A. sits", "B. stands", "C. runs", "D. jumps"],
    "problem_type": "multiple choice",
}
REG = {
    "problem": "How far apart are the chair and the table (in meters)?",
    "options": [],
    "problem_type": "regression",
}


@pytest.mark.parametrize(
    "row", [MC, REG, {**REG, "problem_type": "numerical"}], ids=["mc", "regression", "numerical"]
)
def test_eval_bench_prompt_text_is_eval_benchs(row):
    assert eval_bench_text(row, "eval_bench") == eval_bench_user_text(row)
    assert eval_bench_text(row, "eval_bench_videor1") == eval_bench_user_text(row, videor1=True)


# ---- MRA, rewards, the VSI headline ----------------------------------------------------------------------


def test_mra_is_eval_benchs_float32_mra():
    cases = [(float(p), float(g)) for g in range(1, 41) for p in range(0, 81)]  # integer counts
    cases += [(g * k / 20, g) for g in (0.5, 1.5, 2.4, 3.7, 12.5) for k in range(41)]  # exact ratios
    cases += [(0.0, 0.0), (1.0, 0.0), (1e6, 3.0)]
    ours = np.array([mean_relative_accuracy(p, g) for p, g in cases])
    theirs = np.array([eb_mean_relative_accuracy(p, g) for p, g in cases])
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    # Exact threshold ratio: 10 for 8 is rel. error 0.25 against 1 - 0.75. float32 (eval_bench) does not
    # count θ = 0.75; a float64 computation would (0.6): we match eval_bench.
    assert mean_relative_accuracy(10, 8) == pytest.approx(0.5)
    float64 = sum(
        abs(10 - 8) / (8 + 1e-8) < 1 - t for t in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    )
    assert float64 / 10 == pytest.approx(0.6)


OUTPUTS = [
    ("<think>x</think><answer>B</answer>", "<answer>B</answer>", "multiple choice"),
    ("<answer> B </answer>", "<answer>B</answer>", "multiple choice"),
    ("B", "<answer>B</answer>", "multiple choice"),  # no tag: the whole output is the answer
    ("<answer>B.</answer>", "<answer>B</answer>", "multiple choice"),
    ("<answer></answer>", "<answer>B</answer>", "multiple choice"),
    ("<answer>3</answer>", "<answer>3</answer>", "numerical"),
    ("<answer>3.0</answer>", "<answer>3</answer>", "numerical"),
    ("<answer>1,000</answer>", "<answer>1000.00</answer>", "numerical"),
    ("<answer>10</answer>", "<answer>8</answer>", "regression"),
    ("<answer>2.1</answer>", "<answer>2.4</answer>", "regression"),
    ("about 3 m", "<answer>3</answer>", "regression"),
    ("<answer>a red car</answer>", "<answer>a red car</answer>", "free-form"),  # eval_bench: 0
]


@pytest.mark.parametrize(("output", "solution", "ptype"), OUTPUTS)
def test_reward_is_eval_benchs_reward_fn(output, solution, ptype):
    assert eval_bench_reward(output, solution, ptype) == pytest.approx(
        reward_fn({"solution": solution}, output, ptype), abs=1e-6
    )


def test_vsi_headline_is_the_mean_of_mc_accuracy_and_mra():
    """40 MC rows + 60 regression rows: the VSI number is (MC accuracy + MRA) / 2, not a mean weighted
    by row counts; the two means are eval_bench's own `final_acc`."""
    samples, records = [], []
    for i in range(40):
        out = "<answer>A</answer>" if i % 2 else "<answer>C</answer>"
        samples.append(({"problem_type": "multiple choice", "solution": "<answer>A</answer>"}, out))
    for i in range(60):
        out = "<answer>12</answer>" if i % 3 == 0 else "<answer>20</answer>"  # 12 for 10: an exact ratio
        samples.append(({"problem_type": "regression", "solution": "<answer>10</answer>"}, out))
    for sample, out in samples:
        reward = eval_bench_reward(out, sample["solution"], sample["problem_type"])
        records.append({"problem_type": sample["problem_type"], "reward": reward})
    theirs = eval_bench_final_acc([(s, reward_fn(s, o, s["problem_type"])) for s, o in samples])
    summary = benchmark_summary(records)
    assert summary["mean_acc"] == pytest.approx(theirs["mean_acc"], abs=1e-6) == pytest.approx(0.5)
    assert summary["mean_mra"] == pytest.approx(theirs["mean_mra"], abs=1e-6)
    assert summary["score"] == pytest.approx((theirs["mean_acc"] + theirs["mean_mra"]) / 2, abs=1e-6)
    weighted = (40 * summary["mean_acc"] + 60 * summary["mean_mra"]) / 100
    assert abs(summary["score"] - weighted) > 0.01
    assert summary["score_rule"] == "(mean_acc + mean_mra) / 2"
    assert set(summary["by_problem_type"]) == {"multiple choice", "regression"}
    only_mc = benchmark_summary(records[:40])
    assert only_mc["score"] == only_mc["mean_acc"] and only_mc["mean_mra"] is None


# ---- Video-R1 eval files -----------------------------------------------------------------------------------


def test_reads_video_r1_eval_layout(tmp_path):
    rows = [
        {
            "problem_id": 17,
            "problem": "Q?",
            "data_type": "video",
            "problem_type": "multiple choice",
            "options": ["A. a", "B. b"],
            "solution": "<answer>A</answer>",
            "path": "./MVBench/x.mp4",
            "data_source": "mvbench",
        }
    ]
    (tmp_path / "eval_mvbench.json").write_text(json.dumps(rows))
    (row,) = read_videor1_eval(tmp_path / "eval_mvbench.json")
    assert row["media_path"] == "MVBench/x.mp4" and row["problem_id"] == 17 and row["index"] == 0
    assert row["options"] == ["A. a", "B. b"] and row["key"].startswith("0:")
    assert find_benchmarks(tmp_path) == {"mvbench": tmp_path / "eval_mvbench.json"}
    del rows[0]["path"]
    (tmp_path / "eval_mvbench.json").write_text(json.dumps(rows))
    with pytest.raises(EvalFileError, match=r"row 0 \(problem_id 17\): missing field\(s\) \['path'\]"):
        read_videor1_eval(tmp_path / "eval_mvbench.json")
    with pytest.raises(FileNotFoundError, match="no benchmark file"):
        find_benchmarks(tmp_path, ["vsibench"])


# ---- the loop: resume after a kill, settings, sharding ---------------------------------------------------------


class FakePrompter:
    """Stands in for EvalPrompter: no media, one prepared prompt per row (row 3 has a broken file)."""

    def __init__(self, broken: set[int] = frozenset()):
        self.broken = broken

    def build(self, row):
        if row["index"] in self.broken:
            raise EvalMediaError(f"row {row['index']}: cannot load {row['media_path']}")
        return PreparedPrompt(row=row, messages=[])


def _task(tmp_path: Path, n: int = 10) -> EvalTask:
    rows = [
        {
            "index": i,
            "key": f"{i}:k",
            "media_path": f"v{i}.mp4",
            "problem_type": "multiple choice",
            "solution": "A",
        }
        for i in range(n)
    ]
    return EvalTask("t", rows, tmp_path / "out", None, "eval_bench")


def _score(row, out):
    return {"key": row["key"], "index": row["index"], "status": "ok", "output": out, "reward": 1.0}


class Killed(Exception):
    pass


def test_resume_after_a_kill_regenerates_nothing(tmp_path):
    task = _task(tmp_path)
    settings = {"model": "m", "temperature": 0.1}
    calls: list[int] = []

    def dying(prepared):
        if len(calls) >= 4:  # the third batch dies mid-generation
            raise Killed
        calls.extend(p.row["index"] for p in prepared)
        return [f"out{p.row['index']}" for p in prepared]

    with pytest.raises(Killed):
        run_task(
            task,
            FakePrompter(),
            dying,
            _score,
            PredictionStore(task.out_dir, settings, Ranks()),
            Ranks(),
            batch_size=2,
        )
    assert calls == [0, 1, 2, 3]
    partial = task.out_dir / "partial" / "rank-0.jsonl"
    with open(partial, "a") as fh:
        fh.write('{"key": "4:k", "index": 4, "sta')  # torn line of the killed write

    calls.clear()
    done = run_task(
        task,
        FakePrompter(),
        lambda prepared: (
            calls.extend(p.row["index"] for p in prepared) or [f"new{p.row['index']}" for p in prepared]
        ),
        _score,
        PredictionStore(task.out_dir, settings, Ranks()),
        Ranks(),
        batch_size=2,
    )
    assert calls == [4, 5, 6, 7, 8, 9]  # only the unanswered rows
    assert [r["index"] for r in done] == list(range(10))
    lines = [json.loads(x) for x in (task.out_dir / "predictions.jsonl").read_text().splitlines()]
    assert [r["index"] for r in lines] == list(range(10)) and lines[0]["output"] == "out0"
    assert not (task.out_dir / "partial").exists()

    with pytest.raises(EvalStateMismatch, match="temperature changed"):
        PredictionStore(task.out_dir, {**settings, "temperature": 0.7}, Ranks()).prepare()
    fresh = PredictionStore(task.out_dir, {**settings, "temperature": 0.7}, Ranks(), resume=False)
    assert fresh.prepare() == {}


def test_bad_media_stops_by_default_or_is_skipped_and_counted(tmp_path):
    task = _task(tmp_path, 6)
    gen = lambda prepared: ["<answer>A</answer>"] * len(prepared)  # noqa: E731
    store = PredictionStore(task.out_dir, {}, Ranks())
    with pytest.raises(EvalMediaError, match=r"row 3: cannot load v3.mp4.*--skip_bad_media true"):
        run_task(task, FakePrompter({3}), gen, _score, store, Ranks(), batch_size=2)
    done = run_task(task, FakePrompter({3}), gen, _score, store, Ranks(), batch_size=2, skip_bad_media=True)
    assert [r["status"] for r in done] == ["ok", "ok", "ok", "skipped_media", "ok", "ok"]
    assert "cannot load v3.mp4" in done[3]["reason"] and "reward" not in done[3]
    # a rerun retries the skipped row (its media may have been fixed) and nothing else
    calls: list[int] = []

    def counting(prepared):
        calls.extend(p.row["index"] for p in prepared)
        return gen(prepared)

    run_task(task, FakePrompter(), counting, _score, store, Ranks(), batch_size=2)
    assert calls == [3]


def test_rows_are_sharded_over_ranks_and_gathered_once(tmp_path):
    """Two ranks (threads with a real barrier standing in for processes): each generates every other
    pending row, the main rank gathers all of them into one file, each row once."""
    task = _task(tmp_path, 9)
    (task.out_dir).mkdir(parents=True)
    # a previous run answered rows 0 and 5
    (task.out_dir / "predictions.jsonl").write_text(
        "".join(json.dumps(_score(task.rows[i], "old")) + "\n" for i in (0, 5))
    )
    barrier = threading.Barrier(2)
    inbox: list[list] = [[], []]

    def gather_for(rank):
        def gather(items):
            inbox[rank] = list(items)
            barrier.wait()
            return inbox[0] + inbox[1]

        return gather

    generated: dict[int, list[int]] = {0: [], 1: []}
    results: dict[int, list] = {}

    def run(rank):
        ranks = Ranks(index=rank, world=2, barrier=barrier.wait, gather=gather_for(rank))

        def gen(prepared):
            generated[rank].extend(p.row["index"] for p in prepared)
            return ["new"] * len(prepared)

        results[rank] = run_task(
            task, FakePrompter(), gen, _score, PredictionStore(task.out_dir, {}, ranks), ranks, batch_size=2
        )

    threads = [threading.Thread(target=run, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert generated == {0: [1, 3, 6, 8], 1: [2, 4, 7]}
    assert results[1] == [] and [r["index"] for r in results[0]] == list(range(9))
    lines = [json.loads(x) for x in (task.out_dir / "predictions.jsonl").read_text().splitlines()]
    assert [r["index"] for r in lines] == list(range(9))
    assert [r["output"] for r in lines if r["index"] in (0, 5)] == ["old", "old"]
