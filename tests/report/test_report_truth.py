"""The report tells the truth: counts that match the manifest, caption times as written, captions
beside their frames, the filter funnel, sources × status, the CoT length chart, provenance, and
Prefect artifacts a UI can show. (The browser's view of the same is in test_report_browser.py.)"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

import pytest

from curation.report.artifacts import key_figures, report_markdown
from curation.report.charts import histogram_svg
from curation.report.html import caption_frame_indices, parse_time, write_report
from curation.report.serve import serving
from curation.report.stats import read_set

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "publish"))


def _data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m
    return json.loads(m.group(1))


@pytest.mark.integration
def test_a_published_set_is_counted_once(tmp_path):
    """Parquet + load_from_disk Arrow + Video-R1 JSONL hold the same rows: each counts once."""
    from publish_fixture import build_run

    from curation.publish import PublishConfig, publish_run

    store, _ = build_run(tmp_path / "run")
    result = publish_run(store, tmp_path / "out", PublishConfig(test_fraction=0.5), run_name="r", lineage={})
    cot, rl = read_set(result.cot_dir), read_set(result.rl_dir)
    assert (cot.rows, rl.rows) == (result.cot_rows, result.rl_rows) == (2, 5)
    assert len(cot.lengths) == 2

    store.manifest.update(publish=result.to_dict())
    html = write_report(store.run_dir).read_text()
    assert re.search(r"<h3>COT <span class=\"muted\">· 2 rows", html)
    assert re.search(r"<h3>RL <span class=\"muted\">· 5 rows", html)


def test_caption_times_and_frames():
    frames = [{"path": f"f/{i}.jpg", "timestamp": 0.2 + 0.5 * i} for i in range(8)]
    caption = {"frames": [{"timestamp": f"00:00:0{int(0.5 * i)}"} for i in range(8)]}
    assert caption_frame_indices(caption, frames) == list(range(8))  # one caption per frame, in order
    subset = {"frames": [{"timestamp": "00:00:00"}, {"timestamp": "00:00:02"}, {"timestamp": "bad"}]}
    assert caption_frame_indices(subset, frames) == [0, 4, None]  # nearest frame by time
    assert caption_frame_indices(None, frames) == [] and caption_frame_indices({"frames": []}, frames) == []
    assert parse_time("00:01:02") == 62 and parse_time("01:02:03.5") == 3723.5 and parse_time("2.5") == 2.5
    assert parse_time(4) == 4.0 and parse_time("12:xx") is None and parse_time(None) is None


def test_payload_keeps_caption_times_as_written_and_pairs_frames(small_run):
    html = write_report(small_run["store"].run_dir).read_text()
    kept = next(s for s in _data(html)["samples"] if s["id"] == small_run["kept_id"])
    assert [f["timestamp"] for f in kept["caption"]["frames"]][:3] == ["00:00:00", "00:00:00", "00:00:01"]
    assert [f[1] for f in kept["caption_frames"]] == [0.5 * k for k in range(8)]
    assert all(f[0] is not None for f in kept["caption_frames"])  # every caption has its thumbnail
    assert "NaN" not in html


def test_filter_funnel_and_source_status_tables(small_run):
    html = write_report(small_run["store"].run_dir).read_text()
    funnel = re.search(r'<div class="card" id="filter-funnel">(.*?)</table>', html, re.S).group(1)
    # 3 rows reach the filter: "accuracy" drops the one with a wrong answer, "leak" drops nothing.
    acc = re.search(r'<tr class="funnel-step" data-step="accuracy">(.*?)</tr>', funnel, re.S).group(1)
    assert re.findall(r'<td class="n[^"]*">(\d+)</td>', acc) == ["3", "1", "2", "1"]
    leak = re.search(r'<tr class="funnel-step" data-step="leak">(.*?)</tr>', funnel, re.S).group(1)
    assert re.findall(r'<td class="n[^"]*">(\d+)</td>', leak) == ["2", "0", "2", "0"]
    assert 'href="#filter:stage=filter&amp;reason=accuracy%3A+answer+mismatch"' in funnel
    table = re.search(r'<table class="source-status">(.*?)</table>', html, re.S).group(1)
    rows = {
        src: re.findall(r">(\d+)<", rest)
        for src, rest in re.findall(r'class="facet-link">(synthetic/\w+)</a></td>(.*?)</tr>', table, re.S)
    }
    # motion: two kept, one failed at extract, one rejected at sources; counting: rejected by the
    # filter, failed at caption, ok after revise (not filtered yet).
    assert rows == {"synthetic/counting": ["1", "1", "1", "3"], "synthetic/motion": ["2", "1", "1", "4"]}
    assert 'href="#filter:data_source=synthetic%2Fcounting&amp;status=rejected"' in table


def test_cot_length_chart_and_provenance_banner(small_run):
    store = small_run["store"]
    html = write_report(store.run_dir).read_text()
    svg = re.search(r'<svg class="chart" id="cot-length-1".*?</svg>', html, re.S).group(0)
    assert sum(int(n) for n in re.findall(r'data-count="(\d+)"', svg)) == 2  # the 2 kept CoTs
    assert "words in the CoT" in svg and "simulated-banner" not in html

    sim = "videorft-simulated-endpoint (not a model)"
    stages = store.manifest.data["stages"]
    for stage in ("caption", "draft", "revise"):
        stages[stage].update(model="Qwen/Qwen2.5-VL-72B-Instruct", served_models={sim: 3}, simulated=True)
    store.manifest.update(stages=stages)
    html = write_report(store.run_dir).read_text()
    assert 'id="simulated-banner"' in html
    models = re.search(r'<table class="models" id="models">(.*?)</table>', html, re.S).group(1)
    assert "Qwen/Qwen2.5-VL-72B-Instruct" in models and sim in models


def test_histogram_svg_is_empty_without_bins():
    assert histogram_svg([], x_label="words") == ""


def test_prefect_artifact_markdown_names_figures_path_and_serve_command(small_run, tmp_path):
    manifest = small_run["store"].manifest.data | {"run_dir": "/runs/r"}
    figures = key_figures(manifest)
    assert figures["samples"] == 7 and figures["kept"] == 2 and figures["cot_rows"] == 2
    md = report_markdown("r", manifest, Path("/runs/r/report.html"))
    assert "file:///" not in md and "/runs/r/report.html" in md  # a path as text, not a link
    assert "videorft report /runs/r --serve" in md
    assert "| 7 | 2 |" in md and "Published `v1`" in md


def test_serve_returns_the_report_and_nothing_else(small_run):
    report = write_report(small_run["store"].run_dir)
    with serving(report) as url:
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/html")
            assert resp.read() == report.read_bytes()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + "manifest.json", timeout=10)
        assert err.value.code == 404
