"""A small hand-built run store: every stage table, real JPEG frames, a manifest and a published set.

The samples cover the paths a report must show: kept, rejected by the filter, failed at extract,
failed at caption, rejected at sources, stopped after revise (no filter row), and an image sample.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from curation.records import sample_id
from curation.store import RunStore, StageStats

COLOURS = [(220, 60, 60), (60, 140, 220), (60, 180, 90), (240, 190, 40)]

DRAFT = (
    "First, I need to visualize the video based on the provided descriptions. At 00:00:15 the red ball "
    "rolls to the left of the blue cube, then it stops. Counting the objects, there are three shapes. "
    "So the answer is {ans}."
)
REVISION = (
    "<think>The video shows a red ball that rolls to the right of the blue cube, then it stops near the "
    "edge. Counting the objects, there are three shapes. So the answer is {ans}.</think>"
)


def make_frame(path: Path, k: int, n: int, colour: tuple[int, int, int]) -> None:
    """A 320x180 scene: a ball moving across a tinted background (real JPEG bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", (320, 180), (235 - 8 * k, 238, 245))
    d = ImageDraw.Draw(im)
    d.rectangle((200, 90, 250, 140), fill=(60, 90, 200))
    x = 20 + int(260 * k / max(1, n - 1))
    d.ellipse((x, 100, x + 36, 136), fill=colour)
    d.text((8, 8), f"t={k}", fill=(20, 20, 20))
    im.save(path, "JPEG", quality=85)


def _caption(n: int) -> dict[str, Any]:
    return {
        "video_caption": "A red ball rolls across a table past a blue cube and stops near the edge.",
        "frames": [
            {
                # As the caption prompt asks and models write them: "HH:MM:SS" text.
                "timestamp": f"00:00:{int(0.5 * k):02d}",
                "caption": f"Frame {k}: the red ball is {'left of' if k < n // 2 else 'right of'} the cube.",
                "key_elements": {"objects": ["red ball", "blue cube"], "motion": "rolling right", "text": ""},
            }
            for k in range(n)
        ],
    }


def _llm(model: str, tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "prompt_hash": "p-" + model[:6],
        "requests": 1,
        "cache_hits": 0,
        "prompt_tokens": tokens,
        "completion_tokens": tokens // 3,
        "reasoning_tokens": tokens // 5 if "r1" in model else 0,
        "raw": "{}",
    }


# (problem, solution, problem_type, data_type, where it ends, status there, reason)
PLAN = [
    ("How many shapes are on the table?", "3", "numerical", "video", "filter", "ok", ""),
    (
        "Which direction does the ball roll?\nOptions:",
        "B",
        "multiple choice",
        "video",
        "filter",
        "rejected",
        "accuracy: answer mismatch",
    ),
    (
        "What colour is the cube?",
        "blue",
        "free-form",
        "video",
        "extract",
        "failed",
        "decode error: moov atom not found",
    ),
    (
        "Where does the ball stop?",
        "C",
        "multiple choice",
        "video",
        "caption",
        "failed",
        "invalid JSON after repair",
    ),
    ("What does the sign say?", "EXIT", "OCR", "video", "sources", "rejected", "unsafe media path"),
    ("How far does the ball roll (cm)?", "42", "regression", "video", "revise", "ok", ""),
    ("What is written on the board?", "HELLO", "OCR", "image", "filter", "ok", ""),
]
STAGE_ORDER = ["sources", "extract", "caption", "draft", "revise", "filter"]


def build_run(run_dir: Path) -> dict[str, Any]:
    """Write the run; returns {"store", "ids", "kept_id", "failed_id"} for assertions."""
    store = RunStore(run_dir)
    tables: dict[str, list[dict[str, Any]]] = {s: [] for s in STAGE_ORDER}
    ids = []
    for i, (problem, solution, ptype, dtype, end, status, reason) in enumerate(PLAN):
        source = "synthetic/motion" if i % 2 == 0 else "synthetic/counting"
        media = f"videos/clip_{i:03d}.mp4" if dtype == "video" else f"images/img_{i:03d}.jpg"
        sid = sample_id(source, media, problem)
        ids.append(sid)
        options = ["A. left", "B. right", "C. it does not move"] if ptype == "multiple choice" else []
        n_frames = 1 if dtype == "image" else 8
        last = STAGE_ORDER.index(end)

        def row(stage: str, sid: str = sid, end: str = end, status: str = status, reason: str = reason):
            st, rs = (status, reason) if stage == end else ("ok", "")
            return {"id": sid, "key": f"{stage}-{sid}", "status": st, "reason": rs}

        src = row("sources") | {
            "media_path": media,
            "data_type": dtype,
            "problem": problem,
            "solution": solution,
            "problem_type": ptype,
            "data_source": source,
            "options": options,
            "meta": json.dumps({"task": "motion", "fps": 4}),
            "index": i,
            "raw": "{}",
        }
        tables["sources"].append(src)
        if last >= 1:
            ext = row("extract")
            if ext["status"] == "ok":
                paths = []
                for k in range(n_frames):
                    rel = f"frames/{sid}/{k:03d}.jpg"
                    make_frame(run_dir / rel, k, n_frames, COLOURS[i % len(COLOURS)])
                    paths.append(rel)
                ext |= {
                    "duration": 4.0,
                    "fps": 2.0 if dtype == "video" else 0.0,
                    "frame_count": n_frames,
                    "width": 320,
                    "height": 180,
                    "codec": "h264" if dtype == "video" else "jpeg",
                    "reader": "decord",
                    "frame_paths": paths,
                    "timestamps": [round(0.5 * k, 2) for k in range(n_frames)],
                }
            tables["extract"].append(ext)
        if last >= 2:
            cap = row("caption") | _llm("qwen2.5-vl-sim", 900)
            if cap["status"] == "ok":
                c = _caption(n_frames)
                cap |= {"caption_json": json.dumps(c), "video_caption": c["video_caption"]}
            tables["caption"].append(cap)
        if last >= 3:
            tables["draft"].append(
                row("draft")
                | _llm("deepseek-r1-sim", 600)
                | {
                    "draft": DRAFT.format(ans=solution),
                    "draft_reasoning": "Let me think. " * 40,
                    "draft_answer": solution,
                }
            )
        if last >= 4:
            ans = "A" if status == "rejected" else solution
            tables["revise"].append(
                row("revise")
                | _llm("qwen2.5-vl-sim", 1500)
                | {
                    "process": REVISION.format(ans=ans),
                    "answer": ans,
                    "revision": REVISION.format(ans=ans) + f"<answer>{ans}</answer>",
                }
            )
        if last >= 5:
            kept = status == "ok"
            tables["filter"].append(
                row("filter")
                | {
                    "scores": json.dumps(
                        {
                            "accuracy": {"score": 1.0 if kept else 0.0},
                            "leak": {"phrases": 0},
                            "length": {"words": 30},
                        }
                    ),
                    "verdicts": json.dumps(
                        {
                            "accuracy": {"kept": kept, "reason": "" if kept else "answer mismatch"},
                            "leak": {"kept": True, "reason": ""},
                        }
                    ),
                }
            )
    for stage, rows in tables.items():
        store.write_shard(stage, 0, rows)
        stats = StageStats(stage=stage, seconds=1.5, shards=1, computed=len(rows))
        for r in rows:
            stats.count_row(r["status"], r["reason"])
        if stage in ("caption", "draft", "revise"):
            stats.llm = {
                "llm_requests": len(rows),
                "llm_cache_hits": 1,
                "prompt_tokens": 1000 * len(rows),
                "completion_tokens": 300 * len(rows),
            }
        store.manifest.set_stage(stats)
    cot = run_dir / "publish" / "cot"
    cot.mkdir(parents=True)
    kept_rows = [r for r in tables["filter"] if r["status"] == "ok"]
    by_id = {r["id"]: r for r in tables["sources"]}
    with (cot / "train.jsonl").open("w") as fh:
        for r in kept_rows:
            s = by_id[r["id"]]
            fh.write(
                json.dumps(
                    {
                        "problem_type": s["problem_type"],
                        "data_source": s["data_source"],
                        "process": REVISION.format(ans=s["solution"]),
                    }
                )
                + "\n"
            )
    store.manifest.update(
        config_hash="cfg-123abc",
        api_key_env="SIM_API_KEY",
        models={"caption": "qwen2.5-vl-sim"},
        publish={
            "cot_dir": "publish/cot",
            "rl_dir": "publish/rl",
            "cot_rows": len(kept_rows),
            "rl_rows": 6,
            "version": "v1",
            "exports": ["video-r1-json"],
            "cards": ["publish/cot/README.md"],
        },
    )
    return {"store": store, "ids": ids, "kept_id": ids[0], "failed_id": ids[2]}


@pytest.fixture
def small_run(tmp_path: Path) -> dict[str, Any]:
    return build_run(tmp_path / "run")
