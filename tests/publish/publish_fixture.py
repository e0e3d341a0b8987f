"""A hand-built run store: sources (two shards), extract, caption, draft, revise and filter tables.

Samples (ids are the real `sample_id`s):
- mc_ok       multiple choice, CoT passes every filter          -> CoT + RL
- num_ok      numerical, image, CoT passes                      -> CoT + RL
- mc_wrong    multiple choice, wrong answer                     -> RL only (answer_correctness)
- leak        free-form, CoT mentions captions                   -> RL only (leakage)
- ocr_fail    OCR, revise failed                                 -> RL only
- dup         near-duplicate question (sources rejected)         -> neither
- bad row     unreadable source row (sources rejected)           -> neither
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curation.filters import run_filters
from curation.filters.config import FilterConfig
from curation.records import Sample, sample_id
from curation.store import RunStore

GOOD_COT = (
    "<think>The video begins with a kitchen counter where a woman places a red bowl. Around the middle "
    "she pours flour into the bowl and then cracks two eggs. Toward the end she stirs the mixture. "
    "Comparing the options, only pouring flour follows taking the flour out. So the answer is B.</think>"
)
NUM_COT = (
    "<think>The image shows three apples on the left of the table and two apples on the right. "
    "Counting them together gives three plus two, which is five apples in total on the table.</think>"
)
LEAK_COT = (
    "<think>Based on the captions, the man walks to the door and opens it slowly, then he steps "
    "outside into the garden where a dog is waiting for him near the fence.</think>"
)
# Filter config used to build the filter table (no model needed: open-ended agreement left out).
FILTER_CFG = FilterConfig(order=["format", "answer_correctness", "leakage", "repetition", "length"])


def _sample(
    source: str,
    media: str,
    problem: str,
    solution: str,
    ptype: str,
    dtype: str = "video",
    options: list[str] | None = None,
) -> Sample:
    return Sample(
        id=sample_id(source, media, problem),
        media_path=media,
        data_type=dtype,
        problem=problem,
        solution=solution,
        problem_type=ptype,
        data_source=source,
        options=options or [],
        meta={"task": "test"},
    )


def build_samples() -> dict[str, Sample]:
    opts = ["A. She cracks eggs", "B. She pours flour", "C. She washes hands", "D. She turns on the oven"]
    return {
        "mc_ok": _sample(
            "synthetic/kitchen",
            "videos/k1.mp4",
            "What does she do after taking the flour?",
            "B",
            "multiple choice",
            options=opts,
        ),
        "num_ok": _sample(
            "synthetic/count",
            "images/apples.jpg",
            "How many apples are there?",
            "5",
            "numerical",
            dtype="image",
        ),
        "mc_wrong": _sample(
            "synthetic/kitchen",
            "videos/k2.mp4",
            "What color is the bowl?",
            "A",
            "multiple choice",
            options=["A. Red", "B. Blue"],
        ),
        "leak": _sample(
            "synthetic/garden", "videos/g1.mp4", "What does the man do?", "He opens the door", "free-form"
        ),
        "ocr_fail": _sample("synthetic/sign", "videos/s1.mp4", "What does the sign say?", "OPEN NOW", "OCR"),
        "dup": _sample(
            "synthetic/kitchen",
            "videos/k1.mp4",
            "What does she do after taking the flour ?!",
            "B",
            "multiple choice",
            options=opts,
        ),
    }


def build_run(run_dir: Path, run_name: str = "unit-run") -> tuple[RunStore, dict[str, Sample]]:
    store = RunStore(run_dir)
    s = build_samples()

    def src(name: str, index: int, status: str = "ok", reason: str = "") -> dict[str, Any]:
        row = s[name].to_row()
        row.update(key=f"k-{name}", index=index, status=status, reason=reason, raw="{}")
        return row

    shard0 = [src("mc_ok", 0), src("num_ok", 1), src("mc_wrong", 2)]
    shard1 = [
        src("leak", 3),
        src("ocr_fail", 4),
        src("dup", 5, "rejected", f"dedup: near-duplicate question of {s['mc_ok'].id} on the same video"),
        {
            "id": "badrow0001",
            "key": "k-bad",
            "index": 6,
            "status": "rejected",
            "reason": "missing field: problem",
            "raw": '{"media_path": "x.mp4"}',
        },
    ]
    store.write_shard("sources", 0, shard0)
    store.write_shard("sources", 1, shard1)

    valid = ["mc_ok", "num_ok", "mc_wrong", "leak", "ocr_fail"]
    shard_of = {"mc_ok": 0, "num_ok": 0, "mc_wrong": 0, "leak": 1, "ocr_fail": 1}

    def per_shard(stage: str, make) -> None:
        for shard in (0, 1):
            rows = [make(n) for n in valid if shard_of[n] == shard]
            store.write_shard(stage, shard, [r for r in rows if r is not None])

    per_shard(
        "extract",
        lambda n: {
            "id": s[n].id,
            "key": f"e-{n}",
            "status": "ok",
            "reason": "",
            "frame_paths": [f"frames/{s[n].id}/000.jpg"],
            "timestamps": [0.0],
        },
    )
    per_shard(
        "caption",
        lambda n: {
            "id": s[n].id,
            "key": f"c-{n}",
            "status": "ok",
            "reason": "",
            "caption": json.dumps({"video_caption": "x"}),
            "model": "sim/captioner",
            "prompt_hash": "cap0001",
        },
    )
    per_shard(
        "draft",
        lambda n: {
            "id": s[n].id,
            "key": f"d-{n}",
            "status": "ok",
            "reason": "",
            "draft": "<think>draft</think><answer>x</answer>",
            "model": "sim/reasoner",
            "prompt_hash": "dra0001",
        },
    )
    revise = {
        "mc_ok": (GOOD_COT, "B"),
        "num_ok": (NUM_COT, "5"),
        "mc_wrong": (GOOD_COT, "B"),
        "leak": (LEAK_COT, "He opens the door"),
    }

    def rev(n: str) -> dict[str, Any]:
        if n == "ocr_fail":
            return {
                "id": s[n].id,
                "key": f"r-{n}",
                "status": "failed",
                "reason": "endpoint error: 500",
                "process": None,
                "answer": None,
                "draft": None,
                "model": "sim/reviser",
                "prompt_hash": "rev0001",
            }
        process, answer = revise[n]
        return {
            "id": s[n].id,
            "key": f"r-{n}",
            "status": "ok",
            "reason": "",
            "process": process,
            "answer": answer,
            "draft": "d",
            "model": "sim/reviser",
            "prompt_hash": "rev0001",
        }

    per_shard("revise", rev)

    def joined(n: str) -> dict[str, Any]:
        row = s[n].to_row()
        row["meta"] = s[n].meta
        process, answer = revise[n]
        row.update(process=process, answer=answer, draft="d")
        return row

    for shard in (0, 1):
        names = [n for n in revise if shard_of[n] == shard]
        out = run_filters([joined(n) for n in names], FILTER_CFG)
        for n, r in zip(names, out, strict=True):
            r["key"] = f"f-{n}"
            r["id"] = s[n].id
        store.write_shard("filter", shard, out)
    return store, s
