"""Benchmark scoring exactly as `eval_bench.py` (Video-R1 / VideoRFT) computes it.

Per row (`reward_fn` there): the prediction is the first `<answer>` block, or the whole output when
it is missing or empty; the ground truth is the `<answer>` block of `solution`; then
- multiple choice: exact match after strip;
- numerical: Video-R1's decimal-separator rule and 2-decimal comparison;
- regression: Mean Relative Accuracy in float32 (`training.scoring.mean_relative_accuracy`);
- any other type: 0 (the six benchmarks have none).

Per benchmark: `mean_acc` is the mean reward over non-regression rows and `mean_mra` over regression
rows (eval_bench writes both as `final_acc`). The benchmark's score is `mean_acc`, or `mean_mra` when a
file has only regression rows, and for VSI-Bench, which has both, `(mean_acc + mean_mra) / 2`: the
Video-R1 maintainer's definition (tulerfeng/Video-R1 issue 121), not a mean weighted by row counts.

The scorers are `training.scoring`'s (the rewards' and filters' single source of truth), which follow
the same rules; this module only adds eval_bench's extraction and aggregation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from curation.records import MULTIPLE_CHOICE, NUMERICAL, REGRESSION, normalize_problem_type
from training.scoring import extract_answer, mean_relative_accuracy, score_multiple_choice, score_numerical


def eval_bench_prediction(output: str) -> str:
    answer = extract_answer(output)
    return answer if answer != "" else str(output or "")


def eval_bench_reward(output: str, solution: str, problem_type: str | None) -> float:
    """eval_bench.py's `reward_fn` for one model output."""
    prediction = eval_bench_prediction(output)
    gt = extract_answer(solution)
    ptype = normalize_problem_type(problem_type)
    if ptype == MULTIPLE_CHOICE:
        return score_multiple_choice(prediction, gt)
    if ptype == NUMERICAL:
        return score_numerical(prediction, gt)
    if ptype == REGRESSION:
        return mean_relative_accuracy(prediction, gt)
    return 0.0


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def headline_score(mean_acc: float | None, mean_mra: float | None) -> float | None:
    """The benchmark's number: accuracy, MRA, or their plain average when a file has both (VSI-Bench)."""
    if mean_acc is not None and mean_mra is not None:
        return (mean_acc + mean_mra) / 2
    return mean_acc if mean_acc is not None else mean_mra


def benchmark_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """eval_bench's numbers over scored records (`reward`, `problem_type`); skipped rows are counted apart."""
    scored = [r for r in records if r.get("status", "ok") == "ok"]
    acc = [float(r["reward"]) for r in scored if r["problem_type"] != REGRESSION]
    mra = [float(r["reward"]) for r in scored if r["problem_type"] == REGRESSION]
    by_type: dict[str, list[float]] = defaultdict(list)
    for r in scored:
        by_type[str(r["problem_type"])].append(float(r["reward"]))
    mean_acc, mean_mra = _mean(acc), _mean(mra)
    return {
        "rows": len(records),
        "scored": len(scored),
        "skipped_media": len(records) - len(scored),
        "mean_acc": mean_acc,
        "mean_mra": mean_mra,
        "score": headline_score(mean_acc, mean_mra),
        "score_rule": "(mean_acc + mean_mra) / 2" if acc and mra else ("mean_mra" if mra else "mean_acc"),
        "by_problem_type": {t: {"n": len(v), "mean": _mean(v)} for t, v in sorted(by_type.items())},
    }
