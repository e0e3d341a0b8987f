"""Argument dataclasses for the entry scripts (open-r1 style: extend TRL's, fill from YAML recipes).

Each entry script parses `(ScriptArguments-like, TRL config, ModelConfig)` with `TrlParser`, so one run
is given as `--config recipe.yaml`, as CLI flags, or both (flags win). `parse_recipe` does the same
in-process, with keyword overrides, for `run_sft(...)` / `run_grpo(...)` / `run_eval(...)`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import trl

from training.video_processor import IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS, VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS


@dataclass
class VideoScriptArguments(trl.ScriptArguments):
    """Data and media settings shared by SFT, GRPO and evaluation.

    `dataset_name` is a path: a `save_to_disk` folder (DatasetDict with train[/test]) or parquet/json
    files; `media_root` is where `media_path` values are resolved (never hard-coded, never an env var).
    Frames: the curation recipe's rules (`curation.video`, qwen-vl-utils' own): `video_num_frames`
    at linspace positions (or `video_sampling: fps` at `video_fps`, clamped to
    [`video_min_frames`, `video_max_frames`]), smart_resized once from the source into
    [`video_min_pixels`, `video_max_pixels`]; the processor keeps that size (VideoRFT: 16 frames,
    min = max = 128·28·28). Images: [`image_min_pixels`, `image_max_pixels`].
    Media preflight: before the model loads, every media file of the split is opened (a sample of
    `media_preflight_max_files` on bigger sets; 0 turns it off) and the run fails naming missing ones.
    """

    media_root: str | None = field(
        default=None, metadata={"help": "Folder that `media_path` is relative to."}
    )
    video_num_frames: int = field(default=16, metadata={"help": "Frames per video (uniform sampling)."})
    video_sampling: str = field(default="uniform", metadata={"help": "uniform | fps (qwen-vl-utils' modes)."})
    video_fps: float = field(default=2.0, metadata={"help": "Frames per second of video (fps sampling)."})
    video_min_frames: int = field(default=4, metadata={"help": "Fewest frames (fps sampling)."})
    video_max_frames: int = field(
        default=768, metadata={"help": "Most frames (fps sampling; qwen-vl-utils' FPS_MAX_FRAMES = 768)."}
    )
    video_max_pixels: int = field(default=VIDEO_MAX_PIXELS, metadata={"help": "Max pixels per frame."})
    video_min_pixels: int = field(
        default=VIDEO_MIN_PIXELS, metadata={"help": "Min pixels per frame (processor)."}
    )
    image_max_pixels: int = field(default=IMAGE_MAX_PIXELS, metadata={"help": "Max pixels per image."})
    image_min_pixels: int = field(default=IMAGE_MIN_PIXELS, metadata={"help": "Min pixels per image."})
    video_reader: str = field(
        default="decord", metadata={"help": "First decoder tried (decord|opencv|pyav)."}
    )
    frames_as_images: bool = field(
        default=False,
        metadata={
            "help": "Feed sampled frames as a list of images (stock TRL image path; no temporal M-RoPE, ~2x "
            "visual tokens) instead of one Qwen video."
        },
    )
    system_prompt_path: str | None = field(
        default=None, metadata={"help": "Default: prompts/train/system.txt."}
    )
    answer_format_dir: str | None = field(
        default=None,
        metadata={"help": "Default: prompts/train/answer_format/ (one <type>.txt per problem type)."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep the first N training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep the first N eval rows."})
    media_cache_size: int = field(default=64, metadata={"help": "Decoded clips kept in memory per process."})
    media_preflight_max_files: int | None = field(
        default=10000,
        metadata={
            "help": "Media files opened before the model loads: all of them up to this many, else a "
            "deterministic sample of this many; null checks every file, 0 skips the check."
        },
    )
    media_preflight_max_missing: float = field(
        default=0.0,
        metadata={"help": "Fraction of checked media files allowed to be missing (they are then skipped)."},
    )


@dataclass
class GRPOScriptArguments(VideoScriptArguments):
    """Reward selection and reward hyper-parameters (weights live in `GRPOConfig.reward_weights`)."""

    reward_funcs: list[str] = field(
        default_factory=lambda: ["format", "accuracy", "semantic", "length"],
        metadata={"help": "Rewards from training.rewards.REWARD_REGISTRY, in order."},
    )
    semantic_model: str | None = field(
        default=None, metadata={"help": "SigLIP path/id for the semantic reward."}
    )
    semantic_device: str = field(default="cpu", metadata={"help": "Device of the SigLIP scorer."})
    semantic_dtype: str = field(default="float32", metadata={"help": "dtype of the SigLIP scorer."})
    semantic_variant: str = field(
        default="mean_of_frames",
        metadata={"help": "'mean_of_frames' (VideoRFT code) or the paper's pooling."},
    )
    semantic_weight: float = field(default=2.0, metadata={"help": "w in min(1, w·max(cos, 0))."})
    semantic_num_frames: int = field(default=16, metadata={"help": "Frames the semantic reward encodes."})
    semantic_cache_dir: str | None = field(default=None, metadata={"help": "Frame-embedding cache folder."})
    length_min_tokens: int = field(default=320, metadata={"help": "Length bonus window start (tokens)."})
    length_max_tokens: int = field(default=512, metadata={"help": "Length bonus window end (tokens)."})
    length_bonus: float = field(default=0.2, metadata={"help": "Length bonus value."})
    completion_length_target: int = field(
        default=64, metadata={"help": "Test-only dense reward target length."}
    )

    def reward_params(self, num_generations: int) -> dict[str, Any]:
        """The flat parameter namespace `training.rewards.get_reward_funcs` expects."""
        params: dict[str, Any] = {
            "num_generations": num_generations,
            "length_min_tokens": self.length_min_tokens,
            "length_max_tokens": self.length_max_tokens,
            "length_bonus": self.length_bonus,
            "completion_length_target": self.completion_length_target,
            "media_root": self.media_root,
            "semantic_device": self.semantic_device,
            "semantic_dtype": self.semantic_dtype,
            "semantic_variant": self.semantic_variant,
            "semantic_weight": self.semantic_weight,
            "semantic_num_frames": self.semantic_num_frames,
            "semantic_cache_dir": self.semantic_cache_dir,
        }
        if self.semantic_model is not None:
            params["semantic_model"] = self.semantic_model
        return params


RESUME_HELP = (
    "auto|true: continue from the last checkpoint-N in output_dir (weights, optimizer, scheduler, RNG); "
    "false: start fresh (earlier checkpoints are moved aside); or a checkpoint folder."
)

STOP_HELP = (
    "End the run at this optimizer step while the LR schedule keeps the horizon of num_train_epochs "
    "(training/schedule.py: VideoRFT's cosine over one RL epoch, stopped at 1K steps)."
)


@dataclass
class VideoSFTConfig(trl.SFTConfig):
    """`SFTConfig` with the defaults collate-time conversations need.

    `remove_unused_columns=False` keeps the raw row columns for the collator;
    `skip_prepare_dataset` stops TRL from tokenising a dataset that has no text column (the collator
    tokenises); `max_length=None` because truncation would cut visual tokens (the collator refuses
    over-long batches instead).
    """

    remove_unused_columns: bool | None = False
    dataset_kwargs: dict[str, Any] | None = field(default_factory=lambda: {"skip_prepare_dataset": True})
    max_length: int | None = None
    resume: str = field(default="auto", metadata={"help": RESUME_HELP})
    stop_after_steps: int | None = field(default=None, metadata={"help": STOP_HELP})


@dataclass
class VideoGRPOConfig(trl.GRPOConfig):
    """`GRPOConfig`; the reward functions need the raw columns (solution, problem_type, media_path)."""

    remove_unused_columns: bool | None = False
    resume: str = field(default="auto", metadata={"help": RESUME_HELP})
    stop_after_steps: int | None = field(default=None, metadata={"help": STOP_HELP})


@dataclass
class EvalArguments(VideoScriptArguments):
    """Evaluation: generate on a Video-R1 eval file or a held-out split, score, write tables."""

    model_name_or_path: str | None = field(default=None, metadata={"help": "Model id or checkpoint folder."})
    eval_split: str = field(
        default="auto",
        metadata={
            "help": "Split to evaluate; auto: `test` when the set has one, else the split that exists."
        },
    )
    output_dir: str = field(default="runs/eval", metadata={"help": "Where metrics.json / metrics.md go."})
    batch_size: int = field(default=4, metadata={"help": "Prompts per generate call."})
    max_new_tokens: int = field(default=1024, metadata={"help": "Generation budget (VideoRFT: 1024)."})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy (VideoRFT: 0.1 / top_p 0.001)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling (used when temperature > 0)."})
    dtype: str = field(default="auto", metadata={"help": "Model dtype (auto|bfloat16|float16|float32)."})
    attn_implementation: str | None = field(default=None, metadata={"help": "e.g. flash_attention_2 on GPU."})
    device: str | None = field(default=None, metadata={"help": "Default: cuda if available, else cpu."})
    use_vllm: bool = field(
        default=False, metadata={"help": "Generate with vLLM (GPU extra; import-guarded)."}
    )
    vllm_tensor_parallel_size: int = field(default=1, metadata={"help": "vLLM tensor parallel size."})
    vllm_gpu_memory_utilization: float = field(default=0.9, metadata={"help": "vLLM GPU memory fraction."})
    vllm_max_model_len: int = field(default=32768, metadata={"help": "vLLM max model length."})
    prompt_style: str = field(
        default="auto",
        metadata={
            "help": "eval_bench (VideoRFT's eval_bench.py) | eval_bench_videor1 (Video-R1's) | train (the "
            "training conversation) | auto: eval_bench for Video-R1 eval files, train for published sets."
        },
    )
    skip_bad_media: bool = field(
        default=False,
        metadata={"help": "Skip and count rows whose media is missing or undecodable (default: stop)."},
    )
    resume: bool = field(
        default=True,
        metadata={"help": "Keep answered rows of an interrupted run in output_dir (false: start over)."},
    )
    save_predictions: bool = field(
        default=True, metadata={"help": "Write predictions.jsonl next to metrics."}
    )
    seed: int = field(default=42, metadata={"help": "Sampling seed."})


# ---- parsing ------------------------------------------------------------------------------------


def _as_dicts(config: str | Path | dict[str, Any] | None) -> dict[str, Any]:
    import yaml

    if config is None:
        return {}
    if isinstance(config, dict):
        return dict(config)
    with open(config) as fh:
        loaded = yaml.safe_load(fh) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"recipe {config} must be a YAML mapping")
    return loaded


def parse_recipe(
    dataclass_types: Sequence[type],
    config: str | Path | dict[str, Any] | Sequence[str] | None = None,
    **overrides: Any,
) -> tuple[Any, ...]:
    """Parse a recipe exactly like `TrlParser.parse_args_and_config`, in-process.

    `config`: a YAML path, a dict, or an argv list (`["--config", "r.yaml", "--max_steps", "3"]`);
    keyword `overrides` win over the recipe (tests and flows use them: `output_dir=...`). The recipe's
    `env:` mapping is exported like TrlParser does. Unknown keys raise, naming them.
    """
    import os

    parser = trl.TrlParser(list(dataclass_types))
    if isinstance(config, (list, tuple)):
        argv = list(config)
        values: dict[str, Any] = {}
        if "--config" in argv:
            i = argv.index("--config")
            values = _as_dicts(argv[i + 1])
            del argv[i : i + 2]
    else:
        argv = []
        values = _as_dicts(config)
    values.update(overrides)
    for key, value in (values.pop("env", None) or {}).items():
        os.environ[key] = str(value)
    remaining = parser.set_defaults_with_config(**values)
    if remaining:
        raise ValueError(f"unknown recipe keys: {[k.lstrip('-') for k in remaining[::2]]}")
    return tuple(_listify(obj) for obj in parser.parse_args_into_dataclasses(args=argv))


def _listify(obj: Any) -> Any:
    """A single value given for a list field (`run_grpo(r, reward_funcs="accuracy")`, a recipe's
    `benchmarks: mvbench`) becomes a one-item list, as `--reward_funcs accuracy` on the command line
    does; left a string, it would be iterated letter by letter."""

    try:
        hints = typing.get_type_hints(type(obj))
    except Exception:  # a field type that cannot be resolved here: leave the object as parsed
        return obj
    for f in fields(obj):
        hint = hints.get(f.name)
        args = (
            typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        )
        # Only where a string is not itself allowed (`report_to: str | list[str]` takes "none").
        is_list = any(typing.get_origin(a) is list for a in args) and str not in args
        if is_list and isinstance(getattr(obj, f.name), str):
            setattr(obj, f.name, [getattr(obj, f.name)])
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a plain dict (for run records)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
