import json
import re
from pathlib import Path

from PIL import Image

from curation.report import html as html_mod
from curation.report.html import embed_json, frame_file, plan_frames, write_report
from curation.report.stats import histogram, read_dataset_rows
from curation.report.thumbs import ThumbStore, pick_frames
from curation.store import RunStore


def _data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m, "data blob missing"
    return json.loads(m.group(1))


def test_report_is_self_contained(small_run, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-do-not-leak-123")
    run = small_run["store"].run_dir
    out = write_report(run)
    assert out == run / "report.html"
    html = out.read_text()
    # Nothing loaded from elsewhere: no external src/href, no stylesheet links, a CSP forbidding it.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<link" not in html and "default-src 'none'" in html
    assert "sk-do-not-leak-123" not in html and "SIM_API_KEY" not in html
    data = _data(html)
    assert [s["id"] for s in data["samples"]] == small_run["ids"]
    kept = data["samples"][0]
    assert len(kept["thumbs"]) == 4 and len(kept["frames"]) == 8
    assert all(data["thumbs"][i].startswith("data:image/jpeg;base64,") for i in kept["thumbs"])
    assert kept["diff"] and kept["verdicts"]["accuracy"]["kept"] is True
    assert "cfg-123abc" in html  # run info from the manifest
    assert "answer mismatch" in html and "decode error: moov atom not found" in html
    assert "COT" in html and "video-r1-json" in html  # published set read back from publish/cot


def test_thumbnails_are_small_and_deduplicated(tmp_path):
    img = tmp_path / "a.jpg"
    Image.new("RGB", (640, 360), (10, 120, 200)).save(img, "JPEG")
    copy = tmp_path / "b.jpg"
    copy.write_bytes(img.read_bytes())
    store = ThumbStore(width=96)
    store.add_many([img, copy, img, tmp_path / "missing.jpg"])
    assert store.index(img) == store.index(copy) == 0 and len(store.urls) == 1
    assert store.index(tmp_path / "missing.jpg") is None
    assert len(store.urls[0]) < 3000


def test_thumbnail_budget_keeps_table_frames_first(small_run, tmp_path, monkeypatch):
    monkeypatch.setattr(html_mod, "MIN_THUMB_BYTES", 16_000)
    run = small_run["store"].run_dir
    data = _data(write_report(run, tmp_path / "r.html", size_budget_mb=0.1).read_text())
    samples_with_frames = [s for s in data["samples"] if s["n_frames"] == 8]
    assert all(len(s["thumbs"]) == 4 for s in samples_with_frames)
    assert any(f[0] is None for s in samples_with_frames for f in s["frames"])


def test_partial_run_without_manifest_or_later_stages(tmp_path):
    store = RunStore(tmp_path / "partial")
    store.write_shard(
        "sources", 0, [{"id": "s1", "key": "k", "status": "ok", "reason": "", "problem": "</script><b>x"}]
    )
    store.write_shard("extract", 0, [{"id": "s1", "key": "k2", "status": "failed", "reason": "no such file"}])
    html = write_report(store.run_dir).read_text()
    data = _data(html)
    assert data["samples"][0]["status"] == "failed" and data["samples"][0]["problem"] == "</script><b>x"
    assert "not been published" in html


def test_helpers():
    assert pick_frames(32, 4) == [0, 10, 21, 31]
    assert pick_frames(3, 4) == [0, 1, 2] and pick_frames(0, 4) == []
    plan = plan_frames(32, 4, 8)
    assert plan.table == [0, 10, 21, 31] and len(plan.detail) == 8 and set(plan.table) <= set(plan.detail)
    assert plan_frames(5, 4, 8).detail == [0, 1, 2, 3, 4] and plan_frames(0, 4, 8).detail == []
    assert "<" not in embed_json({"x": "</script>"})
    run = Path("/runs/r")
    assert frame_file(run, "frames/a/000.jpg") == run / "frames/a/000.jpg"
    assert frame_file(run, "../other/000.jpg") is None and frame_file(run, "/etc/x.jpg") is None
    bins = histogram([10, 12, 55, 99, 100])
    assert sum(b["count"] for b in bins) == 5 and max(b["height"] for b in bins) == 100.0


def test_reads_published_parquet_and_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = tmp_path / "set"
    d.mkdir()
    pq.write_table(
        pa.table({"problem_type": ["OCR"], "data_source": ["x"], "process": ["<think>a b</think>"]}),
        d / "train.parquet",
    )
    (d / "more.jsonl").write_text(json.dumps({"problem_type": "numerical", "process": "c"}) + "\n")
    (d / "dataset_info.json").write_text("{}")
    rows = read_dataset_rows(d)
    assert sorted(r["problem_type"] for r in rows) == ["OCR", "numerical"]
    assert read_dataset_rows(tmp_path / "none") is None
