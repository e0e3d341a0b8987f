"""Train-step cost: SFT and GRPO step time, tokens/s and peak memory, through the real entry points.

GPU (default): a Qwen2.5-VL-3B-*shaped* model — the real 3B dimensions (text: 36 layers, hidden 2048,
MLP 11008, 16 heads / 2 KV heads, vocab 151936; vision: 32 blocks, hidden 1280, MLP 3420, window
attention, out 2048) — with random weights in bf16, built locally (no hub), saved once to the work
dir so GRPO can load its reference model the way it does in production. The tokenizer is the tiny
offline one (text ids are tiny, the embedding/LM head keep the real 151936 rows, so the cost is the
3B's). Workload: VideoRFT's video setting (16 frames, min = max = 128·28·28 px per frame ≈ 1.1k
visual tokens per video), SFT on CoT targets of `--cot-tokens`, GRPO with G completions of
`--completion-len` tokens, beta 0.04 (reference forward included), gradient checkpointing.

CPU: refuses (a 3B step on 2 cores would take tens of minutes and say nothing), unless `--tiny`,
which runs the tiny random Qwen2.5-VL through the same code path (a plumbing timing, not a figure
for the report).

    .venv/bin/python benchmarks/bench_train_step.py --tiny                # any machine
    python benchmarks/bench_train_step.py                                 # CUDA: 3B-shaped, both stages
    python benchmarks/bench_train_step.py --stage grpo --completion-len 1024 --generations 8

Measured per optimizer step (after `--warmup` steps): wall time (CUDA-synchronised), tokens/s
(prompt + completion tokens, visual tokens included, from the trainers' own `num_tokens` counters),
peak CUDA memory (`max_memory_allocated`) or, on CPU, the process's peak RSS. Results go to stdout and
`benchmarks/out/bench_train_step.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
SKIPPED = 77  # exit code for "no GPU here": benchmarks/run_all.py reports it as skipped, not failed

# Qwen/Qwen2.5-VL-3B-Instruct config.json dimensions.
QWEN25VL_3B_TEXT = {
    "hidden_size": 2048,
    "intermediate_size": 11008,
    "num_hidden_layers": 36,
    "num_attention_heads": 16,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128000,
    "rms_norm_eps": 1e-6,
    "vocab_size": 151936,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    "tie_word_embeddings": True,
}
QWEN25VL_3B_VISION = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "out_hidden_size": 2048,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [7, 15, 23, 31],
    "tokens_per_second": 2,
    "hidden_act": "silu",
}
VIDEO_PIXELS = 128 * 28 * 28


# ---- model folders ------------------------------------------------------------------------------


def build_random_3b(out_dir: Path, seed: int = 0) -> Path:
    """A 3B-shaped random Qwen2.5-VL in bf16 + the tiny tokenizer/processor files; reused when present."""
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from training.tiny_qwen import build_tiny_qwen25vl

    marker = out_dir / "bench_3b.json"
    if marker.exists():
        return out_dir
    tiny = build_tiny_qwen25vl(out_dir.parent / "tiny-for-tokenizer")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "preprocessor_config.json",
        "video_preprocessor_config.json",
    ):
        (out_dir / name).write_bytes((tiny / name).read_bytes())
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    ids = {
        t: tok.convert_tokens_to_ids(t)
        for t in (
            "<|image_pad|>",
            "<|video_pad|>",
            "<|vision_start|>",
            "<|vision_end|>",
            "<|endoftext|>",
            "<|im_end|>",
        )
    }
    text = dict(
        QWEN25VL_3B_TEXT,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=dict(QWEN25VL_3B_VISION),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.generation_config = GenerationConfig(
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]], pad_token_id=ids["<|endoftext|>"]
    )
    model.save_pretrained(out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    marker.write_text(
        json.dumps({"params": n_params, "text": QWEN25VL_3B_TEXT, "vision": QWEN25VL_3B_VISION})
    )
    del model
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return out_dir


# ---- workload -----------------------------------------------------------------------------------


def make_workload(
    root: Path, *, videos: int, rows: int, cot_tokens: int, width: int, height: int
) -> tuple[Path, Path]:
    """`videos` real mp4 files (10 s, 30 fps, moving square) and a published-schema DatasetDict."""
    import cv2
    import datasets
    import numpy as np

    media = root / "media"
    (media / "videos").mkdir(parents=True, exist_ok=True)
    for v in range(videos):
        path = media / "videos" / f"v{v}.mp4"
        if path.exists():
            continue
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (width, height))
        rng = np.random.default_rng(v)
        bg = rng.integers(0, 200, 3)
        for i in range(300):
            frame = np.empty((height, width, 3), np.uint8)
            frame[:] = bg
            x = int((width - 64) * i / 299)
            frame[height // 2 - 32 : height // 2 + 32, x : x + 64] = (255, 255, 255)
            writer.write(frame)
        writer.release()
    words = "let me think the red ball moves left then right wait so the answer is".split()
    cot = " ".join(words[i % len(words)] for i in range(cot_tokens))  # ~1 token per word with the tiny BPE
    data = [
        {
            "id": f"bench{i}",
            "media_path": f"videos/v{i % videos}.mp4",
            "data_type": "video",
            "problem": "Which direction does the square move?",
            "options": ["A. left", "B. right", "C. up", "D. down"],
            "problem_type": "multiple choice",
            "process": f"<think>{cot}</think>",
            "solution": "<answer>B</answer>",
            "data_source": "bench/synthetic",
        }
        for i in range(rows)
    ]
    dataset = root / "dataset"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(data)}).save_to_disk(str(dataset))
    return dataset, media


# ---- measurement --------------------------------------------------------------------------------


def _timer_callback(results: dict[str, Any]):
    from transformers import TrainerCallback

    def sync():
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    class StepTimer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            import torch

            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            results["step_s"] = []

        def on_step_begin(self, args, state, control, **kwargs):
            sync()
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            sync()
            results["step_s"].append(time.perf_counter() - self._t0)

        def on_train_end(self, args, state, control, **kwargs):
            import torch

            if torch.cuda.is_available():
                results["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
                results["peak_mem_kind"] = "cuda max_memory_allocated"
            else:
                results["peak_mem_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
                results["peak_mem_kind"] = "process peak RSS"

    return StepTimer()


def summarise(stage: str, timing: dict[str, Any], log_history: list[dict], warmup: int) -> dict[str, Any]:
    steps = timing["step_s"][warmup:] or timing["step_s"]
    tokens = [h["num_tokens"] for h in log_history if "num_tokens" in h]
    tokens = [float(t) for t in tokens]
    per_step = [b - a for a, b in zip([0.0, *tokens[:-1]], tokens, strict=True)][warmup:] or [0.0]
    step_s = statistics.median(steps)
    return {
        "stage": stage,
        "steps_measured": len(steps),
        "step_s_median": step_s,
        "step_s_all": [round(s, 4) for s in timing["step_s"]],
        "tokens_per_step": statistics.median(per_step),
        "tokens_per_s": statistics.median(per_step) / step_s if step_s else 0.0,
        "peak_mem_gib": timing.get("peak_mem_gib"),
        "peak_mem_kind": timing.get("peak_mem_kind"),
    }


def bench_sft(
    model_dir: Path, dataset: Path, media: Path, work: Path, a: argparse.Namespace
) -> dict[str, Any]:
    from training.sft import run_sft

    timing: dict[str, Any] = {}
    result = run_sft(
        REPO / "recipes" / ("tiny" if a.tiny else "qwen2_5_vl_3b") / "sft.yaml",
        callbacks=[_timer_callback(timing)],
        model_name_or_path=str(model_dir),
        dataset_name=str(dataset),
        media_root=str(media),
        output_dir=str(work / "sft-out"),
        max_steps=a.warmup + a.steps,
        per_device_train_batch_size=a.sft_batch,
        gradient_accumulation_steps=1,
        save_strategy="no",
        report_to="none",
        logging_steps=1,
        **_common(a),
    )
    return summarise("sft", timing, result["log_history"], a.warmup)


def bench_grpo(
    model_dir: Path, dataset: Path, media: Path, work: Path, a: argparse.Namespace
) -> dict[str, Any]:
    from training.grpo import run_grpo

    timing: dict[str, Any] = {}
    result = run_grpo(
        REPO / "recipes" / ("tiny" if a.tiny else "qwen2_5_vl_3b") / "grpo.yaml",
        callbacks=[_timer_callback(timing)],
        model_name_or_path=str(model_dir),
        dataset_name=str(dataset),
        media_root=str(media),
        output_dir=str(work / "grpo-out"),
        max_steps=a.warmup + a.steps,
        num_generations=a.generations,
        per_device_train_batch_size=a.generations,
        gradient_accumulation_steps=1,
        max_completion_length=a.completion_len,
        beta=0.04,
        reward_funcs=["format", "accuracy", "length"],
        reward_weights=[1.0, 1.0, 1.0],
        save_strategy="no",
        report_to="none",
        logging_steps=1,
        log_completions=False,
        **_common(a),
    )
    summary = summarise("grpo", timing, result["log_history"], a.warmup)
    summary["completions_per_step"] = a.generations
    summary["completion_len"] = a.completion_len
    return summary


def _common(a: argparse.Namespace) -> dict[str, Any]:
    common: dict[str, Any] = {
        "video_num_frames": a.frames,
        "video_max_pixels": a.max_pixels,
        "video_min_pixels": a.min_pixels,
        "gradient_checkpointing": not a.no_grad_ckpt and not a.tiny,
        "bf16": not a.tiny,
        "dtype": "float32" if a.tiny else "bfloat16",
        "attn_implementation": a.attn,
    }
    return common


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random model (runs on CPU)")
    parser.add_argument("--stage", choices=["sft", "grpo", "both"], default="both")
    parser.add_argument("--steps", type=int, default=None, help="measured steps (default 3; tiny 4)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--frames", type=int, default=None, help="frames per video (default 16; tiny 8)")
    parser.add_argument("--max-pixels", type=int, default=None, help="max px per frame (default 128*28*28)")
    parser.add_argument("--min-pixels", type=int, default=None, help="min px per frame (default = max)")
    parser.add_argument(
        "--cot-tokens", type=int, default=None, help="SFT target length (default 400; tiny 40)"
    )
    parser.add_argument("--sft-batch", type=int, default=1, help="SFT per-device batch (VideoRFT: 1)")
    parser.add_argument(
        "--generations", type=int, default=None, help="GRPO G = per-device completions (8; tiny 4)"
    )
    parser.add_argument("--completion-len", type=int, default=None, help="GRPO max completion (256; tiny 16)")
    parser.add_argument(
        "--attn",
        default=None,
        help="attn_implementation (default: flash_attention_2 if installed, else sdpa)",
    )
    parser.add_argument("--no-grad-ckpt", action="store_true")
    parser.add_argument(
        "--pixel-no-grad-passes",
        action="store_true",
        help="GRPO: encode the video G times in the reference/old log-prob passes (the old path), to "
        "measure what sharing one encoding per prompt saves",
    )
    parser.add_argument(
        "--workdir", default=None, help="keeps the 3B folder between runs (default: a temp dir)"
    )
    a = parser.parse_args(argv)

    import torch

    if not a.tiny and not torch.cuda.is_available():
        parser.exit(
            SKIPPED,
            "bench_train_step: no CUDA device. The 3B-shaped benchmark needs a GPU; "
            "run with --tiny for a CPU plumbing timing of the tiny model.\n",
        )
    if a.tiny:
        torch.set_num_threads(1)  # see tests/training/conftest.py: 2 contended cores
    if a.pixel_no_grad_passes:
        import training.video_grpo as video_grpo

        video_grpo._accepts_encoder_outputs = lambda vlm: False
    a.steps = a.steps or (4 if a.tiny else 3)
    a.frames = a.frames or (8 if a.tiny else 16)
    a.max_pixels = a.max_pixels or (56 * 56 if a.tiny else VIDEO_PIXELS)
    a.min_pixels = a.min_pixels or (28 * 28 if a.tiny else a.max_pixels)
    a.cot_tokens = a.cot_tokens or (40 if a.tiny else 400)
    a.generations = a.generations or (4 if a.tiny else 8)
    a.completion_len = a.completion_len or (16 if a.tiny else 256)
    if a.attn is None:
        import importlib.util

        a.attn = "flash_attention_2" if (not a.tiny and importlib.util.find_spec("flash_attn")) else "sdpa"

    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="bench-train-step-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if a.tiny:
        from training.tiny_qwen import build_tiny_qwen25vl

        model_dir = build_tiny_qwen25vl(work / "tiny-qwen")
        width, height = 128, 96
    else:
        model_dir = build_random_3b(work / "qwen2.5-vl-3b-random")
        width, height = 640, 360
    rows = max(16, a.sft_batch * (a.warmup + a.steps) * 2)
    dataset, media = make_workload(
        work, videos=4, rows=rows, cot_tokens=a.cot_tokens, width=width, height=height
    )

    results: list[dict[str, Any]] = []
    if a.stage in ("sft", "both"):
        results.append(bench_sft(model_dir, dataset, media, work, a))
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if a.stage in ("grpo", "both"):
        results.append(bench_grpo(model_dir, dataset, media, work, a))

    report = {
        "benchmark": "bench_train_step",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "cpu_count": os.cpu_count(),
        },
        "model": "tiny random Qwen2.5-VL" if a.tiny else "Qwen2.5-VL-3B-shaped, random weights, bf16",
        "settings": {k: v for k, v in vars(a).items() if k != "workdir"},
        "results": results,
        "wall_s": time.perf_counter() - started,
    }
    print(f"\n{report['model']} on {report['machine']['cuda_device'] or 'CPU'}")
    print(f"{'stage':6} {'step s (median)':>16} {'tokens/step':>12} {'tokens/s':>10} {'peak GiB':>9}")
    for r in results:
        print(
            f"{r['stage']:6} {r['step_s_median']:>16.3f} {r['tokens_per_step']:>12.0f} "
            f"{r['tokens_per_s']:>10.0f} {r['peak_mem_gib']:>9.2f}   ({r['peak_mem_kind']})"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_train_step.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
