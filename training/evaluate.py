"""Evaluate a model: generate, score with `training.scoring` / eval_bench's rules, write tables, print them.

    videorft eval recipes/qwen2_5_vl_7b/eval.yaml --dataset_name /data/Evaluation/eval_mvbench.json
    videorft eval recipes/tiny/eval.yaml --dataset_name published/videorft --model_name_or_path runs/tiny/grpo
    python -m training.evaluate --config recipes/tiny/eval.yaml

What is evaluated (`training.eval_inputs`): a Video-R1 evaluation file read as it is (`path` relative
to the media root, `options`, `problem_type`, `problem_id`), or the held-out split of a published set
(`eval_split: auto`: `test` when publish made one, else the split that exists, with a warning).

Prompts (`training.eval_prompts`): eval_bench.py's for benchmark files, the training conversation for
published sets (`prompt_style`). Every row's media is checked before the model loads and again when
its prompt is built: a missing or undecodable file stops the run with one message naming the row
(`skip_bad_media` skips and counts such rows instead); a video question is never scored without its
video.

Scoring: per row both eval_bench.py's reward (`training.bench_metrics`: MC exact match, numerical rule,
MRA in float32 for regression, whole output when the `<answer>` tag is missing) and our task scorers
(ROUGE / WER for free-form / OCR, which eval_bench scores 0). Tables per problem type and data source.

Generation (`training.eval_loop`): batched transformers `generate`, or vLLM (`use_vllm`, the `gpu`
extra) behind the same interface; resumable after a kill without regenerating answered rows; rows
sharded across `accelerate launch` ranks and gathered into one `predictions.jsonl`; a progress line
per batch.

Outputs in `output_dir`: `metrics.json`, `metrics.md`, `predictions.jsonl`, `eval_state.json`.
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
from training.bench_metrics import benchmark_summary, eval_bench_reward
from training.configs import EvalArguments, parse_recipe, to_dict
from training.data import PromptConfig, bare_answer
from training.eval_loop import OK, EvalTask, PredictionStore, Ranks, run_task, skipped_record
from training.eval_prompts import EvalMediaError, EvalPrompter, PreparedPrompt, resolve_style
from training.rewards import FORMAT_RE
from training.scoring import extract_answer, mean_relative_accuracy, score_answer
from training.video_io import MediaLoader, decode_config_from_args
from training.vllm_inputs import vllm_request

logger = logging.getLogger(__name__)


# ---- generators: the same interface, prepared prompts in, output texts out -----------------------------


class HFGenerator:
    """Batched `model.generate` on the prepared conversations."""

    def __init__(self, model: Any, processor: Any, args: EvalArguments):
        self.model = model
        self.processor = processor
        self.args = args
        self.processor.tokenizer.padding_side = "left"  # decoder-only batch generation

    def inputs(self, prepared: Sequence[PreparedPrompt]) -> Any:
        metadata = [p.video_metadata for p in prepared if p.video_metadata is not None]
        processor_kwargs: dict[str, Any] = {"padding": True}
        if metadata:
            processor_kwargs["video_metadata"] = metadata
        return self.processor.apply_chat_template(
            [p.messages for p in prepared],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs=processor_kwargs,
        )

    def __call__(self, prepared: Sequence[PreparedPrompt]) -> list[str]:
        import torch

        inputs = self.inputs(prepared).to(self.model.device)
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


def vllm_sampling_kwargs(args: EvalArguments) -> dict[str, Any]:
    """`SamplingParams` keywords (eval_bench: temperature 0.1, top_p 0.001, max_tokens 1024)."""
    return {
        "max_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p if args.temperature > 0 else 1.0,
        "seed": args.seed,
    }


def vllm_engine_kwargs(args: EvalArguments, world_size: int = 1) -> dict[str, Any]:
    """`vllm.LLM` keywords. Under `accelerate launch` each rank runs its own engine on its GPU (data
    parallel, TRL's colocate pattern: `distributed_executor_backend="external_launcher"`)."""
    kwargs: dict[str, Any] = {
        "model": args.model_name_or_path,
        "tensor_parallel_size": args.vllm_tensor_parallel_size,
        "gpu_memory_utilization": args.vllm_gpu_memory_utilization,
        "max_model_len": args.vllm_max_model_len,
        "limit_mm_per_prompt": {"video": 1, "image": args.video_num_frames if args.frames_as_images else 1},
        "seed": args.seed,
    }
    if world_size > 1:
        if args.vllm_tensor_parallel_size != 1:
            raise ValueError(
                "with several accelerate processes each rank runs its own vLLM engine: set "
                "vllm_tensor_parallel_size 1, or run one process with vllm_tensor_parallel_size N"
            )
        kwargs["distributed_executor_backend"] = "external_launcher"
    return kwargs


class VLLMGenerator:
    """vLLM's offline engine on the same prepared conversations: the prompt rendered by the processor's
    chat template, the decoded frames (and their metadata) as `multi_modal_data`.

    `llm` / `sampling` can be given (tests pass a stand-in engine); by default vLLM is imported here,
    so only GPU machines with the `gpu` extra need it."""

    def __init__(
        self,
        processor: Any,
        args: EvalArguments,
        *,
        llm: Any = None,
        sampling: Any = None,
        world_size: int = 1,
    ):
        self.processor = processor
        self.args = args
        if llm is None:  # pragma: no cover - needs a GPU and vLLM (benchmarks/gpu_eval_check.py runs it)
            try:
                from vllm import LLM, SamplingParams
            except ImportError as exc:
                raise ImportError(
                    "use_vllm needs the `gpu` extra (vLLM) in this environment; or evaluate with transformers"
                ) from exc
            llm = LLM(**vllm_engine_kwargs(args, world_size))
            sampling = SamplingParams(**vllm_sampling_kwargs(args))
        self.llm = llm
        self.sampling = sampling if sampling is not None else vllm_sampling_kwargs(args)

    def requests(self, prepared: Sequence[PreparedPrompt]) -> list[dict[str, Any]]:
        out = []
        for p in prepared:
            text = self.processor.apply_chat_template(p.messages, add_generation_prompt=True, tokenize=False)
            videos = [(m["video"], p.video_metadata or {}) for m in p.media if m["type"] == "video"]
            images = [m["image"] for m in p.media if m["type"] == "image"]
            out.append(vllm_request(text, videos, images))
        return out

    def __call__(self, prepared: Sequence[PreparedPrompt]) -> list[str]:
        outputs = self.llm.generate(self.requests(prepared), self.sampling, use_tqdm=False)
        return [o.outputs[0].text for o in outputs]


# ---- scoring and tables -------------------------------------------------------------------------------


def score_prediction(row: dict[str, Any], output: str) -> dict[str, Any]:
    """One prediction record: eval_bench's reward, our task score, and what was asked."""
    ptype = normalize_problem_type(row.get("problem_type")) or str(row.get("problem_type"))
    gt = bare_answer(row.get("solution", ""))
    prediction = extract_answer(output, whole_if_missing=True)
    record = {
        "key": row.get("key"),
        "index": row.get("index"),
        "status": OK,
        "id": row.get("id"),
        "problem_id": row.get("problem_id"),
        "data_source": row.get("data_source"),
        "problem_type": ptype,
        "media_path": row.get("media_path"),
        "problem": row.get("problem"),
        "options": list(row.get("options") or []),
        "solution": gt,
        "output": output,
        "prediction": prediction,
        "has_answer_tag": bool(extract_answer(output)),
        "format_ok": bool(FORMAT_RE.fullmatch(output.strip())),
        "score": score_answer(prediction, gt, ptype),
        "mra": mean_relative_accuracy(prediction, gt) if ptype == REGRESSION else None,
        # eval_bench.py's reward (its answer rules; OCR / free-form score 0 there)
        "reward": eval_bench_reward(output, f"<answer>{gt}</answer>", ptype),
    }
    # Our headline per row: MRA for regression (VideoRFT's eval metric), the task score otherwise.
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
    """Overall, per problem type and per data source summaries (scored rows), and eval_bench's numbers."""
    scored = [r for r in records if r.get("status", OK) == OK]
    by_type: dict[str, list] = defaultdict(list)
    by_source: dict[str, list] = defaultdict(list)
    for r in scored:
        by_type[r["problem_type"]].append(r)
        by_source[str(r["data_source"])].append(r)
    return {
        "overall": _summary(scored),
        "by_problem_type": {k: _summary(v) for k, v in sorted(by_type.items())},
        "by_data_source": {k: _summary(v) for k, v in sorted(by_source.items())},
        "eval_bench": benchmark_summary(records) if all("reward" in r for r in scored) else None,
        "skipped_media": len(records) - len(scored),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{100 * value:.1f}"
    return str(value)


def markdown_tables(metrics: dict[str, Any], title: str) -> str:
    columns = ["n", "metric", "score", "mean_acc", "mean_mra", "format_rate", "answer_tag_rate"]
    lines = [f"# {title}", ""]
    bench = metrics.get("eval_bench")
    if bench:
        lines += [
            "## eval_bench.py's numbers",
            "",
            f"score **{_fmt(bench['score'])}** ({bench['score_rule']}); mean_acc {_fmt(bench['mean_acc'])}, "
            f"mean_mra {_fmt(bench['mean_mra'])}; {bench['scored']} rows scored, "
            f"{bench['skipped_media']} skipped (media missing or undecodable)",
            "",
        ]
    lines += ["Percentages; `metric` is MRA for regression and our task score otherwise.", ""]

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


def headline(metrics: dict[str, Any]) -> str:
    """The lines `videorft eval` prints: what was evaluated and its numbers."""
    run = metrics.get("run", {})
    overall = metrics["overall"]
    lines = [f"evaluated {run.get('model')} on {run.get('source')} ({run.get('prompt_style')} prompt)"]
    if run.get("note"):
        lines.append(f"  note: {run['note']}")
    bench = metrics.get("eval_bench")
    if bench:
        lines.append(
            f"  eval_bench score {_fmt(bench['score'])} ({bench['score_rule']}): mean_acc {_fmt(bench['mean_acc'])}, "
            f"mean_mra {_fmt(bench['mean_mra'])}; {bench['scored']} rows scored, {bench['skipped_media']} skipped"
        )
    lines.append(
        f"  {'problem type':<18} {'n':>6} {'metric':>7} {'mean_acc':>9} {'mean_mra':>9} {'format':>7}"
    )
    for name, s in [("all", overall), *metrics["by_problem_type"].items()]:
        lines.append(
            f"  {name:<18} {s.get('n', 0):>6} {_fmt(s.get('metric')):>7} {_fmt(s.get('mean_acc')):>9} "
            f"{_fmt(s.get('mean_mra')):>9} {_fmt(s.get('format_rate')):>7}"
        )
    if run.get("output_dir"):
        lines.append(f"  tables: {Path(run['output_dir']) / 'metrics.md'}")
    return "\n".join(lines)


# ---- running tasks ---------------------------------------------------------------------------------------


def distributed_ranks(args: EvalArguments) -> tuple[Ranks, str]:
    """This process's rank and world (accelerate), and the device its model goes on."""
    import os

    import torch
    from accelerate import PartialState

    # PartialState needs cpu=True to set up gloo when there is no GPU (or when told to use the CPU).
    use_cpu = (
        args.device == "cpu"
        or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
        or not torch.cuda.is_available()
    )
    state = PartialState(cpu=use_cpu)
    return Ranks.from_state(state), args.device or str(state.device)


def answer_settings(args: EvalArguments, prompter: EvalPrompter) -> dict[str, Any]:
    """What decides the answers: a resumed run must match these (generator and batch size do not)."""
    return {
        "model": args.model_name_or_path,
        "prompt": prompter.describe(),
        "frames_as_images": args.frames_as_images,
        "video_num_frames": args.video_num_frames,
        "video_pixels": [args.video_min_pixels, args.video_max_pixels],
        "image_pixels": [args.image_min_pixels, args.image_max_pixels],
        "temperature": args.temperature,
        "top_p": args.top_p,
        "max_new_tokens": args.max_new_tokens,
        "seed": args.seed,
    }


def make_prompter(args: EvalArguments, task: EvalTask) -> EvalPrompter:
    # The training frame recipe (frame rule, pixel budgets, reader) with this task's media root.
    loader = MediaLoader(task.media_root, decode_config_from_args(args), maxsize=args.media_cache_size)
    return EvalPrompter(
        loader,
        resolve_style(args.prompt_style, task.default_style),
        PromptConfig(args.system_prompt_path, args.answer_format_dir),
        frames_as_images=args.frames_as_images,
        source=task.name,
    )


def preflight_media(
    tasks: Sequence[EvalTask], prompters: Sequence[EvalPrompter], skip: bool
) -> list[list[dict[str, Any]]]:
    """Every row's media file exists, before any model loads (a stat per row). Returns the skipped
    records per task with `skip`, else raises naming the first rows and how many there are."""
    out: list[list[dict[str, Any]]] = []
    problems: list[str] = []
    for task, prompter in zip(tasks, prompters, strict=True):
        skipped = []
        for row in task.rows:
            reason = prompter.missing_media(row)
            if reason:
                problems.append(reason)
                skipped.append(skipped_record(row, reason))
        out.append(skipped)
    if problems and not skip:
        shown = "\n  ".join(problems[:5])
        more = f"\n  … and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise EvalMediaError(
            f"{len(problems)} row(s) have no media file:\n  {shown}{more}\n"
            "Point media_root (bench-eval: --media-root) at the folder the `path` values are relative to, "
            "or pass --skip_bad_media true to skip and count these rows (they are never scored)"
        )
    for task, skipped in zip(tasks, out, strict=True):
        if skipped:
            logger.warning("%s: %d rows skipped (media missing)", task.name, len(skipped))
    return out


def load_generator(args: EvalArguments, device: str, world: int) -> Any:
    """The model (or vLLM engine) and processor, once for all tasks."""
    import torch

    from training.tiny_qwen import load_model_and_processor

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
    if args.use_vllm:
        return VLLMGenerator(processor, args, world_size=world)
    torch.manual_seed(args.seed)
    model.to(device).eval()
    return HFGenerator(model, processor, args)


def evaluate_tasks(
    args: EvalArguments, tasks: Sequence[EvalTask], generator: Any = None
) -> list[dict[str, Any]]:
    """Run every task with one model; on the main process returns each task's metrics (else [])."""
    if not args.model_name_or_path:
        raise ValueError("model_name_or_path is required")
    started = time.perf_counter()
    if args.max_eval_samples is not None:
        tasks = [
            EvalTask(
                t.name, t.rows[: args.max_eval_samples], t.out_dir, t.media_root, t.default_style, t.info
            )
            for t in tasks
        ]
    ranks, device = distributed_ranks(args)
    prompters = [make_prompter(args, t) for t in tasks]
    preskipped = preflight_media(tasks, prompters, args.skip_bad_media)
    generate = generator or load_generator(args, device, ranks.world)
    results = []
    for task, prompter, skipped in zip(tasks, prompters, preskipped, strict=True):
        task_started = time.perf_counter()
        store = PredictionStore(task.out_dir, answer_settings(args, prompter), ranks, resume=args.resume)
        records = run_task(
            task,
            prompter,
            generate,
            score_prediction,
            store,
            ranks,
            batch_size=args.batch_size,
            skip_bad_media=args.skip_bad_media,
            preskipped=skipped,
        )
        if not ranks.is_main:
            continue
        metrics = aggregate(records)
        metrics["run"] = {
            **task.info,
            "name": task.name,
            "model": args.model_name_or_path,
            "source": task.info.get("file") or f"{task.info.get('dataset')} [{task.info.get('split')}]",
            "media_root": task.media_root,
            "prompt_style": prompter.style,
            "prompt": prompter.describe(),
            "num_frames": args.video_num_frames,
            "video_max_pixels": args.video_max_pixels,
            "generator": "vllm" if args.use_vllm else "transformers",
            "processes": ranks.world,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "max_new_tokens": args.max_new_tokens,
            "rows": len(task.rows),
            "wall_s": time.perf_counter() - task_started,
            "output_dir": str(task.out_dir),
            "args": to_dict(args),
        }
        task.out_dir.mkdir(parents=True, exist_ok=True)
        (task.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
        (task.out_dir / "metrics.md").write_text(
            markdown_tables(metrics, f"Evaluation of {args.model_name_or_path} on {metrics['run']['source']}")
        )
        if not args.save_predictions:
            (task.out_dir / "predictions.jsonl").unlink(missing_ok=True)
        results.append(metrics)
    logger.info("evaluation finished in %.1fs", time.perf_counter() - started)
    return results


# ---- entry -------------------------------------------------------------------------------------------------


def eval_task(args: EvalArguments) -> EvalTask:
    """The one task `videorft eval` runs (see training.eval_inputs)."""
    from training.eval_inputs import load_eval_rows

    if not args.dataset_name:
        raise ValueError("dataset_name is required")
    rows, info = load_eval_rows(args.dataset_name, args.eval_split)
    if info["kind"] == "videor1_eval":
        media_root = args.media_root or str(Path(info["file"]).parent)
        name, style = info.get("benchmark") or Path(info["file"]).stem, "eval_bench"
    else:
        media_root, name, style = args.media_root, f"{Path(info['dataset']).name}[{info['split']}]", "train"
    return EvalTask(name, rows, Path(args.output_dir), media_root, style, info)


def main(args: EvalArguments) -> dict[str, Any]:
    """Evaluate and print the headline numbers (main process); returns the metrics dict."""
    logging.basicConfig(level=logging.INFO)
    results = evaluate_tasks(args, [eval_task(args)])
    if not results:
        return {}
    print(headline(results[0]), flush=True)
    return results[0]


def run_eval(config: str | Path | dict | list[str] | None = None, **overrides: Any) -> dict[str, Any]:
    """In-process entry: `run_eval("recipes/tiny/eval.yaml", model_name_or_path=..., output_dir=...)`."""
    (args,) = parse_recipe((EvalArguments,), config, **overrides)
    return main(args)


if __name__ == "__main__":
    from trl import TrlParser

    (eval_args,) = TrlParser((EvalArguments,)).parse_args_and_config()
    main(eval_args)
    from training.eval_loop import end_process_group

    end_process_group()
