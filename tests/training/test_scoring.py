"""training/scoring.py: one scorer for the accuracy reward, the curation filter and evaluation."""

from __future__ import annotations

import logging

import pytest

from training import scoring
from training.scoring import (
    MRA_THRESHOLDS,
    extract_answer,
    mean_relative_accuracy,
    score_answer,
    score_completion,
    word_error_rate,
)


@pytest.fixture(autouse=True)
def _fresh_warnings():
    scoring.reset_warnings()
    yield
    scoring.reset_warnings()


# ---- extraction --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>x</think><answer>B</answer>", "B"),
        ("<answer>\n  two words \n</answer>", "two words"),
        ("<answer>A</answer> then <answer>C</answer>", "A"),  # first one wins
        ("<answer>multi\nline</answer>", "multi\nline"),
        ("no tags at all", ""),
        ("<answer>unclosed", ""),
        ("<answer></answer>", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_answer_whole_if_missing():
    assert extract_answer("  B  ", whole_if_missing=True) == "B"
    assert extract_answer("<answer> C </answer>", whole_if_missing=True) == "C"


# ---- per type ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ("A", "A", 1.0),
        (" A ", "A", 1.0),
        ("A.", "A", 0.0),
        ("a", "A", 0.0),
        ("", "A", 0.0),
        ("A B", "A", 0.0),
    ],
)
def test_multiple_choice_exact_match(pred, gt, expected):
    assert score_answer(pred, gt, "multiple choice") == expected


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ("3", "3", 1.0),
        ("-2", "-2", 1.0),
        ("3", "3.0", 0.0),  # exactly one side has a decimal point
        ("3.0", "3", 0.0),
        ("1,000", "1000", 0.0),  # exactly one side has a comma
        ("1000", "1,000", 0.0),
        ("1,000", "1,000.00", 1.0),  # both carry a separator: commas dropped, 1000 == 1000
        ("1,000", "1000.0", 1.0),  # literal rule: one flag for "'.' or ','", so this passes too
        ("3.14159", "3.14", 1.0),  # compared at 2 decimals
        ("3.146", "3.14", 0.0),  # 3.15 != 3.14
        ("3.14", "3.140", 1.0),
        ("three", "3", 0.0),  # unparseable prediction: a wrong answer, no warning
        ("", "3", 0.0),
        ("inf", "3", 0.0),
    ],
)
def test_numerical_rule(pred, gt, expected):
    assert score_answer(pred, gt, "numerical") == expected


def test_numerical_bad_ground_truth_is_warned_once(caplog):
    with caplog.at_level(logging.WARNING, logger="training.scoring"):
        assert score_answer("3", "n/a", "numerical") == 0.0
        assert score_answer("4", "n/a", "numerical") == 0.0
    assert len([r for r in caplog.records if "not a number" in r.getMessage()]) == 1


def test_unparseable_prediction_is_not_warned(caplog):
    with caplog.at_level(logging.WARNING, logger="training.scoring"):
        score_answer("banana", "3", "numerical")
        score_answer("banana", "3", "regression")
    assert caplog.records == []


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ("the quick brown fox", "the quick brown fox", 1.0),
        ("the quick brown cat", "the quick brown fox", 0.75),  # 1 substitution / 4 words
        ("quick brown fox", "the quick brown fox", 0.75),  # 1 deletion
        ("", "hello world", 0.0),
        ("a b c d e f", "x", 0.0),  # WER 6 > 1: clipped at 0
        ("", "", 1.0),  # 0 edits / max(1, 0 words)
    ],
)
def test_ocr_one_minus_wer(pred, gt, expected):
    assert score_answer(pred, gt, "OCR") == pytest.approx(expected)


def test_word_error_rate_insertions():
    assert word_error_rate("a b", "a x b") == pytest.approx(0.5)


