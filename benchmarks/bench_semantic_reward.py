"""Semantic reward: frame embeddings cached once per video vs computed for every completion.

GRPO scores G completions per prompt, all about the same video. The reference implementation ran the
SigLIP image tower on every frame for every completion (G passes per frame); `training/semantic.py`
runs it once per frame per video and caches the result in memory and on disk. This script times, for
V videos x G completions with F frames each (JPEG frame files, as the extract stage writes them):

  reference-style  the released code's loop: per frame, one SiglipModel forward on (frame, text) pairs
                   for the G completions (image tower G times per frame, text tower F times per text)
  per-completion   a cacheless scorer called once per completion (image tower G times per frame)
  cached, cold     one call per group, empty caches (image tower once per frame)
  cached, memory   the same groups again (next epoch): memory hits, no image tower
  cached, disk     a fresh scorer on the same cache dir (another rank / restart): disk hits

Against per-completion, the image-tower work drops exactly G-fold, but the wall-clock speed-up of a
*cold* cache is G * (I + T_1 + R) / (I + T_G + G * R) (I: one video's frames decoded and through the
image tower, T_n: n texts through the text tower, R: per-row work such as tokenising and the accuracy
gate), which stays below G wherever G texts cost more than one (on CPU; on a GPU a batch of 8 short
texts costs about what one does). The script measures T_G - T_1 and prints that ceiling,
G * c1 / (c1 + T_G - T_1) with c1 the per-completion cost, next to the cold figure. Warm caches (every
epoch after the first, every other rank) skip decoding and the image tower entirely.

    .venv/bin/python benchmarks/bench_semantic_reward.py [--videos 4] [--generations 8] [--frames 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.semantic import SemanticScorer, make_semantic_reward  # noqa: E402
from training.tiny_siglip import build_tiny_siglip  # noqa: E402


def write_frames(root: Path, videos: int, frames: int, seed: int = 0) -> list[list[str]]:
    """JPEG frames at Qwen's training budget (~448x252 = 128*28*28 px), paths relative to `root`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for v in range(videos):
        paths = []
        for f in range(frames):
            rel = f"video{v}/frame{f:02d}.jpg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (252, 448, 3), dtype=np.uint8)).save(root / rel, quality=90)
            paths.append(rel)
        out.append(paths)
    return out


def group_batches(frame_paths: list[list[str]], generations: int) -> list[dict]:
    """One reward call per video, with its G completions (what TRL passes per prompt group)."""
    batches = []
    for v, paths in enumerate(frame_paths):
        completions = [
            f"<think>The question asks about video {v}. The red ball moves left, then stops near the wall "
            f"after {g + 2} seconds while the camera stays still.</think><answer>B</answer>"
            for g in range(generations)
        ]
        batches.append(
            {
                "completions": completions,
                "solution": ["B"] * generations,
                "problem_type": ["multiple choice"] * generations,
                "frame_paths": [paths] * generations,
            }
        )
    return batches


def time_calls(fn, batches: list[dict], per_completion: bool) -> float:
    start = time.perf_counter()
    for batch in batches:
        if per_completion:
            for i in range(len(batch["completions"])):
                fn(**{key: [values[i]] for key, values in batch.items()})
        else:
            fn(**batch)
    return time.perf_counter() - start


