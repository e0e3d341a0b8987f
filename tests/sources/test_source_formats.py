"""Every format reads back the same Samples; rows stream; broken rows are kept, not lost."""

from __future__ import annotations

import csv
import inspect
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from curation.records import Sample, sample_id
from curation.sources import SourceConfig, read_source
from curation.sources import annotations as annotations_module

SPECS = [
    # media_path, data_type, problem, solution, problem_type, data_source, options, meta
    ("clips/a.mp4", "video", "What is the man holding?", "B", "multiple choice", "LLaVA-Video/x",
     ["A. a cup", "B. a phone", "C. a book"], {"fps": 30, "tags": ["x"]}),
    ("clips/sub dir/b.webm", "video", "How many cars pass?", "3", "numerical", "synthetic/count", [], {}),
    ("img/c.jpg", "image", "Read the sign.", "STOP, now", "OCR", "TextVQA", [], {"ocr": True}),
    ("img/d.png", "image", "Describe: what happens?\nBe brief.", 'A dog | runs, "fast"', "free-form", "free",
     [], {"nested": {"a": [1, 2]}}),
    ("clips/e.mkv", "video", "Distance in metres?", "2.50", "regression", "spatial", [], {}),
    # An option with a "|" in it: the CSV must spell options as a JSON list for this row.
    ("clips/é ü.mov", "video", "Ünïcode question — ok?", "A", "multiple choice", "uni",
     ["A. yes", "B. no | maybe"], {}),
]  # fmt: skip


def make_samples() -> list[Sample]:
    return [
        Sample(sample_id(src, path, q), path, dt, q, sol, pt, src, list(opts), dict(meta))
        for path, dt, q, sol, pt, src, opts, meta in SPECS
    ]


SAMPLES = make_samples()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, samples: list[Sample]) -> Path:
    columns = list(asdict(samples[0]))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for s in samples:
            row = s.to_row()
            opts = s.options
            # Both documented spellings: "A. x|B. y", or a JSON list when an option holds a "|".
            row["options"] = (
                json.dumps(opts, ensure_ascii=False) if any("|" in o for o in opts) else "|".join(opts)
            )
            row["meta"] = "" if not s.meta else row["meta"]
            writer.writerow(row)
    return path


def write_parquet(path: Path, samples: list[Sample], row_group_size: int = 2) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([s.to_row() for s in samples]), path, row_group_size=row_group_size)
    return path


def read_all(**cfg) -> list:
    return list(read_source(SourceConfig(**cfg)))


def samples_of(rows) -> list[Sample]:
    assert [r.status for r in rows] == ["ok"] * len(rows), [r.reason for r in rows]
    return [r.sample for r in rows]


def test_jsonl_round_trip(tmp_path: Path):
    path = write_jsonl(tmp_path / "a.jsonl", [asdict(s) for s in SAMPLES])
    rows = read_all(path=path)
    assert samples_of(rows) == SAMPLES
    assert [r.index for r in rows] == list(range(len(SAMPLES)))
    assert json.loads(rows[0].raw)["media_path"] == "clips/a.mp4"


def test_json_list_round_trip(tmp_path: Path):
    path = tmp_path / "a.json"
    path.write_text(
        json.dumps([s.to_row() for s in SAMPLES], indent=2), encoding="utf-8"
    )  # meta as JSON text
    assert samples_of(read_all(path=path)) == SAMPLES


def test_csv_round_trip(tmp_path: Path):
    path = write_csv(tmp_path / "a.csv", SAMPLES)
    assert samples_of(read_all(path=path)) == SAMPLES


def test_parquet_round_trip(tmp_path: Path):
    path = write_parquet(tmp_path / "a.parquet", SAMPLES)
    assert samples_of(read_all(path=path)) == SAMPLES


def test_explicit_format_and_media_root(tmp_path: Path):
    path = write_jsonl(tmp_path / "rows.txt", [asdict(s) for s in SAMPLES])
    with pytest.raises(ValueError, match="set format"):
        read_source(SourceConfig(path=path))
    rows = read_all(path=path, format="jsonl", kind="annotations", media_root=tmp_path / "elsewhere")
    assert samples_of(rows) == SAMPLES  # media paths are relative, so the root does not change ids


@pytest.mark.integration
def test_hf_dataset_round_trip(tmp_path: Path):
    import datasets

    rows = [s.to_row() for s in SAMPLES]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "single"))
    assert samples_of(read_all(path=tmp_path / "single")) == SAMPLES  # kind auto: a folder is hf

    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows[:3]), "test": datasets.Dataset.from_list(rows[3:])}
    )
    dd.save_to_disk(str(tmp_path / "dict"))
    assert samples_of(read_all(path=tmp_path / "dict", kind="hf")) == SAMPLES[:3]
    assert samples_of(read_all(path=tmp_path / "dict", kind="hf", split="test")) == SAMPLES[3:]
    with pytest.raises(ValueError, match="split 'validation' not found .* train, test"):
        read_source(SourceConfig(path=tmp_path / "dict", kind="hf", split="validation"))

    # A user dataset with its own column names, and an image embedded as bytes (refused, with why).
    from PIL import Image

    (tmp_path / "img").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "img" / "x.png")
    user = datasets.Dataset.from_dict(
        {"clip": ["v/a.mp4"], "q": ["Q?"], "a": ["7"], "problem_type": ["numerical"], "image": [None]}
    )
    user.save_to_disk(str(tmp_path / "user"))
    (row,) = read_all(
        path=tmp_path / "user", column_map={"clip": "media_path", "q": "problem", "a": "solution"}
    )
    assert row.ok and row.sample.media_path == "v/a.mp4" and row.sample.data_source == "user"
    embedded = datasets.Dataset.from_dict(
        {
            "image": [str(tmp_path / "img" / "x.png")],
            "question": ["Q?"],
            "answer": ["x"],
            "problem_type": ["OCR"],
        }
    ).cast_column("image", datasets.Image())
    embedded.save_to_disk(str(tmp_path / "embedded"))
    (row,) = read_all(path=tmp_path / "embedded")
    assert row.status == "rejected" and row.reason.startswith("media embedded as bytes in the dataset")


