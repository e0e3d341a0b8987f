"""The curated leakage list: every documented example, the innocent uses, config switches."""

from __future__ import annotations

import pytest
from filters_helpers import make_row, think

from curation.filters.config import LeakageConfig
from curation.filters.leakage import LEAK_PATTERNS, LeakageFilter

LEAKS = [(p.name, s) for p in LEAK_PATTERNS for s in p.leaks]
INNOCENT = [s for p in LEAK_PATTERNS for s in p.innocent] + [
    "At the beginning, the woman enters; around the middle she sits; toward the end she leaves.",
    "The video shows a description of the product printed on the box.",
    "In the first few seconds the ball rolls, and it stops after a while.",
    "The key element of the puzzle is the red block.",
    "The clip is about 12 seconds long and the car moves for 5 seconds.",
    "The visual evidence shows two people shaking hands.",
    "She hangs a picture frame on the wall next to the window.",
    "The recipe card describes three steps, and the cook follows them.",
]


@pytest.mark.parametrize(("name", "sentence"), LEAKS, ids=[f"{n}:{s[:30]}" for n, s in LEAKS])
def test_each_pattern_catches_its_examples(name, sentence):
    pattern = next(p for p in LEAK_PATTERNS if p.name == name)
    assert pattern.compile().search(sentence), f"{name} misses {sentence!r}"
    v = LeakageFilter(LeakageConfig()).filter(make_row(process=think(sentence)))
    assert not v.keep and v.reason.startswith("mentions ")


@pytest.mark.parametrize("sentence", INNOCENT, ids=[s[:40] for s in INNOCENT])
def test_innocent_sentences_pass(sentence):
    f = LeakageFilter(LeakageConfig())
    assert f.find(sentence) == [], f.find(sentence)


def test_pattern_names_unique_and_documented():
    names = [p.name for p in LEAK_PATTERNS]
    assert len(names) == len(set(names))
    assert all(p.why and p.leaks for p in LEAK_PATTERNS)


def test_verdict_reports_first_hit_and_matches():
    text = think("Based on the captions, at 00:00:03 the man enters. In frame 3 he sits.")
    v = LeakageFilter(LeakageConfig()).filter(make_row(process=text))
    assert v.reason == "mentions captions"
    assert v.scores["leak_count"] == 3
    assert v.scores["leak_hits"] == ["caption: captions", "frame_number: frame 3", "timestamp_hms: 00:00:03"]


def test_answer_is_scanned_too():
    v = LeakageFilter(LeakageConfig()).filter(make_row(answer="According to the description, he leaves"))
    assert not v.keep and v.reason == "mentions descriptions"


def test_disable_and_extra_patterns():
    row = make_row(process=think("The caption at the bottom reads SALE, and the scene looks calm overall."))
    assert not LeakageFilter(LeakageConfig()).filter(row).keep
    assert LeakageFilter(LeakageConfig(disabled_patterns=["caption"])).filter(row).keep
    extra = LeakageFilter(
        LeakageConfig(disabled_patterns=["caption"], extra_patterns={"bottom text": r"\bbottom\b"})
    )
    v = extra.filter(row)
    assert not v.keep and v.reason == "mentions bottom text"
    with pytest.raises(ValueError, match="unknown leakage pattern"):
        LeakageConfig(disabled_patterns=["nope"])
    with pytest.raises(ValueError, match="not a valid regex"):
        LeakageConfig(extra_patterns={"bad": "("})


def test_echo_of_the_question_is_not_a_leak():
    question = "What changed between the first and the last frame of the video?"
    restated = think(f'The question asks: "{question}". Around the middle the red square moves to the left.')
    f = LeakageFilter(LeakageConfig())
    v = f.filter(make_row(problem=question, process=restated))
    assert v.keep and v.scores["question_echoes"] == 1  # "last frame"
    # The question talks about ordinal frames, so "the first frame" is its vocabulary too.
    v = f.filter(make_row(problem=question, process=think("In the first frame the square is small.")))
    assert v.keep and v.scores["question_echoes"] == 1
    leaked = think(f'The question asks: "{question}". In frame 3 the red square moves to the left.')
    v = f.filter(make_row(problem=question, process=leaked))
    assert (
        not v.keep
        and v.reason == "mentions frame numbers"
        and v.scores["leak_hits"] == ["frame_number: frame 3"]
    )