def reference_style(scorer: SemanticScorer, batches: list[dict], media_root: Path) -> float:
    """The released code's computation: for every frame, SiglipModel(text=G texts, images=G copies)."""
    import torch
    from PIL import Image

    from training.semantic import reasoning_span

    start = time.perf_counter()
    for batch in batches:
        texts = [reasoning_span(c) for c in batch["completions"]]
        ids = scorer.tokenizer(
            texts, padding="max_length", truncation=True, max_length=scorer.max_text_len, return_tensors="pt"
        )["input_ids"]
        frames = [np.asarray(Image.open(media_root / p).convert("RGB")) for p in batch["frame_paths"][0]]
        for frame in frames:
            pixels = scorer.image_processor(images=[frame] * len(texts), return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                out = scorer.model(input_ids=ids, pixel_values=pixels)
            (out.image_embeds * out.text_embeds).sum(-1)  # the per-pair cosine the reference used
    return time.perf_counter() - start


def text_tower_extra(scorer: SemanticScorer, batches: list[dict], repeats: int = 21) -> float:
    """Seconds per group that G texts cost over one in the text tower (median): work no cache can
    share, since every completion's reasoning is its own text."""
    from training.semantic import reasoning_span

    texts = [reasoning_span(c) for c in batches[0]["completions"]]
    one, all_g = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        scorer.encode_texts(texts[:1])
        one.append(time.perf_counter() - start)
        start = time.perf_counter()
        scorer.encode_texts(texts)
        all_g.append(time.perf_counter() - start)
    return max(0.0, statistics.median(all_g) - statistics.median(one))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    import torch

    # One thread by default: on a shared 2-core machine, OpenMP barriers with 2 threads turn a 1 ms
    # tiny-model forward into 100+ ms whenever another process holds a core, which swamps the figures.
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench-semantic-") as tmp:
        tmp_path = Path(tmp)
        model = build_tiny_siglip(tmp_path / "tiny-siglip")
        frame_paths = write_frames(tmp_path / "media", args.videos, args.frames)
        batches = group_batches(frame_paths, args.generations)

        baseline = SemanticScorer(model, cache_dir=None, memory_cache_size=0, media_root=tmp_path / "media")
        baseline_fn = make_semantic_reward(baseline)
        time_calls(baseline_fn, batches[:1], per_completion=True)  # warm-up (allocations, lazy imports)

        figures: dict[str, list[float]] = {
            "reference": [],
            "per_completion": [],
            "cold": [],
            "memory": [],
            "disk": [],
        }
        for r in range(args.repeats):
            figures["reference"].append(reference_style(baseline, batches, tmp_path / "media"))
            before = baseline.stats["frames_encoded"]
            figures["per_completion"].append(time_calls(baseline_fn, batches, per_completion=True))
            baseline_frames = baseline.stats["frames_encoded"] - before
            cache_dir = tmp_path / f"cache-{r}"
            cached = SemanticScorer(model, cache_dir=cache_dir, media_root=tmp_path / "media")
            cached_fn = make_semantic_reward(cached)
            figures["cold"].append(time_calls(cached_fn, batches, per_completion=False))
            figures["memory"].append(time_calls(cached_fn, batches, per_completion=False))
            fresh = SemanticScorer(model, cache_dir=cache_dir, media_root=tmp_path / "media")
            figures["disk"].append(time_calls(make_semantic_reward(fresh), batches, per_completion=False))
            assert baseline_frames == args.videos * args.generations * args.frames
            assert cached.stats["frames_encoded"] == args.videos * args.frames
            assert fresh.stats["frames_encoded"] == 0

        extra_text_s = text_tower_extra(baseline, batches)

    median = {k: statistics.median(v) for k, v in figures.items()}
    n = args.videos * args.generations
    # The cold ceiling: one completion alone costs c1 (decode + image tower + its text); a group of G
    # can at best share everything but the G - 1 extra texts, so G * c1 / (c1 + extra) is the most any
    # cache can give cold. It tends to G where G short texts cost what one does (a GPU).
    c1 = median["per_completion"] / n
    ceiling = args.generations * c1 / (c1 + extra_text_s)
    print(
        f"semantic reward, tiny SigLIP (~54k params), {args.videos} videos x G={args.generations} completions x "
        f"{args.frames} JPEG frames (448x252); median of {args.repeats}; {args.threads} torch thread(s); "
        f"{platform.machine()}, {os.cpu_count()} cores"
    )
    print(f"{'mode':<26}{'seconds':>10}{'ms/completion':>15}{'speed-up':>10}")
    labels = {
        "reference": "reference-style",
        "per_completion": "per-completion (baseline)",
        "cold": "cached, cold",
        "memory": "cached, memory hit",
        "disk": "cached, disk hit",
    }
    for key, label in labels.items():
        speedup = median["per_completion"] / median[key]
        print(f"{label:<26}{median[key]:>10.3f}{1000 * median[key] / n:>15.2f}{speedup:>9.1f}x")
    images = {"per_completion": n * args.frames, "cold": args.videos * args.frames, "memory": 0, "disk": 0}
    print(
        "image-tower frames: "
        + ", ".join(f"{labels[k]} {v}" for k, v in images.items())
        + f" (reference-style {n * args.frames})"
    )
    for key in ("cold", "memory", "disk"):
        speedup = median["per_completion"] / median[key]
        verdict = "meets" if speedup >= args.generations else "below"
        # Cold, say next to the verdict how far the best possible cache would get (see below).
        bound = (
            f"; no cache beats {ceiling:.2f}x cold here: {100 * speedup / ceiling:.0f}% of that"
            if key == "cold"
            else ""
        )
        print(
            f"{labels[key]}: {speedup:.1f}x vs per-completion, {verdict} the G = {args.generations}x goal{bound}"
        )
    print(
        f"cold ceiling G*c1/(c1 + T_G - T_1): c1 = {1000 * c1:.2f} ms per completion, "
        f"T_G - T_1 = {1000 * extra_text_s:.2f} ms -> {ceiling:.2f}x"
    )
    if args.json:
        record = {
            "args": vars(args) | {"json": str(args.json)},
            "median_s": median,
            "image_tower_frames": images,
            "text_tower_extra_s": extra_text_s,
            "cold_ceiling": ceiling,
        }
        args.json.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
