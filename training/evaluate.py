"""Evaluate a model on a held-out split: generate, score with `training.scoring`, write tables.

    python -m training.evaluate --config recipes/qwen2_5_vl_7b/eval.yaml
    python -m training.evaluate --config recipes/tiny/eval.yaml --model_name_or_path runs/tiny/grpo

Same prompt as training (system prompt + media + problem + options + answer-format sentence), same
frame sampling (`curation.video`), same scorers as the accuracy reward. Differences from training are
the ones VideoRFT's `eval_bench.py` makes on purpose: near-greedy decoding, the whole output is the
prediction when the `<answer>` tag is missing, and regression is reported as Mean Relative Accuracy.

Outputs in `output_dir`: `metrics.json`, `metrics.md` (tables per problem type and per data source),
`predictions.jsonl` (one line per row: output, prediction, score, ...). Returns the metrics dict.

Generation: transformers `generate` (any machine). `use_vllm` runs vLLM in-process on GPU machines
where it is installed (import-guarded; vLLM pins its own transformers, see ENVIRONMENT.md, so it
usually lives in a separate environment).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curation.records import REGRESSION, normalize_problem_type
from training.configs import EvalArguments, parse_recipe, to_dict
from training.data import PromptConfig, bare_answer, build_messages, load_rows, media_parts, prompt_hashes
from training.media_checks import MediaSkips, decodable_rows, run_media_preflight
from training.rewards import FORMAT_RE
from training.scoring import extract_answer, mean_relative_accuracy, score_answer
from training.video_io import MediaLoader
from training.vllm_inputs import vllm_request

logger = logging.getLogger(__name__)


# ---- generators ---------------------------------------------------------------------------------


class HFGenerator:
    """Batched `model.generate` on conversations built exactly like training's."""

    def __init__(
        self, model: Any, processor: Any, loader: MediaLoader, prompts: PromptConfig, args: EvalArguments
    ):
        self.model = model
        self.processor = processor
        self.loader = loader
        self.prompts = prompts
        self.args = args
        self.processor.tokenizer.padding_side = "left"  # decoder-only batch generation

    def __call__(self, rows: Sequence[dict[str, Any]]) -> list[str]:
        import torch

        conversations, metadata = [], []
        for row in rows:
            parts, meta = media_parts(row, self.loader, frames_as_images=self.args.frames_as_images)
            conversations.append(build_messages(row, parts, prompts=self.prompts))
            if meta is not None:
                metadata.append(meta)
        processor_kwargs: dict[str, Any] = {"padding": True}
        if metadata:
            processor_kwargs["video_metadata"] = metadata
        inputs = self.processor.apply_chat_template(
            conversations,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs=processor_kwargs,
        )
        inputs = inputs.to(self.model.device)
        sampling = self.args.temperature > 0
        gen_kwargs: dict[str, Any] = {"max_new_tokens": self.args.max_new_tokens, "do_sample": sampling}
        if sampling:
            gen_kwargs.update(temperature=self.args.temperature, top_p=self.args.top_p)
        else:
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        with torch.no_grad():
            out = self.model.generate(**inputs, **gen_kwargs)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)


