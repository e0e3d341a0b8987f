"""Each per-row filter step on crafted rows: keep and reject cases, reasons, scores, stats."""

from __future__ import annotations

import pytest
from filters_helpers import CLEAN_COT, make_row, think

from curation.filters.answer_correctness import AnswerCorrectnessFilter
from curation.filters.base import StepStats, count_tokens, think_text
from curation.filters.config import (
    AnswerCorrectnessConfig,
    FormatConfig,
    LengthConfig,
    OpenEndedAgreementConfig,
    RepetitionConfig,
)
from curation.filters.format import FormatFilter
from curation.filters.length import LengthFilter
from curation.filters.open_ended_agreement import OpenEndedAgreementFilter
from curation.filters.repetition import RepetitionFilter, non_alpha_ratio, repeated_ngram_fraction


def judge(step, rows):
    verdicts = step.filter_batch(rows)
    for v in verdicts:
        step.stats.count(v)
    return verdicts


# -- answer_correctness ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "solution", "ptype", "keep"),
    [
        ("B", "B", "multiple choice", True),
        ("C", "B", "multiple choice", False),
        ("B.", "B", "multiple choice", False),  # Video-R1's exact rule
        ("5", "5", "numerical", True),
        ("5.0", "5", "numerical", False),  # separator on one side only
        ("OPEN NOW", "OPEN NOW", "OCR", True),
        ("OPEN NOW TODAY ONLY", "OPEN NOW TODAY", "OCR", False),  # one insertion in three words: 0.67 < 0.7
        ("OPEN NOW TODAY ONLY", "OPEN NOW TODAY ONLY!", "OCR", True),  # one word of four: 0.75
        ("CLOSED", "OPEN NOW", "OCR", False),
        ("2.6", "2.5", "regression", True),  # 4 % off
        ("5.0", "2.5", "regression", False),  # 100 % off
        ("the man opens the door", "he opens the door", "free-form", True),
        ("a cat sleeps", "he opens the door", "free-form", False),
        ("B", "<answer>B</answer>", "mc", True),  # tagged ground truth and an alias are tolerated
    ],
)
def test_answer_correctness(answer, solution, ptype, keep):
    step = AnswerCorrectnessFilter(AnswerCorrectnessConfig())
    row = make_row(answer=answer, solution=solution, problem_type=ptype)
    v = step.filter(row)
    assert v.keep is keep, v
    assert "answer_score" in v.scores
    if not keep:
        assert v.reason.startswith("score < ")


def test_answer_correctness_thresholds_and_stats():
    step = AnswerCorrectnessFilter(
        AnswerCorrectnessConfig(
            thresholds={
                "multiple choice": 1.0,
                "numerical": 1.0,
                "OCR": 0.5,
                "free-form": 0.3,
                "regression": 0.7,
            }
        )
    )
    rows = [
        make_row(answer="OPEN NOW TODAY ONLY", solution="OPEN NOW TODAY", problem_type="OCR"),
        make_row(answer="C"),
        make_row(answer="D"),
        make_row(answer=""),
        make_row(problem_type="essay"),
    ]
    verdicts = judge(step, rows)
    assert [v.keep for v in verdicts] == [True, False, False, False, False]
    assert verdicts[3].reason == "empty answer"
    assert verdicts[4].reason.startswith("unknown problem type")
    assert step.stats.kept == 1
    assert step.stats.dropped == {
        "score < 1 (multiple choice)": 2,
        "empty answer": 1,
        "unknown problem type 'essay'": 1,
    }


def test_answer_thresholds_config_validation():
    with pytest.raises(ValueError, match="missing"):
        AnswerCorrectnessConfig(thresholds={"multiple choice": 1.0})
    with pytest.raises(ValueError, match="unknown problem type"):
        AnswerCorrectnessConfig(thresholds={"essay": 1.0})
    cfg = AnswerCorrectnessConfig(thresholds={"mc": 1, "num": 1, "ocr": 0.5, "free": 0.2, "reg": 0.5})
    assert set(cfg.thresholds) == {"multiple choice", "numerical", "OCR", "free-form", "regression"}


# -- format ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("process", "answer", "reason"),
    [
        (CLEAN_COT, "B", ""),
        (CLEAN_COT + "\n", "B", ""),
        (None, "B", "missing process"),
        ("", "B", "missing process"),
        ("I think it is B.", "B", "no <think> block"),
        ("<think>a</think><think>b</think>", "B", "several <think> blocks"),
        ("<think>reasoning <answer>B</answer></think>", "B", "several <answer> blocks"),
        ("<think>reasoning</think>", "<answer>B</answer>", "several <answer> blocks"),
        ("Sure! <think>reasoning</think>", "B", "text outside tags"),
        ("<think>reasoning</think> So B.", "B", "text outside tags"),
        ("<think>reasoning", "B", "no <think> block"),
        ("<think>   </think>", "B", "empty <think>"),
        ("<think>reasoning</think>", "  ", "empty answer"),
    ],
)
def test_format(process, answer, reason):
    v = FormatFilter(FormatConfig()).filter(make_row(process=process, answer=answer))
    assert v.keep is (reason == ""), v
    assert v.reason == reason


# -- length ---------------------------------------------------------------------------------------


