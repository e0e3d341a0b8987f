"""The generic reader reads what the synthetic generator writes (the demo's only source)."""

from __future__ import annotations

import json

import pytest

from curation.sources import SourceConfig, read_source

pytestmark = pytest.mark.integration


def test_synthetic_annotations_read_clean(request):
    pytest.importorskip("curation.sources.synthetic")
    synth_dir = request.getfixturevalue("synth_dir")  # session fixture: generated once, shared
    path = synth_dir / "annotations.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    rows = list(read_source(SourceConfig(path=path)))  # kind auto, media root = the file's folder
    assert len(rows) == len(lines)
    assert all(r.ok for r in rows), [(r.index, r.reason) for r in rows if not r.ok]
    assert len({r.sample.id for r in rows}) == len(rows)
    for row, line in zip(rows, lines, strict=True):
        s = row.sample
        assert (synth_dir / s.media_path).is_file()
        assert s.data_source == line["data_source"] and s.data_source.startswith("synthetic/")
        assert s.meta == line["meta"]  # the scene ground truth comes through untouched
        assert s.problem_type == line["problem_type"]
    assert rows == list(read_source(SourceConfig(path=path)))  # same input, same rows and ids