class VLLMGenerator:  # pragma: no cover - needs a GPU and vLLM (not in CI)
    """vLLM offline engine; same rendered prompt, frames passed as `multi_modal_data`."""

    def __init__(self, processor: Any, loader: MediaLoader, prompts: PromptConfig, args: EvalArguments):
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise ImportError(
                "use_vllm needs the `gpu` extra (vLLM) in this environment; or evaluate with transformers"
            ) from exc
        self.processor = processor
        self.loader = loader
        self.prompts = prompts
        self.args = args
        self.llm = LLM(
            model=args.model_name_or_path,
            tensor_parallel_size=args.vllm_tensor_parallel_size,
            gpu_memory_utilization=args.vllm_gpu_memory_utilization,
            max_model_len=args.vllm_max_model_len,
            limit_mm_per_prompt={"video": 1, "image": 1},
            seed=args.seed,
        )
        self.sampling = SamplingParams(
            max_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_p=args.top_p if args.temperature > 0 else 1.0,
        )

    def __call__(self, rows: Sequence[dict[str, Any]]) -> list[str]:
        requests = []
        for row in rows:
            parts, meta = media_parts(row, self.loader, frames_as_images=self.args.frames_as_images)
            text = self.processor.apply_chat_template(
                build_messages(row, parts, prompts=self.prompts), add_generation_prompt=True, tokenize=False
            )
            videos = [(p["video"], meta or {}) for p in parts if p["type"] == "video"]
            images = [p["image"] for p in parts if p["type"] == "image"]
            requests.append(vllm_request(text, videos, images))
        outputs = self.llm.generate(requests, self.sampling, use_tqdm=False)
        return [o.outputs[0].text for o in outputs]


# ---- scoring and tables -------------------------------------------------------------------------


def score_prediction(row: dict[str, Any], output: str) -> dict[str, Any]:
    """One prediction record: VideoRFT's eval rule (whole output when the tag is missing) + our scorers."""
    ptype = normalize_problem_type(row.get("problem_type")) or str(row.get("problem_type"))
    gt = bare_answer(row.get("solution", ""))
    prediction = extract_answer(output, whole_if_missing=True)
    record = {
        "id": row.get("id"),
        "data_source": row.get("data_source"),
        "problem_type": ptype,
        "media_path": row.get("media_path"),
        "problem": row.get("problem"),
        "solution": gt,
        "output": output,
        "prediction": prediction,
        "has_answer_tag": bool(extract_answer(output)),
        "format_ok": bool(FORMAT_RE.fullmatch(output.strip())),
        "score": score_answer(prediction, gt, ptype),
        "mra": mean_relative_accuracy(prediction, gt) if ptype == REGRESSION else None,
    }
    # The headline number: accuracy-like score, MRA for regression (VideoRFT's eval metric).
    record["metric"] = record["mra"] if ptype == REGRESSION else record["score"]
    return record


def _summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    n = len(records)
    if n == 0:
        return {"n": 0}
    mean = lambda key: sum(float(r[key]) for r in records) / n  # noqa: E731
    mras = [r["mra"] for r in records if r["mra"] is not None]
    non_reg = [r["score"] for r in records if r["problem_type"] != REGRESSION]
    return {
        "n": n,
        "metric": mean("metric"),
        "score": mean("score"),
        "mean_acc": sum(non_reg) / len(non_reg) if non_reg else None,
        "mean_mra": sum(mras) / len(mras) if mras else None,
        "format_rate": mean("format_ok"),
        "answer_tag_rate": mean("has_answer_tag"),
    }


