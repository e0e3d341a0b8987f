"""Video-R1 / VideoRFT JSON: a file mixing good and bad rows, every row accounted for."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from curation.records import sample_id
from curation.sources import SourceConfig, read_source
from curation.sources.videor1 import looks_like_videor1, split_embedded_options, strip_answer_tags

OPTS = ["A. red", "B. blue", "C. green", "D. pink"]


def r1(i: int, **over) -> dict:
    row = {
        "problem_id": i,
        "problem": f"What colour is the ball in clip {i}?",
        "data_type": "video",
        "problem_type": "multiple choice",
        "options": OPTS,
        "process": "<think>The ball looks blue.</think>",
        "solution": "<answer>B</answer>",
        "path": f"./LLaVA-Video-178K/clip_{i}.mp4",
        "data_source": "LLaVA-Video-178K/30_60_s",
    }
    row.update(over)
    return {k: v for k, v in row.items() if v is not ...}  # `...` drops a field


# (row, expected status, expected reason; a reason ending in "*" is a prefix)
CASES = [
    (r1(0), "ok", ""),
    (r1(1, problem=...), "rejected", "missing field 'problem'"),
    (r1(2, problem_type="essay"), "rejected", "unknown problem_type 'essay'"),
    (r1(3, options=[]), "rejected", "multiple choice without options"),
    (r1(4, solution="<answer>E</answer>"), "rejected", "answer 'E' is not one of the options A–D"),
    (r1(5, path="../../etc/passwd"), "rejected", "media path escapes the media root: ../../etc/passwd"),
    (r1(6, path="/etc/passwd"), "rejected", "absolute media path outside the media root: …/passwd"),
    (r1(7, path="./LLaVA-Video-178K/leak.mp4"), "rejected",
     "media path resolves outside the media root through a symlink: LLaVA-Video-178K/leak.mp4*"),
    (r1(8, options=..., problem="Which object moves first?\n(A) the cat\n(B) the dog\n(C) the car",
        solution="<answer>C</answer>"), "ok", ""),
    (r1(9, options=[], problem="What happens next?\nOptions:\nA. it stops\nB) it turns\nC. it jumps\n"
        "Answer with the option's letter.", solution="<answer> a </answer>"), "ok", ""),
    (r1(10, problem_type="numerical", options=..., data_type="image", path="./Chart/10.jpg",
        solution="<answer>3.5</answer>"), "ok", ""),
    (r1(11, problem_type="numerical", options=[], solution="<answer>three</answer>"), "rejected",
     "numerical answer 'three' is not a number"),
    (r1(12, solution="<answer>B. blue</answer>"), "ok", ""),
    (r1(13, path="./notes/readme.txt"), "rejected", "unsupported media extension '.txt'"),
    (r1(14, path="./a/../../x.mp4"), "rejected", "media path escapes the media root: ./a/../../x.mp4"),
    (r1(15, problem_type="free-form", options=[], data_source=..., solution="<answer>A boy kicks a ball.</answer>"),
     "ok", ""),
    (r1(16, solution="<answer></answer>"), "rejected", "empty field 'solution'"),
    (r1(17, options=..., problem="Pick one.\nB. first\nA. second"), "rejected", "multiple choice without options"),
    (r1(18, problem_type="regression", options=[], solution="<answer>2.25</answer>", path="Spatial/18.png",
        data_type="image"), "ok", ""),
]  # fmt: skip


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    root = tmp_path / "VideoRFT"
    (root / "LLaVA-Video-178K").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.mp4").write_bytes(b"not yours")
    os.symlink(tmp_path / "outside" / "secret.mp4", root / "LLaVA-Video-178K" / "leak.mp4")
    return root


def write(path: Path, rows: list[dict], as_jsonl: bool) -> Path:
    if as_jsonl:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path.write_text(json.dumps(rows, indent=1))
    return path


@pytest.mark.parametrize("as_jsonl", [False, True], ids=["json-list", "jsonl"])
@pytest.mark.parametrize("kind", ["auto", "videor1"])
def test_mixed_file_every_row_accounted_for(media_root: Path, as_jsonl: bool, kind: str):
    rows_in = [row for row, _, _ in CASES]
    # A .json extension holding JSONL is what VideoRFT ships: auto-detected from the first byte.
    path = write(media_root / "mixed.json", rows_in, as_jsonl)
    rows = list(read_source(SourceConfig(path=path, kind=kind)))

    assert len(rows) == len(rows_in) == sum(r.ok for r in rows) + sum(r.status == "rejected" for r in rows)
    assert [r.index for r in rows] == list(range(len(rows_in)))
    for row, (raw, status, reason) in zip(rows, CASES, strict=True):
        assert json.loads(row.raw) == raw  # the original row, good or bad, is kept
        assert row.status == status, (row.index, row.reason)
        if reason.endswith("*"):
            assert row.reason.startswith(reason[:-1]), row.reason
        else:
            assert row.reason == reason
        assert (row.sample is not None) == (status == "ok")

    by_index = {r.index: r.sample for r in rows if r.ok}
    s = by_index[0]
    assert s.media_path == "LLaVA-Video-178K/clip_0.mp4"  # "./" stripped
    assert s.solution == "B" and s.options == OPTS
    assert s.meta == {"problem_id": 0, "process": "<think>The ball looks blue.</think>"}
    assert s.id == sample_id("LLaVA-Video-178K/30_60_s", "LLaVA-Video-178K/clip_0.mp4", s.problem)

    s = by_index[8]
    assert s.problem == "Which object moves first?"
    assert s.options == ["A. the cat", "B. the dog", "C. the car"] and s.solution == "C"
    assert s.meta["original_problem"] == CASES[8][0]["problem"]

    s = by_index[9]
    assert s.problem == "What happens next?\nAnswer with the option's letter."
    assert s.options == ["A. it stops", "B. it turns", "C. it jumps"] and s.solution == "A"

    assert (by_index[10].solution, by_index[10].data_type, by_index[10].options) == ("3.5", "image", [])
    assert by_index[12].solution == "B"
    assert by_index[15].data_source == "mixed"  # no data_source in the row: the file stem
    assert by_index[15].solution == "A boy kicks a ball."
    assert by_index[18].problem_type == "regression"


def test_same_item_same_id_as_generic_annotations(media_root: Path):
    path = write(media_root / "r1.json", [r1(0)], as_jsonl=False)
    generic = {
        "media_path": "LLaVA-Video-178K/clip_0.mp4",
        "question": r1(0)["problem"],
        "answer": "B",
        "options": "A. red|B. blue|C. green|D. pink",
        "problem_type": "multiple choice",
        "data_source": "LLaVA-Video-178K/30_60_s",
    }
    path2 = media_root / "generic.jsonl"
    path2.write_text(json.dumps(generic) + "\n")
    (a,) = read_source(SourceConfig(path=path))
    (b,) = read_source(SourceConfig(path=path2))
    assert a.ok and b.ok and a.sample.id == b.sample.id


def test_helpers():
    assert strip_answer_tags("<answer> 12 </answer>") == "12"
    assert strip_answer_tags("plain") == "plain"
    assert split_embedded_options("Q?\nA. x") is None  # one option is not a list
    # After the last option: an instruction for the question, not more option text.
    assert split_embedded_options("Q?\nA. x\nB. y\n\n  Answer briefly.") == (
        "Q?\nAnswer briefly.",
        ["A. x", "B. y"],
    )
    assert split_embedded_options("Q?\nA. x\n  more\nB. y") == ("Q?", ["A. x more", "B. y"])
    assert split_embedded_options("A. x\nB. y") is None  # no question left
    assert looks_like_videor1({"problem_id": 1})
    assert looks_like_videor1({"solution": "<answer>B</answer>"})
    assert not looks_like_videor1({"solution": "B", "media_path": "a.mp4"})
