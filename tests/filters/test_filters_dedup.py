"""Near-duplicate questions on the same media: normalisation, first-by-id, streaming index."""

from __future__ import annotations

from curation.filters.config import DedupConfig
from curation.filters.dedup import DedupIndex, dedup_questions, normalize_text
from curation.records import Sample


def q(sid, media, problem, options=None):
    return {"id": sid, "media_path": media, "problem": problem, "options": options or []}


def test_normalize_text():
    assert normalize_text("  What's   the COLOR,\n of the car?! ") == "what s the color of the car"
    assert normalize_text(None) == ""
    assert normalize_text("snake_case") == "snake case"


def test_dedup_keeps_smallest_id_per_group_regardless_of_order():
    rows = [
        q("c", "v1.mp4", "What color is the car?"),
        q("a", "v1.mp4", "what color is the CAR"),
        q("b", "v1.mp4", "What  color is the car ?!"),
        q("d", "v2.mp4", "What color is the car?"),  # other video: not a duplicate
        q("e", "v1.mp4", "What color is the bus?"),  # other question
    ]
    expected = {"b": "near-duplicate of a", "c": "near-duplicate of a"}
    assert dedup_questions(rows) == expected
    assert dedup_questions(reversed(rows)) == expected
    assert dedup_questions(iter(rows)) == expected  # a one-pass iterator is enough


def test_options_are_part_of_the_question():
    rows = [
        q("a", "v.mp4", "Which one?", ["A. red", "B. blue"]),
        q("b", "v.mp4", "Which one?", ["A. Red.", "B. Blue"]),  # same after normalisation
        q("c", "v.mp4", "Which one?", ["A. green", "B. blue"]),
    ]
    assert dedup_questions(rows) == {"b": "near-duplicate of a"}
    assert dedup_questions(rows, DedupConfig(include_options=False)) == {
        "b": "near-duplicate of a",
        "c": "near-duplicate of a",
    }


def test_same_row_twice_is_not_its_own_duplicate():
    rows = [q("a", "v.mp4", "Why?"), q("a", "v.mp4", "Why?")]
    assert dedup_questions(rows) == {}


def test_dedup_index_streaming_first_seen():
    idx = DedupIndex(DedupConfig())
    s1 = Sample(
        id="z1",
        media_path="v.mp4",
        data_type="video",
        problem="How many cats?",
        solution="2",
        problem_type="numerical",
        data_source="s",
    )
    s2 = Sample(
        id="a2",
        media_path="v.mp4",
        data_type="video",
        problem="how many cats",
        solution="2",
        problem_type="numerical",
        data_source="s",
    )
    assert idx.check(s1) is None
    assert idx.check(s2) == "z1"  # first seen wins in the streaming index
    assert idx.check(q("x", "w.mp4", "How many cats?")) is None  # dict rows work too
    assert idx.check(s1) is None  # the same sample again is not a duplicate of itself
    assert idx.duplicates == 1 and idx.checked == 4