def test_free_form_rouge():
    assert score_answer("a red ball rolls left", "a red ball rolls left", "free-form") == pytest.approx(1.0)
    assert score_answer("zebra", "a red ball rolls left", "free-form") == 0.0
    partial = score_answer("the red ball", "a red ball rolls left", "free-form")
    assert 0.0 < partial < 1.0
    # Stemming: "running dogs" and "run dog" share stems.
    assert score_answer("running dogs", "run dog", "free-form") == pytest.approx(1.0)
    assert score_answer("", "something", "free-form") == 0.0


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ("8", "8", 1.0),
        ("10", "8", 0.75),  # 1 - 2/8
        ("6", "8", 0.75),
        ("100", "8", 0.0),  # relative error >= 1: floor at 0
        ("-8", "8", 0.0),
        ("1,000", "1000", 1.0),  # commas removed; no separator rule for regression
        ("abc", "8", 0.0),
        ("0", "0", 0.0),  # literal formula: (0 + 1e-9) / (0 + 1e-9) = 1, so gt == 0 always scores 0
    ],
)
def test_regression_scaled_relative_accuracy(pred, gt, expected):
    assert score_answer(pred, gt, "regression") == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("alias", "pred", "gt"),
    [
        ("mc", "B", "B"),
        ("multiple_choice", "B", "B"),
        ("Multiple-Choice", "B", "B"),
        ("numeric", "2", "2"),
        ("ocr", "hi there", "hi there"),
        ("free_form", "a cat", "a cat"),
        ("reg", "5", "5"),
    ],
)
def test_problem_type_aliases(alias, pred, gt):
    assert score_answer(pred, gt, alias) == pytest.approx(1.0)


def test_unknown_problem_type_scores_zero_and_warns_once(caplog):
    with caplog.at_level(logging.WARNING, logger="training.scoring"):
        assert score_answer("A", "A", "essay") == 0.0
        assert score_answer("A", "A", "essay") == 0.0
        assert score_answer("A", "A", None) == 0.0
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "'essay'" in m]) == 1
    assert len([m for m in messages if "None" in m]) == 1


def test_scorer_error_scores_zero_and_warns_once(caplog, monkeypatch):
    def broken(pred, gt):
        raise RuntimeError("boom")

    monkeypatch.setitem(scoring.SCORERS, "OCR", broken)
    with caplog.at_level(logging.WARNING, logger="training.scoring"):
        assert score_answer("a", "a", "OCR") == 0.0
        assert score_answer("b", "b", "OCR") == 0.0
    assert len([r for r in caplog.records if "boom" in r.getMessage()]) == 1


# ---- completions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("solution", ["B", "<answer>B</answer>", "  <answer> B </answer>\n"])
def test_score_completion_accepts_bare_or_tagged_solution(solution):
    assert score_completion("<think>t</think><answer>B</answer>", solution, "multiple choice") == 1.0


def test_score_completion_without_answer_tag_scores_zero():
    # Training rule: an untagged completion has no answer, even if its text equals the solution.
    assert score_completion("B", "B", "multiple choice") == 0.0


def test_score_completion_first_answer_wins():
    text = "<think>t</think><answer>A</answer><answer>B</answer>"
    assert score_completion(text, "B", "multiple choice") == 0.0
    assert score_completion(text, "A", "multiple choice") == 1.0


# ---- evaluation metric -------------------------------------------------------------------------------


def test_mra_thresholds_are_exact():
    assert MRA_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        (10.0, 10.0, 1.0),
        (13.2, 10.0, 0.4),  # rel 0.32 < 1 - θ for θ in {0.50, 0.55, 0.60, 0.65}
        (10.3, 10.0, 1.0),  # rel 0.03 < 0.05: passes even θ = 0.95
        (10.6, 10.0, 0.9),  # rel 0.06 fails only θ = 0.95
        (16.0, 10.0, 0.0),  # rel 0.6 fails every threshold
        ("10.0", "10", 1.0),
        ("abc", 10.0, 0.0),
        (5.0, "x", 0.0),
    ],
)
def test_mean_relative_accuracy(pred, gt, expected):
    assert mean_relative_accuracy(pred, gt) == pytest.approx(expected)


def test_mra_custom_thresholds():
    assert mean_relative_accuracy(11.0, 10.0, thresholds=[0.5, 0.95]) == pytest.approx(0.5)


def test_non_string_inputs_do_not_crash():
    assert extract_answer(3, whole_if_missing=True) == "3"  # a numeric `solution` column
    assert score_completion("<answer>3</answer>", 3, "numerical") == 1.0
    assert score_answer(None, "A", "multiple choice") == 0.0
    assert mean_relative_accuracy(None, 10.0) == 0.0
    assert mean_relative_accuracy(10, 10) == 1.0