def test_token_counting():
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("Hello, world!", "whitespace") == 2
    assert think_text("<think> a b </think>\n<answer>c</answer>").split() == ["a", "b", "c"]
    with pytest.raises(ValueError):
        count_tokens("x", "bpe")


def test_length_bounds_and_stats():
    step = LengthFilter(LengthConfig(min_tokens=5, max_tokens=10))
    rows = [
        make_row(process=think("one two three")),
        make_row(process=think("one two three four five six")),
        make_row(process=think(" ".join(["word"] * 11))),
    ]
    verdicts = judge(step, rows)
    assert [v.keep for v in verdicts] == [False, True, False]
    assert [v.scores["tokens"] for v in verdicts] == [3, 6, 11]
    assert step.stats.dropped == {"too short (< 5 tokens)": 1, "too long (> 10 tokens)": 1}
    with pytest.raises(ValueError):
        LengthConfig(min_tokens=10, max_tokens=5)


def test_length_default_keeps_clean_cot():
    assert LengthFilter(LengthConfig()).filter(make_row()).keep


# -- repetition -----------------------------------------------------------------------------------


def test_repeated_ngram_fraction_matches_open_r1():
    assert repeated_ngram_fraction("a b c a b c", 3) == pytest.approx(1 - 3 / 4)
    assert repeated_ngram_fraction("a b", 3) == 0.0
    assert repeated_ngram_fraction("A b c a B C", 3) == pytest.approx(0.25)  # lowercased
    assert non_alpha_ratio("ab12") == 0.5
    assert non_alpha_ratio("   ") == 0.0


def test_repetition_keeps_natural_and_drops_loops():
    step = RepetitionFilter(RepetitionConfig())
    loop = think("The video shows a man. " + "I think the answer is B. Let me check again. " * 15)
    rows = [
        make_row(),
        make_row(process=loop),
        make_row(
            process=think("x = 3 * 4 + 2 = 14; y = 14 / 2 = 7; z = 7 ^ 2 = 49; 49 - 7 = 42 ... %% ## @@")
        ),
        make_row(process=think("The answer " + "a" * 80 + " is B because the man moves.")),
        make_row(process=think("The man walks to the \ufffd door and opens it, then the answer is B.")),
    ]
    verdicts = judge(step, rows)
    assert [v.keep for v in verdicts] == [True, False, False, False, False]
    assert verdicts[1].reason == "repeated 3-grams > 0.35"
    assert verdicts[2].reason == "non-alphabetic ratio > 0.5"
    assert verdicts[3].reason == "word longer than 50 chars"
    assert verdicts[4].reason == "replacement characters"
    assert verdicts[0].scores["repeated_3gram"] < 0.1
    assert step.stats.kept == 1 and sum(step.stats.dropped.values()) == 4


def test_mild_self_verification_is_not_repetition():
    text = think(CLEAN_COT[7:-8] + " Wait, let me check again. The answer is B." * 3)
    assert RepetitionFilter(RepetitionConfig()).filter(make_row(process=text)).keep


# -- open-ended agreement (fake encoder; the real MiniLM runs in test_filters_minilm.py) ----------


class FakeEncoder:
    """Unit vectors keyed by the first word: equal first words -> similarity 1, else 0."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        import numpy as np

        self.calls.append(list(texts))
        vocab = sorted({t.split()[0].lower() for t in texts})
        out = np.zeros((len(texts), len(vocab)), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, vocab.index(t.split()[0].lower())] = 1.0
        return out


def test_open_ended_only_judges_free_form_in_one_batch():
    enc = FakeEncoder()
    step = OpenEndedAgreementFilter(OpenEndedAgreementConfig(threshold=0.5), encoder=enc)
    rows = [
        make_row(),  # multiple choice: passes without encoding
        make_row(problem_type="free-form", answer="opens the door", solution="opens it"),
        make_row(problem_type="free-form", answer="sleeps on the mat", solution="opens it"),
        make_row(problem_type="free-form", answer="", solution="opens it"),
        make_row(problem_type="free-form", answer="x", solution=""),
    ]
    verdicts = judge(step, rows)
    assert [v.keep for v in verdicts] == [True, True, False, False, False]
    assert verdicts[1].scores["similarity"] == 1.0
    assert verdicts[2].reason == "similarity < 0.5"
    assert verdicts[3].reason == "empty answer"
    assert verdicts[4].reason == "empty reference answer"
    # One encoder call, unique texts only ("opens it" appears twice).
    assert len(enc.calls) == 1 and sorted(enc.calls[0]) == sorted(
        ["opens the door", "opens it", "sleeps on the mat"]
    )


def test_open_ended_never_loads_model_without_free_form():
    step = OpenEndedAgreementFilter(OpenEndedAgreementConfig())
    assert step.filter_batch([make_row(), make_row(problem_type="numerical", answer="5", solution="5")])[
        0
    ].keep
    assert step._encoder is None


def test_step_stats_merge():
    a, b = (
        StepStats("x", seen=2, kept=1, dropped={"r": 1}),
        StepStats("x", seen=3, kept=1, dropped={"r": 1, "s": 1}),
    )
    a.merge(b)
    assert a.to_dict() == {"seen": 5, "kept": 2, "dropped": {"r": 2, "s": 1}, "errors": 0}
