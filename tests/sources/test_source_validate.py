"""Row validation: the same rules and reasons for every reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from curation.records import Sample, sample_id
from curation.sources import SourceConfig
from curation.sources.annotations import canonical_fields
from curation.sources.validate import (
    RowRejected,
    build_sample,
    letter_span,
    multiple_choice_answer,
    normalize_options,
    option_entries,
)

ROOT = Path("/data/media")


def build(row: dict, column_map: dict | None = None) -> Sample:
    return build_sample(canonical_fields(row, column_map), media_root=ROOT, default_source="default")


def reason(row: dict) -> str:
    with pytest.raises(RowRejected) as info:
        build(row)
    return info.value.reason


BASE = {
    "media_path": "v/a.mp4",
    "problem": "What colour is the ball?",
    "solution": "B",
    "problem_type": "multiple choice",
    "options": ["A. red", "B. blue", "C. green", "D. pink"],
}


def test_a_good_row():
    s = build(BASE)
    assert s == Sample(
        id=sample_id("default", "v/a.mp4", "What colour is the ball?"),
        media_path="v/a.mp4",
        data_type="video",
        problem="What colour is the ball?",
        solution="B",
        problem_type="multiple choice",
        data_source="default",
        options=["A. red", "B. blue", "C. green", "D. pink"],
        meta={},
    )


@pytest.mark.parametrize("field", ["media_path", "problem", "solution", "problem_type"])
def test_missing_required(field):
    row = {k: v for k, v in BASE.items() if k != field}
    assert reason(row) == f"missing field '{field}'"
    assert reason({**BASE, field: None}) == f"missing field '{field}'"


@pytest.mark.parametrize("field", ["problem", "solution"])
def test_empty_question_or_answer(field):
    assert reason({**BASE, field: "   "}) == f"empty field '{field}'"


def test_problem_type():
    assert reason({**BASE, "problem_type": "essay"}) == "unknown problem_type 'essay'"
    assert build({**BASE, "problem_type": "Multiple_Choice"}).problem_type == "multiple choice"
    assert build({**BASE, "problem_type": "free_form", "solution": "blue"}).problem_type == "free-form"


def test_multiple_choice_rules():
    assert reason({**BASE, "options": []}) == "multiple choice without options"
    assert reason({k: v for k, v in BASE.items() if k != "options"}) == "multiple choice without options"
    assert reason({**BASE, "solution": "E"}) == "answer 'E' is not one of the options A–D"
    assert reason({**BASE, "solution": "purple"}) == "answer 'purple' is not one of the options A–D"
    for answer in ("B", "b", "(B)", "B.", "B)", "B. blue", "B: blue", "blue", " Blue "):
        assert build({**BASE, "solution": answer}).solution == "B", answer


def test_options_spellings():
    assert option_entries('["A. x", "B. y"]') == ["A. x", "B. y"]
    assert option_entries("A. x|B. y|") == ["A. x", "B. y"]
    assert option_entries("A. x\nB. y") == ["A. x", "B. y"]
    assert option_entries(None) == [] and option_entries("") == []
    assert normalize_options(["(A) x", "B) y", "C: z"]) == ["A. x", "B. y", "C. z"]
    assert normalize_options(["cat", "dog"]) == ["A. cat", "B. dog"]
    with pytest.raises(RowRejected, match="mix lettered and unlettered"):
        normalize_options(["A. cat", "dog"])
    with pytest.raises(RowRejected, match="duplicate option letter 'A'"):
        normalize_options(["A. cat", "A. dog"])
    with pytest.raises(RowRejected, match="not a valid JSON list"):
        option_entries("[broken")
    assert letter_span(["A", "B", "C"]) == "A–C"
    assert letter_span(["A", "C"]) == "A, C"
    assert multiple_choice_answer("c", ["A. x", "C. z"]) == "C"


def test_options_are_kept_out_of_non_multiple_choice():
    s = build({**BASE, "problem_type": "numerical", "solution": "3"})
    assert s.options == [] and s.meta["options"] == BASE["options"]


def test_numbers():
    row = {**BASE, "problem_type": "numerical", "options": []}
    assert build({**row, "solution": "1,234.5"}).solution == "1,234.5"  # kept as written
    assert build({**row, "solution": 42}).solution == "42"
    assert reason({**row, "solution": "three"}) == "numerical answer 'three' is not a number"
    assert reason({**row, "problem_type": "regression", "solution": "nan"}) == (
        "regression answer 'nan' is not a finite number"
    )
    # OCR and free-form answers are free text.
    assert build({**row, "problem_type": "OCR", "solution": "STOP"}).solution == "STOP"


def test_data_type():
    assert build({**BASE, "media_path": "i/x.PNG"}).data_type == "image"  # inferred
    assert build({**BASE, "data_type": "Video"}).data_type == "video"
    assert reason({**BASE, "data_type": "audio"}) == "unknown data_type 'audio' (expected video or image)"
    assert reason({**BASE, "data_type": "image"}) == "data_type 'image' does not match the video file v/a.mp4"
    assert reason({**BASE, "media_path": "v/a.txt"}) == "unsupported media extension '.txt'"
    assert reason({**BASE, "media_path": "v/a"}) == "media path has no extension: v/a"


def test_meta_and_ids():
    s = build({**BASE, "meta": '{"k": 1}', "id": "src-7", "notes": "kept", "blank": None})
    assert s.meta == {"k": 1, "source_id": "src-7", "notes": "kept"}
    assert s.id == sample_id("default", "v/a.mp4", BASE["problem"])  # the source id never sets identity
    assert reason({**BASE, "meta": "{oops"}).startswith("meta is not valid JSON")
    assert reason({**BASE, "meta": "[1]"}) == "meta must be a JSON object, got list"
    # Our own id read back is not duplicated into meta (exact round-trips).
    assert build({**BASE, "id": s.id}).meta == {}


def test_data_source_and_aliases():
    s = build({"video": "./v/a.mp4", "question": "Q?", "answer": "blue", "problem_type": "free-form"})
    assert (s.media_path, s.problem, s.solution, s.data_source) == ("v/a.mp4", "Q?", "blue", "default")
    assert build({**BASE, "data_source": " src "}).data_source == "src"
    assert build({**BASE, "data_source": ""}).data_source == "default"
    # The first non-empty alias wins; the others stay in meta.
    s = build({**BASE, "media_path": "", "image": "i/x.jpg"})
    assert s.media_path == "i/x.jpg"


def test_column_map():
    row = {"clip": "v/a.mp4", "q": "Q?", "a": "4", "problem_type": "numerical", "problem": "other"}
    s = build(row, {"clip": "media_path", "q": "problem", "a": "solution"})
    assert (s.media_path, s.problem, s.solution) == ("v/a.mp4", "Q?", "4")
    assert s.meta == {"problem": "other"}  # displaced by the explicit mapping, not lost


def test_config_rejects_typos(tmp_path: Path):
    with pytest.raises(ValidationError, match="media_roots"):
        SourceConfig(path=tmp_path / "a.jsonl", media_roots=tmp_path)
    with pytest.raises(ValidationError, match="questoin"):
        SourceConfig(path=tmp_path / "a.jsonl", column_map={"q": "questoin"})
    with pytest.raises(ValidationError, match="kind"):
        SourceConfig(path=tmp_path / "a.jsonl", kind="csv")
    cfg = SourceConfig(path=tmp_path / "sub" / "rows.jsonl")
    assert cfg.resolved_media_root() == (tmp_path / "sub").absolute()
    assert cfg.default_data_source() == "rows"