def test_ids_are_stable_across_formats_and_spellings(tmp_path: Path):
    s = SAMPLES[0]
    variants = [
        {"video": f"./{s.media_path}", "question": s.problem, "answer": s.solution},
        {"path": str(tmp_path / s.media_path), "question": f"  {s.problem}\n", "answer": "B. a phone"},
        {"media_path": s.media_path.replace("/", "\\"), "problem": s.problem, "solution": "(B)"},
    ]
    for i, v in enumerate(variants):
        row = {
            **v,
            "problem_type": "mc",
            "options": "A. a cup|B. a phone|C. a book",
            "data_source": s.data_source,
        }
        (got,) = read_all(path=write_jsonl(tmp_path / f"v{i}.jsonl", [row]))
        assert got.ok, got.reason
        assert got.sample.id == s.id and got.sample.solution == "B"


def test_malformed_jsonl_line_is_a_rejected_row(tmp_path: Path):
    good = [json.dumps(asdict(s), ensure_ascii=False) for s in SAMPLES[:3]]
    path = tmp_path / "broken.jsonl"
    path.write_text(
        "\n".join([good[0], '{"media_path": "x.mp4", "problem": ', "", good[1], "[1, 2]", good[2]]) + "\n"
    )
    rows = read_all(path=path)
    assert [r.status for r in rows] == ["ok", "rejected", "ok", "rejected", "ok"]
    assert [r.index for r in rows] == [0, 1, 2, 3, 4]  # blank lines are not rows
    assert rows[1].reason.startswith("invalid JSON on line 2: Expecting value")
    assert rows[1].raw == '{"media_path": "x.mp4", "problem": '  # the broken text itself is kept
    assert rows[3].reason == "line 5 is not a JSON object (got list)"
    assert [r.sample for r in rows if r.ok] == SAMPLES[:3]


def test_csv_with_ragged_rows(tmp_path: Path):
    path = tmp_path / "r.csv"
    path.write_text(
        "video,question,answer,problem_type\n"
        "v/a.mp4,How many?,3,numerical\n"
        "v/b.mp4,How many?,3,numerical,surplus\n"
        "v/c.mp4,How many?\n"
    )
    rows = read_all(path=path)
    assert [(r.status, r.reason) for r in rows] == [
        ("ok", ""),
        ("rejected", "row 1 has more cells than the header has columns"),
        ("rejected", "missing field 'solution'"),
    ]
    assert rows[0].sample.data_source == "r"  # default: the file stem


def test_duplicates_are_rejected(tmp_path: Path):
    row = asdict(SAMPLES[1])
    rows = read_all(path=write_jsonl(tmp_path / "d.jsonl", [row, row, {**row, "problem": "Other?"}]))
    assert [r.status for r in rows] == ["ok", "rejected", "ok"]
    assert rows[1].reason.startswith("duplicate of row 0")


def test_limit_counts_source_rows(tmp_path: Path):
    path = write_jsonl(tmp_path / "a.jsonl", [asdict(s) for s in SAMPLES])
    assert [r.sample for r in read_all(path=path, limit=2)] == SAMPLES[:2]
    assert read_all(path=path, limit=0) == []


def test_config_errors_raise_at_call_time(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        read_source(SourceConfig(path=tmp_path / "nope.jsonl"))
    (tmp_path / "bad.json").write_text('[{"a": 1}')
    with pytest.raises(ValueError, match="not valid JSON"):
        read_source(SourceConfig(path=tmp_path / "bad.json"))
    (tmp_path / "obj.json").write_text('[{"a": 1}]'.strip("[]"), encoding="utf-8")
    with pytest.raises(ValueError, match="must hold a JSON list"):
        read_source(SourceConfig(path=tmp_path / "obj.json", format="json"))
    with pytest.raises(FileNotFoundError, match="save_to_disk"):
        read_source(SourceConfig(path=tmp_path / "obj.json", kind="hf"))


def test_reading_is_lazy(tmp_path: Path, monkeypatch):
    n = 3000
    rows = [{**asdict(SAMPLES[1]), "problem": f"How many cars pass? #{i}"} for i in range(n)]
    write_jsonl(tmp_path / "big.jsonl", rows)
    write_parquet(
        tmp_path / "big.parquet", [Sample.from_row({**r, "id": "x"}) for r in rows], row_group_size=500
    )

    pulled = {"n": 0}
    for name in ("iter_jsonl", "iter_parquet"):
        real = getattr(annotations_module, name)

        def counting(path, _real=real):
            for rec in _real(path):
                pulled["n"] += 1
                yield rec

        monkeypatch.setattr(annotations_module, name, counting)

    for suffix in ("jsonl", "parquet"):
        pulled["n"] = 0
        it = read_source(SourceConfig(path=tmp_path / f"big.{suffix}"))
        assert inspect.isgenerator(it)
        assert pulled["n"] == 0  # nothing read before the first row is asked for
        first = next(it)
        assert first.ok and first.index == 0
        assert pulled["n"] == 1
        assert sum(1 for _ in it) == n - 1
        assert pulled["n"] == n
