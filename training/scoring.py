"""Answer extraction and per-problem-type scoring: the single source of truth.

The GRPO accuracy reward (`training/rewards.py`), the semantic-reward gate (`training/semantic.py`),
the curation answer filter and evaluation all call these functions, so a completion is judged the same
way everywhere. Rules follow Video-R1 / VideoRFT `grpo.py` (see shared/reference/videorft.md §3.2),
with two deliberate differences:

* the problem type is taken per row, never from the first row of a batch;
* nothing fails silently: a scorer exception or an unknown problem type scores 0 *and* logs a warning
  (once per kind, so a bad batch cannot flood the log).

An unparseable *prediction* (a model answering "five" to a numerical question) is a wrong answer, not an
error: it scores 0 without a warning. An unparseable *ground truth* is a data error and is warned about.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from curation.records import FREE_FORM, MULTIPLE_CHOICE, NUMERICAL, OCR, REGRESSION, normalize_problem_type

logger = logging.getLogger(__name__)

# First <answer> block wins (a model that writes two answers gets judged on the first one).
ANSWER_RE = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)

# Evaluation thresholds for Mean Relative Accuracy: 0.50, 0.55, ..., 0.95 (written out, not np.arange,
# so the values are exact decimals and the list is the same on every platform).
MRA_THRESHOLDS: tuple[float, ...] = tuple(round(0.50 + 0.05 * i, 2) for i in range(10))

_warned: set[str] = set()


def warn_once(kind: str, message: str) -> None:
    """Log `message` as a warning the first time `kind` is seen in this process."""
    if kind in _warned:
        return
    _warned.add(kind)
    logger.warning("%s (further warnings of this kind are suppressed)", message)


def reset_warnings() -> None:
    """Forget which warnings were already logged (tests use it to observe warn-once behaviour)."""
    _warned.clear()


def extract_answer(text: str | int | float | None, *, whole_if_missing: bool = False) -> str:
    """Content of the first `<answer>...</answer>` block, stripped.

    Missing tag gives "" (training rule: no answer, no credit); `whole_if_missing=True` returns the whole
    text stripped instead (evaluation's rule, and how a bare `solution` column is read).
    """
    text = "" if text is None else str(text)  # datasets sometimes hold numeric solutions
    match = ANSWER_RE.search(text)
    if match:
        return match.group(1).strip()
    return text.strip() if whole_if_missing else ""


def parse_number(text: str) -> float | None:
    """Float value of `text` with thousands commas removed; None when it is not a finite number."""
    try:
        value = float(text.strip().replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def score_multiple_choice(pred: str, gt: str) -> float:
    # Exact match after strip: "A." != "A", on purpose (Video-R1), which also defeats multi-letter hacks.
    return 1.0 if pred.strip() == gt.strip() else 0.0


def _has_separator(text: str) -> bool:
    return "." in text or "," in text


def score_numerical(pred: str, gt: str) -> float:
    """Video-R1's rule, literally.

    One flag per side: "contains a '.' or a ','". If exactly one side has it, 0 ("3" vs "3.0" -> 0,
    "1,000" vs "1000" -> 0). Otherwise commas are removed and both are compared rounded to 2 decimals
    ("1,000" vs "1,000.00" -> 1; "1,000" vs "1000.0" -> 1, because both sides carry a separator).
    """
    if _has_separator(pred) != _has_separator(gt):
        return 0.0
    gt_value = parse_number(gt)
    if gt_value is None:
        warn_once(
            f"numerical-gt:{gt!r}", f"numerical ground truth {gt!r} is not a number: every answer scores 0"
        )
        return 0.0
    pred_value = parse_number(pred)
    if pred_value is None:
        return 0.0
    return 1.0 if round(gt_value, 2) == round(pred_value, 2) else 0.0


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance / max(1, number of reference words)."""
    ref, hyp = reference.split(), hypothesis.split()
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, hyp_word in enumerate(hyp, start=1):
            substitution = previous[j - 1] + (ref_word != hyp_word)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        previous = current
    return previous[-1] / max(1, len(ref))


def score_ocr(pred: str, gt: str) -> float:
    return _clip01(1.0 - word_error_rate(gt, pred))


@lru_cache(maxsize=1)
def _rouge_scorer():
    # Imported lazily: rouge_score pulls nltk, which costs ~0.5 s and only free-form needs it.
    import logging

    from rouge_score import rouge_scorer

    # Its constructor logs "Using default tokenizer." at INFO through absl, once per process: a
    # line in every run's output that says nothing to the user.
    absl_log = logging.getLogger("absl")
    level = absl_log.level
    absl_log.setLevel(logging.WARNING)
    try:
        return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    finally:
        absl_log.setLevel(level)


def score_free_form(pred: str, gt: str) -> float:
    scores = _rouge_scorer().score(gt, pred)
    mean_f = (scores["rouge1"].fmeasure + scores["rouge2"].fmeasure + scores["rougeL"].fmeasure) / 3.0
    return _clip01(mean_f)


def score_regression(pred: str, gt: str) -> float:
    """Scaled relative accuracy 1 - min(1, (|pred - gt| + 1e-9) / (|gt| + 1e-9)) (training reward)."""
    gt_value = parse_number(gt)
    if gt_value is None:
        warn_once(
            f"regression-gt:{gt!r}", f"regression ground truth {gt!r} is not a number: every answer scores 0"
        )
        return 0.0
    pred_value = parse_number(pred)
    if pred_value is None:
        return 0.0
    relative = (abs(pred_value - gt_value) + 1e-9) / (abs(gt_value) + 1e-9)
    return _clip01(1.0 - min(1.0, relative))


SCORERS: dict[str, Callable[[str, str], float]] = {
    MULTIPLE_CHOICE: score_multiple_choice,
    NUMERICAL: score_numerical,
    OCR: score_ocr,
    FREE_FORM: score_free_form,
    REGRESSION: score_regression,
}


def score_answer(pred: str, gt: str, problem_type: str | None) -> float:
    """Score a bare predicted answer against a bare ground truth, in [0, 1].

    `problem_type` may be any alias `curation.records.normalize_problem_type` knows. Unknown types and
    scorer exceptions score 0 and are logged (once per kind).
    """
    canonical = normalize_problem_type(problem_type)
    if canonical is None:
        warn_once(f"unknown-type:{problem_type!r}", f"unknown problem type {problem_type!r}: scored 0")
        return 0.0
    pred = "" if pred is None else str(pred)
    gt = "" if gt is None else str(gt)
    try:
        return float(SCORERS[canonical](pred, gt))
    except Exception as exc:  # a reward must not crash training; it is logged, not hidden
        warn_once(
            f"scorer-error:{canonical}:{type(exc).__name__}",
            f"{canonical} scorer raised {type(exc).__name__}: {exc}; scored 0",
        )
        return 0.0


def score_completion(completion_text: str, solution_text: str, problem_type: str) -> float:
    """Score a full model output against a solution that may be bare ("B") or tagged ("<answer>B</answer>").

    The completion's answer is its first `<answer>` block ("" when missing: no tag, no credit).
    """
    pred = extract_answer(completion_text)
    gt = extract_answer(solution_text, whole_if_missing=True)
    return score_answer(pred, gt, problem_type)


def mean_relative_accuracy(
    pred: float | str, gt: float | str, thresholds: Sequence[float] = MRA_THRESHOLDS
) -> float:
    """Evaluation metric for regression (VSI-Bench): fraction of thresholds θ with rel_err < 1 - θ.

    Computed exactly as `eval_bench.py` (Video-R1 / VideoRFT) does it, in float32:
    rel_err = |pred - gt| / (|gt| + 1e-8) with both values cast to float32 first, thresholds as
    `torch.arange(0.5, 0.975, 0.05, dtype=float32)` makes them, compared with `1 - θ` in float32. In
    float32 the epsilon vanishes, so at an exact threshold ratio (prediction 10 for truth 8: rel_err
    0.25 vs 1 - 0.75) the comparison is decided by float32 rounding, and a float64 computation counts
    one threshold more (+0.1) than eval_bench does on such cases.

    Strings are parsed like answers; an unparseable prediction scores 0, an unparseable ground truth
    scores 0 with a warning.
    """
    gt_value = _as_number(gt)
    if gt_value is None:
        warn_once(f"mra-gt:{gt!r}", f"MRA ground truth {gt!r} is not a number: scored 0")
        return 0.0
    pred_value = _as_number(pred)
    if pred_value is None:
        return 0.0
    p, g = np.float32(pred_value), np.float32(gt_value)
    with np.errstate(over="ignore", invalid="ignore"):
        relative = np.abs(p - g) / (np.abs(g) + np.float32(1e-8))
        limits = np.float32(1.0) - _thresholds_f32(tuple(thresholds))
        passed = int(np.count_nonzero(relative < limits))
    return passed / len(thresholds)


@lru_cache(maxsize=4)
def _thresholds_f32(thresholds: tuple[float, ...]) -> np.ndarray:
    """float32 thresholds; the default set is built like torch.arange (start + i*step in double)."""
    if thresholds == MRA_THRESHOLDS:
        return np.array([0.5 + 0.05 * i for i in range(len(thresholds))], dtype=np.float64).astype(np.float32)
    return np.asarray(thresholds, dtype=np.float32)


def _as_number(value: Any) -> float | None:
    if isinstance(value, str):
        return parse_number(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _clip01(value: float) -> float:
    return max(0.0, min(1.0, value))
