"""The report as a browser shows it: headless Chromium renders it, we read the DOM after its JS ran.

Skips (with the reason) where Debian's chromium is not installed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from curation.report.browser import dump_dom, file_url, find_chromium, screenshot
from curation.report.html import write_report

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        find_chromium() is None, reason="headless Chromium not installed (apt-get install -y chromium)"
    ),
]


def _tbody(dom: str) -> str:
    m = re.search(r'<tbody id="rows">(.*?)</tbody>', dom, re.S)
    assert m, "samples table body missing from the rendered page"
    return m.group(1)


def _assert_real_picture(png: Path, size: tuple[int, int] = (1400, 1000)) -> None:
    assert png.exists() and png.stat().st_size > 20_000
    with Image.open(png) as im:
        assert im.size == size
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 200, "screenshot looks blank"


def test_rendered_table_thumbnails_and_diff(small_run, tmp_path):
    report = write_report(small_run["store"].run_dir)

    dom = dump_dom(file_url(report))
    body = _tbody(dom)
    rendered_ids = re.findall(r'<tr data-id="([0-9a-f]+)"', body)
    assert rendered_ids == small_run["ids"], "the JS did not render one row per sample"
    assert len(re.findall(r'<img class="thumb" src="data:image/jpeg;base64,', body)) == 4 * 4 + 1
    assert "decode error: moov atom not found" in body
    assert re.search(r'data-ready-ms="[\d.]+"', dom)
    assert "4 of" not in dom and "7 samples" in dom

    kept = small_run["kept_id"]
    detail = dump_dom(file_url(report, f"sample={kept}"))
    m = re.search(r'<div class="diff" id="cot-diff">(.*?)</div></div>', detail, re.S)
    assert m, "the detail view with the draft/revision diff did not open from the URL hash"
    diff = m.group(1)
    assert re.search(r"<del>[^<]*visualize[^<]*</del>", diff), "draft-only words not struck out"
    assert re.search(r"<ins>[^<]*shows[^<]*</ins>", diff), "revision-only words not marked inserted"
    assert '<div class="frames-grid" id="detail-frames">' in detail
    assert detail.count('<figure><img class="thumb"') == 8
    # Each of the 8 per-frame captions beside its frame's thumbnail.
    assert (
        detail.count('<tr class="cap-row"><td class="cap-frame"><img class="thumb" src="data:image/jpeg') == 8
    )
    assert "Filter verdicts and scores" in detail and "objects:" in detail

    overview = screenshot(file_url(report), tmp_path / "report.png")
    _assert_real_picture(overview)
    _assert_real_picture(screenshot(file_url(report, f"sample={kept}"), tmp_path / "report-detail.png"))


def test_clickable_reasons_caption_times_chart_and_served_over_http(small_run, tmp_path):
    """What the summary links do (they set `#filter:...`), caption times as written beside their
    frames, the CoT length chart, all in a real browser; the same page served by `report --serve`.
    Screenshots: tmp_path/report-{overview,filtered,detail,served}.png (paths printed)."""
    import subprocess
    import sys
    from urllib.parse import urlencode

    ids = small_run["ids"]
    run_dir = small_run["store"].run_dir
    report = write_report(run_dir)

    by_step = dump_dom(file_url(report, "filter:" + urlencode({"stage": "filter", "reason": "accuracy"})))
    assert re.findall(r'<tr data-id="([0-9a-f]+)"', _tbody(by_step)) == [ids[1]]
    assert re.search(r'<span id="reason-chip" class="chip">', by_step), "active reason not shown"
    assert "1 of 7 samples" in by_step
    by_cell = dump_dom(
        file_url(report, "filter:" + urlencode({"data_source": "synthetic/counting", "status": "failed"}))
    )
    assert re.findall(r'<tr data-id="([0-9a-f]+)"', _tbody(by_cell)) == [ids[3]]
    assert '<option value="failed">' in by_cell

    detail = dump_dom(file_url(report, f"sample={small_run['kept_id']}"))
    times = re.findall(r'<tr class="cap-row">.*?<td class="t">([^<]*)<div', detail)
    assert times == [
        "00:00:00",
        "00:00:00",
        "00:00:01",
        "00:00:01",
        "00:00:02",
        "00:00:02",
        "00:00:03",
        "00:00:03",
    ]
    assert "NaN" not in detail
    assert re.search(r'<svg class="chart" id="cot-length-1"[^>]*>.*<rect class="chart-bar"', detail, re.S)

    shots = {
        "overview": screenshot(file_url(report), tmp_path / "report-overview.png"),
        # A window as tall as the page: headless Chromium paints a scrolled page blank, and the link
        # scrolls to the table.
        "filtered": screenshot(
            file_url(report, "filter:" + urlencode({"stage": "filter", "reason": "accuracy"})),
            tmp_path / "report-filtered.png",
            window=(1400, 4000),
        ),
        "detail": screenshot(
            file_url(report, f"sample={small_run['kept_id']}"), tmp_path / "report-detail.png"
        ),
    }

    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "report", str(run_dir), "--serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith("report: ")
        line = proc.stdout.readline()
        url = re.search(r"at (http://127\.0\.0\.1:\d+/) ", line).group(1)
        served = dump_dom(url)
        assert re.findall(r'<tr data-id="([0-9a-f]+)"', _tbody(served)) == ids
        shots["served"] = screenshot(url, tmp_path / "report-served.png")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    for name, png in shots.items():
        _assert_real_picture(png, (1400, 4000) if name == "filtered" else (1400, 1000))
        print(f"screenshot {name}: {png}")
