"""The synthetic source: every problem type, answers that match the pixels, byte-identical reruns."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from curation.records import PROBLEM_TYPES, Sample, normalize_problem_type, sample_id
from curation.sources.synthetic import COLOURS, TASKS, generate
from curation.stages.extract import extract_shard
from curation.video import VideoConfig, probe

N = 24  # four rounds of the six tasks: both variants of most tasks show up


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("synth")
    annotations = generate(out, N, seed=7)
    rows = [json.loads(line) for line in annotations.read_text().splitlines()]
    return out, rows


def decode_all(path: Path) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(bgr)
    cap.release()
    return frames


def test_annotations_follow_the_contract(synth):
    out, rows = synth
    assert len(rows) == N
    for row in rows:
        assert set(row) == {
            "media_path", "data_type", "problem", "options", "solution", "problem_type", "data_source", "meta",
        }  # fmt: skip
        assert row["data_type"] == "video"
        assert (out / row["media_path"]).is_file()
        assert normalize_problem_type(row["problem_type"]) == row["problem_type"]
        assert row["data_source"] == f"synthetic/{row['meta']['task']}"
        assert row["solution"] and "<answer>" not in row["solution"]
        Sample(id=sample_id(row["data_source"], row["media_path"], row["problem"]), **row)


def test_every_problem_type_and_task_within_six_samples(tmp_path: Path):
    rows = [json.loads(line) for line in generate(tmp_path, 6).read_text().splitlines()]
    assert {r["problem_type"] for r in rows} == set(PROBLEM_TYPES)
    assert [r["meta"]["task"] for r in rows] == list(TASKS)


def test_answers_are_well_formed_per_problem_type(synth):
    _, rows = synth
    for row in rows:
        kind, answer, options = row["problem_type"], row["solution"], row["options"]
        if kind == "multiple choice":
            letters = [o.split(".", 1)[0] for o in options]
            assert letters == [chr(ord("A") + i) for i in range(len(options))]
            assert answer in letters
        else:
            assert options == []
        if kind == "numerical":
            assert answer.isdigit()
        if kind == "regression":
            assert float(answer) > 0
        if kind == "OCR":
            assert answer == row["meta"]["text"]


def test_meta_holds_the_scene_ground_truth(synth):
    out, rows = synth
    for row in rows:
        meta = row["meta"]
        for key in ("task", "objects", "positions", "events", "text", "background", "fps", "duration",
                    "width", "height", "caption", "facts"):  # fmt: skip
            assert key in meta, key
        assert meta["objects"] and all({"id", "shape", "colour", "size"} <= set(o) for o in meta["objects"])
        info = probe(out / row["media_path"], "pyav")
        assert (info.width, info.height) == (meta["width"], meta["height"])
        assert info.frame_count == meta["frame_count"] and info.fps == meta["fps"]
        assert info.duration == pytest.approx(meta["duration"])
        assert 2 <= meta["duration"] <= 5


def test_ground_truth_answers_are_consistent_with_meta(synth):
    _, rows = synth
    for row in rows:
        meta, answer = row["meta"], row["solution"]
        by_id = {o["id"]: o for o in meta["objects"]}
        if meta["task"] == "counting":
            colour, shape = re.match(r"How many (\w+) (\w+)s appear", row["problem"]).groups()
            wanted = [o for o in meta["objects"] if (o["colour"], o["shape"]) == (colour, shape)]
            assert len(wanted) == int(answer)
        elif meta["task"] == "motion" and meta["variant"] == "direction":
            start = next(e for e in meta["events"] if e["type"] == "starts_moving")
            chosen = next(o for o in row["options"] if o.startswith(answer + "."))
            assert chosen.endswith(start["direction"])
            (x0, y0), (x1, y1) = start["from"], start["to"]
            expected = {"left": x1 < x0, "right": x1 > x0, "up": y1 < y0, "down": y1 > y0}
            assert expected[start["direction"]]
        elif meta["task"] == "motion":
            first = min((e for e in meta["events"] if e["type"] == "starts_moving"), key=lambda e: e["t"])
            o = by_id[first["object"]]
            chosen = next(opt for opt in row["options"] if opt.startswith(answer + "."))
            assert chosen == f"{answer}. The {o['colour']} {o['shape']}"
        elif meta["task"] == "ratio" and meta["variant"] == "width":
            a, b = meta["objects"]
            assert float(answer) == pytest.approx(a["size"] / b["size"], abs=0.006)  # rounded to 2 decimals
        elif meta["task"] == "transformation":
            (change,) = [
                e
                for e in meta["events"]
                if e["type"] in ("changes_colour", "changes_size", "changes_shape", "moves")
            ]
            chosen = next(opt for opt in row["options"] if opt.startswith(answer + "."))
            target = by_id[change["object"]]
            assert f"The {target['colour']} {target['shape']}" in chosen
            assert sum(opt.endswith("Nothing changed") for opt in row["options"]) <= 1


def test_meta_positions_match_the_pixels(synth):
    """At every recorded key time, each object's centre pixel has that object's colour."""
    out, rows = synth
    checked = 0
    for row in rows:
        meta = row["meta"]
        frames = decode_all(out / row["media_path"])
        colour_at = _colour_timeline(meta)
        for obj_id, track in meta["positions"].items():
            for point in track:
                frame = frames[round(point["t"] * meta["fps"])]
                pixel = frame[point["y"], point["x"]].astype(int)
                expected = np.array(COLOURS[colour_at(obj_id, point["t"])])
                assert np.abs(pixel - expected).max() < 60, (row["media_path"], obj_id, point)
                checked += 1
    assert checked > 100


def _colour_timeline(meta: dict):
    changes = [e for e in meta["events"] if e["type"] == "changes_colour"]
    start = {o["id"]: o["colour"] for o in meta["objects"]}

    def colour_at(obj_id: str, t: float) -> str:
        colour = start[obj_id]
        for e in changes:
            if e["object"] == obj_id and t + 1e-6 >= e["t"]:
                colour = e["to"]
        return colour

    return colour_at


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(tmp_path: Path):
    generate(tmp_path / "a", 8, seed=3)
    generate(tmp_path / "b", 8, seed=3)
    generate(tmp_path / "c", 8, seed=4)
    a, b, c = (_digests(tmp_path / name) for name in "abc")
    assert a == b
    assert a["annotations.jsonl"] != c["annotations.jsonl"]


def test_regenerating_smaller_removes_stale_videos(tmp_path: Path):
    generate(tmp_path, 8)
    generate(tmp_path, 3)
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 3


def test_bad_arguments(tmp_path: Path):
    with pytest.raises(ValueError, match="at least 1"):
        generate(tmp_path, 0)
    with pytest.raises(ValueError, match="unknown synthetic task"):
        generate(tmp_path, 2, tasks=["juggling"])


@pytest.mark.integration
@pytest.mark.parametrize("reader", ["decord", "opencv", "pyav"])
def test_every_synthetic_video_extracts(synth, tmp_path: Path, reader: str):
    out, rows = synth
    samples = [Sample(id=sample_id(r["data_source"], r["media_path"], r["problem"]), **r) for r in rows]
    results = extract_shard(samples, out, tmp_path, VideoConfig(reader=reader, fallback_readers=[]))
    assert [r["status"] for r in results] == ["ok"] * N
    assert all(r["reader"] == reader and len(r["frame_paths"]) == 16 for r in results)
