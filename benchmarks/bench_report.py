"""Report benchmark: build a synthetic 1,000-sample run, write its HTML report, open it in Chromium.

Prints the report's size and build time, and how long headless Chromium takes to open it, against
the goals (< 20 MB, < 2 s to open). Open time is measured two ways, each the median of --repeats:
  * wall: launch-to-`--screenshot`-written for the report minus the same for a blank page
    (Chromium's own start-up taken out; the screenshot is taken after load, scripts and first
    paint). Not `--dump-dom`: serialising a 10 MB DOM to stdout takes seconds and is no part of
    opening the page;
  * in-page: `performance.now()` when the report's script finished its first render (navigation
    start to a usable table), which the page writes into `<body data-ready-ms>` (read with
    --dump-dom, whose own cost does not enter that figure).

Rows are fake but shaped like real ones (16 frames, a 16-frame structured caption, ~250-word draft
and revision, a long reasoning trace, filter scores). Frames are real JPEGs: by default a pool of
--pool distinct 448x252 frames hard-linked into every sample's folder (as the brief asks: reused);
--unique gives every sample its own frames, the worst case for size, where the thumbnail budget
decides how many detail frames survive.

    python benchmarks/bench_report.py [--n 1000] [--unique] [--out benchmarks/out/report]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.records import sample_id  # noqa: E402
from curation.report.browser import file_url, find_chromium, run_chromium  # noqa: E402
from curation.report.html import write_report  # noqa: E402
from curation.store import RunStore, StageStats  # noqa: E402

GOAL_MB = 20.0
GOAL_OPEN_S = 2.0
STAGES = ["sources", "extract", "caption", "draft", "revise", "filter"]
SHARD = 250
FRAMES = 16
WORDS = (
    "the a red blue green small large ball cube person car dog table left right moves rolls stops "
    "appears near behind in front of then after before while camera scene frame video shows text sign "
    "counts three two four object hand picks places door opens closes slowly quickly again first finally"
).split()
TYPES = ["multiple choice", "numerical", "OCR", "free-form", "regression"]
SOURCES = ["synthetic/motion", "synthetic/counting", "synthetic/ocr", "llava-video", "nextqa", "star"]
# (stage, status, reason, probability): where samples drop out, roughly what a real run shows.
DROPS = [
    ("sources", "rejected", "unsafe media path", 0.02),
    ("extract", "failed", "decode error: moov atom not found", 0.04),
    ("caption", "failed", "invalid JSON after repair", 0.03),
    ("draft", "failed", "timeout after 3 retries", 0.02),
    ("revise", "rejected", "revision changed the answer", 0.03),
    ("filter", "rejected", "answer mismatch", 0.30),
]


def sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, words: int) -> str:
    out, total = [], 0
    while total < words:
        k = rng.randint(8, 18)
        out.append(sentence(rng, k))
        total += k
    return " ".join(out)


def revise_text(rng: random.Random, draft: str) -> str:
    """A revision keeping most of the draft: drops, rewrites and adds some sentences."""
    out = []
    for s in re.split(r"(?<=\.) ", draft):
        r = rng.random()
        if r < 0.1:
            continue
        if r < 0.3:
            out.append(sentence(rng, rng.randint(8, 16)))
        else:
            out.append(s)
        if rng.random() < 0.05:
            out.append(sentence(rng, 10))
    return "<think>" + " ".join(out) + "</think>"


def background(seed: int) -> Image.Image:
    """A photo-like 448x252 texture: smooth colour field plus sensor-like noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (9, 16, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize((448, 252), Image.Resampling.BICUBIC), dtype=np.int16)
    noise = rng.integers(-20, 21, (252, 448, 3), dtype=np.int16)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def make_frame(path: Path, bg: Image.Image, seed: int) -> None:
    """A frame: a background with moving shapes on it (compresses like real video frames)."""
    rng = random.Random(seed)
    im = bg.copy()
    d = ImageDraw.Draw(im)
    for _ in range(4):
        x, y = rng.randint(0, 400), rng.randint(0, 210)
        d.ellipse(
            (x, y, x + 40, y + 40), fill=(rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, "JPEG", quality=85)


def link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def llm(rng: random.Random, model: str, prompt: int, completion: int, reasoning: int = 0) -> dict:
    cached = rng.random() < 0.2
    return {
        "model": model,
        "prompt_hash": "sha256:" + format(rng.getrandbits(48), "012x"),
        "requests": 0 if cached else 1,
        "cache_hits": 1 if cached else 0,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "reasoning_tokens": reasoning,
        "raw": "{}",
    }


def build_run(run_dir: Path, n: int, unique: bool, pool: int, seed: int = 0) -> RunStore:
    rng = random.Random(seed)
    store = RunStore(run_dir)
    backgrounds = [background(k) for k in range(pool)]
    pool_paths = []
    if not unique:
        for k in range(pool):
            p = run_dir / "frames" / "_pool" / f"{k:03d}.jpg"
            make_frame(p, backgrounds[k], k)
            pool_paths.append(p)
    tables: dict[str, list[dict]] = {s: [] for s in STAGES}
    for i in range(n):
        ptype, source = rng.choice(TYPES), rng.choice(SOURCES)
        media = f"videos/{source.split('/')[-1]}/clip_{i:05d}.mp4"
        problem = sentence(rng, rng.randint(10, 24)).rstrip(".") + "?"
        sid = sample_id(source, media, problem)
        options = [f"{c}. {sentence(rng, 4)}" for c in "ABCD"] if ptype == "multiple choice" else []
        solution = rng.choice("ABCD") if options else str(rng.randint(1, 40))
        end, status, reason = "filter", "ok", ""
        for stage, st, rs, p in DROPS:
            if rng.random() < p:
                end, status, reason = stage, st, rs
                break
        last = STAGES.index(end)

        def base(
            stage: str, sid: str = sid, end: str = end, status: str = status, reason: str = reason
        ) -> dict:
            st, rs = (status, reason) if stage == end else ("ok", "")
            return {"id": sid, "key": f"{stage}:{sid}", "status": st, "reason": rs}

        tables["sources"].append(
            base("sources")
            | {
                "index": i, "media_path": media, "data_type": "video", "problem": problem, "solution": solution,
                "problem_type": ptype, "data_source": source, "options": options,
                "meta": json.dumps({"fps": 30, "duration": 12.0}), "raw": "{}",
            }
        )  # fmt: skip
        if last >= 1:
            row = base("extract")
            if row["status"] == "ok":
                paths = []
                for k in range(FRAMES):
                    rel = f"frames/{sid}/{k:03d}.jpg"
                    if unique:
                        make_frame(run_dir / rel, backgrounds[(i + k) % pool], i * FRAMES + k)
                    else:
                        link_or_copy(pool_paths[(i * 7 + k) % pool], run_dir / rel)
                    paths.append(rel)
                row |= {
                    "duration": 12.0, "fps": 30.0, "frame_count": 360, "width": 1280, "height": 720,
                    "codec": "h264", "reader": "decord", "frame_paths": paths,
                    "timestamps": [round(12.0 * k / FRAMES, 2) for k in range(FRAMES)],
                }  # fmt: skip
            tables["extract"].append(row)
        if last >= 2:
            row = base("caption") | llm(rng, "Qwen/Qwen2.5-VL-72B-Instruct", 5200, 1400)
            if row["status"] == "ok":
                cap = {
                    "video_caption": paragraph(rng, 60),
                    "frames": [
                        {
                            "timestamp": round(12.0 * k / FRAMES, 2),
                            "caption": sentence(rng, rng.randint(14, 26)),
                            "key_elements": {
                                "objects": [rng.choice(WORDS) for _ in range(3)],
                                "actions": [sentence(rng, 3)],
                                "text": "",
                                "positions": {"ball": [rng.random(), rng.random()]},
                            },
                        }
                        for k in range(FRAMES)
                    ],
                }
                row |= {"caption_json": json.dumps(cap), "video_caption": cap["video_caption"]}
            tables["caption"].append(row)
        draft = paragraph(rng, rng.randint(180, 320))
        if last >= 3:
            tables["draft"].append(
                base("draft")
                | llm(rng, "deepseek-ai/DeepSeek-R1", 1800, 900, 2400)
                | {"draft": draft, "draft_reasoning": paragraph(rng, 1000), "draft_answer": solution}
            )
        if last >= 4:
            process = revise_text(rng, draft)
            tables["revise"].append(
                base("revise")
                | llm(rng, "Qwen/Qwen2.5-VL-72B-Instruct", 6100, 700)
                | {
                    "process": process,
                    "answer": solution,
                    "revision": process + f"\n<answer>{solution}</answer>",
                }
            )
        if last >= 5:
            kept = status == "ok"
            tables["filter"].append(
                base("filter")
                | {
                    "scores": json.dumps({"accuracy": {"score": 1.0 if kept else 0.0},
                                          "leak": {"phrases": 0}, "length": {"words": len(draft.split())}}),
                    "verdicts": json.dumps({"accuracy": {"kept": kept, "reason": reason},
                                            "leak": {"kept": True, "reason": ""}}),
                }
            )  # fmt: skip
    for stage, rows in tables.items():
        stats = StageStats(stage=stage, shards=0, computed=len(rows), seconds=round(rng.uniform(5, 300), 1))
        for shard in range(0, max(1, len(rows)), SHARD):
            store.write_shard(stage, shard // SHARD, rows[shard : shard + SHARD])
            stats.shards += 1
        for r in rows:
            stats.count_row(r["status"], r["reason"])
        if stage in ("caption", "draft", "revise"):
            stats.llm = {
                "llm_requests": sum(r["requests"] for r in rows),
                "llm_cache_hits": sum(r["cache_hits"] for r in rows),
                **{
                    k: sum(r[k] for r in rows)
                    for k in ("prompt_tokens", "completion_tokens", "reasoning_tokens")
                },
            }
        store.manifest.set_stage(stats)
    kept = sum(1 for r in tables["filter"] if r["status"] == "ok")
    store.manifest.update(
        config_hash="bench",
        publish={
            "cot_dir": "publish/cot",
            "rl_dir": "publish/rl",
            "cot_rows": kept,
            "rl_rows": n,
            "version": "v1",
        },
    )
    return store


def median_wall(url: str, png: Path, repeats: int) -> float:
    walls = []
    for _ in range(repeats):
        png.unlink(missing_ok=True)
        proc, wall = run_chromium(url, f"--screenshot={png}", "--window-size=1400,1000", timeout=120)
        if proc.returncode != 0 or not png.exists():
            raise RuntimeError(proc.stderr[-2000:])
        walls.append(wall)
    return statistics.median(walls)


def median_in_page(url: str, repeats: int) -> dict[str, float]:
    """Median of the page's own timings (seconds since navigation start)."""
    marks: dict[str, list[float]] = {"html": [], "json": [], "ready": []}
    for _ in range(repeats):
        proc, _ = run_chromium(url, "--dump-dom", timeout=120)
        for name in marks:
            m = re.search(rf'data-{name}-ms="([\d.]+)"', proc.stdout)
            if m:
                marks[name].append(float(m.group(1)) / 1000)
    return {k: statistics.median(v) for k, v in marks.items() if v}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--unique", action="store_true", help="every sample gets its own frames (worst case)")
    ap.add_argument("--pool", type=int, default=48, help="distinct frames reused across samples")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one Chromium launch per measurement (`make bench`)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "report")
    args = ap.parse_args()
    if args.quick:
        args.repeats = 1

    run_dir = args.out / ("run-unique" if args.unique else "run")
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.perf_counter()
    build_run(run_dir, args.n, args.unique, args.pool)
    t_build = time.perf_counter() - t0

    t0 = time.perf_counter()
    report = write_report(run_dir)
    t_report = time.perf_counter() - t0
    html = report.read_text()
    size_mb = len(html.encode()) / 1e6
    blob = json.loads(re.search(r'id="report-data">(.*?)</script>', html, re.S).group(1))
    thumbs_mb = sum(len(u) for u in blob["thumbs"]) / 1e6
    samples_mb = len(json.dumps(blob["samples"], ensure_ascii=False, separators=(",", ":"))) / 1e6

    print(
        f"run: {args.n} samples, {FRAMES} frames each, {'unique frames' if args.unique else f'{args.pool} reused frames'}"
    )
    print(f"  store built in {t_build:.1f} s: {run_dir}")
    print(f"report: {report}")
    print(f"  generate           {t_report:6.2f} s")
    print(
        f"  size               {size_mb:6.2f} MB   (goal < {GOAL_MB:.0f} MB: {'PASS' if size_mb < GOAL_MB else 'FAIL'})"
    )
    print(f"    thumbnails       {thumbs_mb:6.2f} MB   ({len(blob['thumbs'])} unique)")
    print(f"    sample data      {samples_mb:6.2f} MB")

    if find_chromium() is None:
        print("open time: skipped (chromium not installed)")
        return 0 if size_mb < GOAL_MB else 1
    blank = args.out / "blank.html"
    blank.write_text("<!doctype html><title>blank</title><body></body>")
    png = args.out / "open.png"
    wall_blank = median_wall(file_url(blank), png, args.repeats)
    wall_report = median_wall(file_url(report), png, args.repeats)
    page = median_in_page(file_url(report), args.repeats)
    detail = median_in_page(file_url(report, f"sample={blob['samples'][0]['id']}"), args.repeats)
    open_s = wall_report - wall_blank
    print(f"open in headless Chromium (median of {args.repeats}):")
    print(f"  blank page         {wall_blank:6.2f} s   (Chromium start-up to screenshot, subtracted)")
    print(
        f"  report             {wall_report:6.2f} s   -> {open_s:.2f} s over blank "
        f"(goal < {GOAL_OPEN_S:.0f} s: {'PASS' if open_s < GOAL_OPEN_S else 'FAIL'})"
    )
    if page:
        print(
            f"  in-page            {page.get('ready', 0):6.2f} s   to a usable table (HTML parsed at "
            f"{page.get('html', 0):.2f} s, data at {page.get('json', 0):.2f} s)"
        )
    if detail.get("ready") is not None:
        print(
            f"  in-page, detail    {detail['ready']:6.2f} s   (opened on #sample=<id>: table + detail view)"
        )
    ok = size_mb < GOAL_MB and open_s < GOAL_OPEN_S
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
