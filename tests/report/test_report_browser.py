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


def _assert_real_picture(png: Path) -> None:
    assert png.exists() and png.stat().st_size > 20_000
    with Image.open(png) as im:
        assert im.size == (1400, 1000)
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
    assert "Filter verdicts and scores" in detail and "objects:" in detail

    overview = screenshot(file_url(report), tmp_path / "report.png")
    _assert_real_picture(overview)
    _assert_real_picture(screenshot(file_url(report, f"sample={kept}"), tmp_path / "report-detail.png"))
