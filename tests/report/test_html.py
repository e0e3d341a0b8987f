import json
import re
from pathlib import Path

from PIL import Image

from curation.report import html as html_mod
from curation.report.html import embed_json, frame_file, plan_frames, write_report
from curation.report.stats import histogram, read_set
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
    found = read_set(d)
    assert found.rows == 2 and sorted(found.by_problem_type) == ["OCR", "numerical"]
    assert sorted(found.lengths) == [1, 2]  # "c"; "a b" without its think tags
    assert read_set(tmp_path / "none") is None


def _split_into_two_shards(store: RunStore, first: set[str]) -> None:
    """Rewrite every stage as two shards (the `first` samples, then the rest), as a bigger run has."""
    for stage in ("sources", "extract", "caption", "draft", "revise", "filter"):
        rows = store.read_shard(stage, 0) or []
        store.write_shard(stage, 0, [r for r in rows if r["id"] in first])
        store.write_shard(stage, 1, [r for r in rows if r["id"] not in first])


def test_report_joins_shard_by_shard_and_counts_every_sample(small_run, tmp_path):
    store, ids = small_run["store"], small_run["ids"]
    whole = write_report(store.run_dir, tmp_path / "whole.html").read_text()
    _split_into_two_shards(store, set(ids[:4]))
    assert store.shards("filter") == [0, 1]
    split = write_report(store.run_dir, tmp_path / "split.html").read_text()
    assert [s["id"] for s in _data(split)["samples"]] == ids  # source order across shards
    kpis = re.findall(r'<div class="kpi-value">(.*?)</div>', split)
    assert kpis == re.findall(r'<div class="kpi-value">(.*?)</div>', whole)
    assert "subset-note" not in split


def test_big_run_embeds_a_subset_but_counts_everything(small_run, tmp_path):
    store, ids = small_run["store"], small_run["ids"]
    _split_into_two_shards(store, set(ids[:4]))
    html = write_report(store.run_dir, tmp_path / "r.html", max_samples=4).read_text()
    samples = _data(html)["samples"]
    # 4 rejected/failed and 3 ok samples: half the page each, evenly spread, shown in source order.
    assert [s["id"] for s in samples] == [ids[0], ids[1], ids[3], ids[5]]
    assert re.search(r'<div class="kpi-value">7</div><div class="kpi-label">samples', html)
    assert "This page holds 4 of the run's 7 samples" in html
    assert "answer mismatch" in html and "invalid JSON after repair" in html  # every reason still counted
    # The table's filter menus count what is on the page, so they agree with the table.
    assert '<option value="failed">failed (1)</option>' in html


def test_choose_samples_prefers_problems_then_spreads_evenly():
    from curation.report.html import choose_samples

    ok = [f"ok{i}" for i in range(10)]
    bad = [f"bad{i}" for i in range(6)]
    assert choose_samples(bad, ok, 100) == set(bad) | set(ok)
    assert choose_samples(bad, ok, 6) == {"bad0", "bad2", "bad4", "ok0", "ok3", "ok6"}
    assert choose_samples(bad, ok[:1], 6) == {"bad0", "bad1", "bad2", "bad3", "bad4", "ok0"}  # few ok
    assert choose_samples(bad[:1], ok, 4) == {"bad0", "ok0", "ok3", "ok6"}  # few problems
    assert choose_samples(bad, ok, 6) == choose_samples(list(bad), list(ok), 6)