def aggregate(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Overall, per problem type and per data source summaries."""
    by_type: dict[str, list] = defaultdict(list)
    by_source: dict[str, list] = defaultdict(list)
    for r in records:
        by_type[r["problem_type"]].append(r)
        by_source[str(r["data_source"])].append(r)
    return {
        "overall": _summary(records),
        "by_problem_type": {k: _summary(v) for k, v in sorted(by_type.items())},
        "by_data_source": {k: _summary(v) for k, v in sorted(by_source.items())},
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{100 * value:.1f}"
    return str(value)


def markdown_tables(metrics: dict[str, Any], title: str) -> str:
    columns = ["n", "metric", "score", "mean_acc", "mean_mra", "format_rate", "answer_tag_rate"]
    lines = [
        f"# {title}",
        "",
        "Percentages; `metric` is MRA for regression and the task score otherwise.",
        "",
    ]

    def table(name: str, groups: dict[str, dict[str, Any]]) -> None:
        lines.extend([f"## {name}", "", "| group | " + " | ".join(columns) + " |"])
        lines.append("|---|" + "---:|" * len(columns))
        for group, summary in groups.items():
            lines.append(f"| {group} | " + " | ".join(_fmt(summary.get(c)) for c in columns) + " |")
        lines.append("")

    table("Overall", {"all": metrics["overall"]})
    table("By problem type", metrics["by_problem_type"])
    table("By data source", metrics["by_data_source"])
    return "\n".join(lines)


# ---- entry --------------------------------------------------------------------------------------


def main(args: EvalArguments) -> dict[str, Any]:
    from training.tiny_qwen import load_model_and_processor

    logging.basicConfig(level=logging.INFO)
    started = time.perf_counter()
    if not args.model_name_or_path or not args.dataset_name:
        raise ValueError("model_name_or_path and dataset_name are required")

    # ---- Data ---------------------------------------------------------------------------------------
    rows = load_rows(args.dataset_name, args.eval_split)
    if args.max_eval_samples is not None:
        rows = rows.select(range(min(args.max_eval_samples, len(rows))))
    rows = rows.to_list()
    # Every media file opens before the model loads: a wrong media_root fails here, naming files.
    preflight = run_media_preflight(args, (args.eval_split, rows))

    # ---- Model, processor, media ----------------------------------------------------------------------
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, processor = load_model_and_processor(
        args.model_name_or_path,
        dtype=args.dtype,
        attn_implementation=args.attn_implementation,
        video_min_pixels=args.video_min_pixels,
        video_max_pixels=args.video_max_pixels,
        image_min_pixels=args.image_min_pixels,
        image_max_pixels=args.image_max_pixels,
        num_frames=args.video_num_frames,
        padding_side="left",
        load_model=not args.use_vllm,
    )
    loader = MediaLoader.from_args(args)
    skips = MediaSkips(args.output_dir)
    skips.reset()
    prompts = PromptConfig(args.system_prompt_path, args.answer_format_dir)
    if args.use_vllm:
        generate = VLLMGenerator(processor, loader, prompts, args)
    else:
        torch.manual_seed(args.seed)
        model.to(device).eval()
        generate = HFGenerator(model, processor, loader, prompts, args)

    # ---- Generate and score ---------------------------------------------------------------------------
    records: list[dict[str, Any]] = []
    for start in range(0, len(rows), args.batch_size):
        # A row whose media cannot be decoded is left out of the scores, with a warning and a count.
        batch = decodable_rows(rows[start : start + args.batch_size], loader, skips)
        if not batch:
            continue
        outputs = generate(batch)
        records.extend(score_prediction(row, out) for row, out in zip(batch, outputs, strict=True))
        logger.info("evaluated %d/%d", len(records), len(rows))

    # ---- Tables -----------------------------------------------------------------------------------------
    metrics = aggregate(records)
    metrics["run"] = {
        "model": args.model_name_or_path,
        "dataset": args.dataset_name,
        "split": args.eval_split,
        "num_frames": args.video_num_frames,
        "video_max_pixels": args.video_max_pixels,
        "generator": "vllm" if args.use_vllm else "transformers",
        "temperature": args.temperature,
        "max_new_tokens": args.max_new_tokens,
        "prompt_hashes": prompt_hashes(args.system_prompt_path, args.answer_format_dir),
        "media_preflight": preflight,
        "media_skipped": skips.total(),
        "wall_s": time.perf_counter() - started,
        "args": to_dict(args),
    }
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    (out / "metrics.md").write_text(markdown_tables(metrics, f"Evaluation of {args.model_name_or_path}"))
    if args.save_predictions:
        with open(out / "predictions.jsonl", "w") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return metrics


def run_eval(config: str | Path | dict | list[str] | None = None, **overrides: Any) -> dict[str, Any]:
    """In-process entry: `run_eval("recipes/tiny/eval.yaml", model_name_or_path=..., output_dir=...)`."""
    (args,) = parse_recipe((EvalArguments,), config, **overrides)
    return main(args)


if __name__ == "__main__":
    from trl import TrlParser

    (eval_args,) = TrlParser((EvalArguments,)).parse_args_and_config()
    main(eval_args)
