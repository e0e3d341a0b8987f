"""GRPO with verifiable rewards on video prompts (VideoRFT stage 2), open-r1 style.

    python -m training.grpo --config recipes/qwen2_5_vl_7b/grpo.yaml
    accelerate launch --config_file recipes/accelerate/zero3.yaml -m training.grpo --config recipes/...

Stock TRL everywhere except video: TRL 1.16 drops video tensors in its log-prob passes, so video
prompts go through `training.video_grpo.VideoGRPOTrainer` (a small, tested subclass; vLLM generation
in colocate mode). With `frames_as_images: true` the sampled frames are a list of images and the stock
`GRPOTrainer` runs unchanged (vLLM colocate or server mode). Rewards come from `training.rewards.get_reward_funcs` by name;
their weights are `reward_weights` (GRPOConfig).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from trl import GRPOTrainer, ModelConfig, TrlParser, get_peft_config

from training.checkpoints import use_checkpoint_loader
from training.configs import GRPOScriptArguments, VideoGRPOConfig, parse_recipe, to_dict
from training.data import PromptConfig, load_rows, prompt_hashes, with_grpo_prompts
from training.media_checks import MediaSkips, report_media_skips, run_media_preflight
from training.rewards import get_reward_funcs
from training.run_setup import setup_run
from training.schedule import schedule_callbacks
from training.tiny_qwen import load_model_and_processor
from training.video_grpo import VideoGRPOTrainer
from training.video_io import MediaLoader

logger = logging.getLogger(__name__)


def main(
    script_args: GRPOScriptArguments,
    training_args: VideoGRPOConfig,
    model_args: ModelConfig,
    callbacks: list[Any] | None = None,
) -> dict[str, Any]:
    # ---- Setup: logging, seed, checkpoint to resume from ---------------------------------------
    last_checkpoint = setup_run(logger, training_args, model_args, script_args)

    # ---- Data: flat RL rows + prompts built on access (never stored in Arrow) ---------------------
    if not script_args.dataset_name:
        raise ValueError("dataset_name (a dataset folder or parquet/json files) is required")
    loader = MediaLoader.from_args(script_args)
    prompts = PromptConfig(script_args.system_prompt_path, script_args.answer_format_dir)
    # Undecodable media: the row is replaced by a decodable one, with a warning and a count.
    skips = MediaSkips.for_run(
        training_args, resuming=bool(training_args.resume_from_checkpoint or last_checkpoint)
    )
    train_dataset = load_rows(script_args.dataset_name, script_args.dataset_train_split)
    if script_args.max_train_samples is not None:
        train_dataset = train_dataset.select(range(min(script_args.max_train_samples, len(train_dataset))))
    eval_dataset = None
    if training_args.eval_strategy != "no":
        eval_dataset = load_rows(script_args.dataset_name, script_args.dataset_test_split)
        if script_args.max_eval_samples is not None:
            eval_dataset = eval_dataset.select(range(min(script_args.max_eval_samples, len(eval_dataset))))
    # Every media file opens before the model loads: a wrong media_root fails here, naming files.
    preflight = run_media_preflight(script_args, ("train", train_dataset), ("test", eval_dataset))
    train_dataset = with_grpo_prompts(
        train_dataset, loader, prompts=prompts, frames_as_images=script_args.frames_as_images, skips=skips
    )
    if eval_dataset is not None:
        eval_dataset = with_grpo_prompts(
            eval_dataset, loader, prompts=prompts, frames_as_images=script_args.frames_as_images, skips=skips
        )

    # ---- Model and processor ----------------------------------------------------------------------
    model, processor = load_model_and_processor(
        model_args.model_name_or_path,
        dtype=model_args.dtype or "auto",
        attn_implementation=model_args.attn_implementation,
        revision=model_args.model_revision,
        video_min_pixels=script_args.video_min_pixels,
        video_max_pixels=script_args.video_max_pixels,
        image_min_pixels=script_args.image_min_pixels,
        image_max_pixels=script_args.image_max_pixels,
        num_frames=script_args.video_num_frames,
        padding_side="left",
    )

    # ---- Rewards: the registry, by name (weights: training_args.reward_weights) --------------------
    reward_funcs = get_reward_funcs(
        script_args.reward_funcs, **script_args.reward_params(training_args.num_generations)
    )

    # ---- Trainer: stock GRPOTrainer for frames-as-images, the video subclass otherwise ------------
    trainer_kwargs: dict[str, Any] = {
        "model": model,
        "reward_funcs": reward_funcs,
        "args": training_args,
        "train_dataset": train_dataset,
        "eval_dataset": eval_dataset,
        "processing_class": processor,
        "peft_config": get_peft_config(model_args),
        "callbacks": schedule_callbacks(training_args, callbacks),
    }
    if script_args.frames_as_images:
        trainer = GRPOTrainer(**trainer_kwargs)
    else:
        trainer = VideoGRPOTrainer(**trainer_kwargs, media_loader=loader)
    use_checkpoint_loader(trainer)  # resume loads the checkpoint's weights (training/checkpoints.py)
    report_media_skips(trainer, skips)

    # ---- Train ------------------------------------------------------------------------------------
    started = time.perf_counter()
    checkpoint = training_args.resume_from_checkpoint or last_checkpoint
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = dict(train_result.metrics)
    metrics["train_samples"] = len(train_dataset)
    metrics.update(skips.metrics())
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()

    # ---- Save -------------------------------------------------------------------------------------
    # generation_config.eos_token_id: make sure a saved policy stops at <|im_end|> (open-r1 does the same).
    trainer.model.generation_config.eos_token_id = trainer.eos_token_ids
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        record = {
            "stage": "grpo",
            "trainer": type(trainer).__name__,
            "script_args": to_dict(script_args),
            "model_args": to_dict(model_args),
            "reward_funcs": list(trainer.reward_func_names),
            "prompt_hashes": prompt_hashes(script_args.system_prompt_path, script_args.answer_format_dir),
            "media_cache": {"hits": loader.hits, "misses": loader.misses},
            "media_preflight": preflight,
            "media_skipped": skips.total(),
        }
        Path(training_args.output_dir, "videorft_run.json").write_text(
            json.dumps(record, indent=2, default=str)
        )

    return {
        "stage": "grpo",
        "trainer": type(trainer).__name__,
        "output_dir": training_args.output_dir,
        "metrics": metrics,
        "log_history": list(trainer.state.log_history),
        "reward_funcs": list(trainer.reward_func_names),
        "wall_s": time.perf_counter() - started,
    }


def run_grpo(
    config: str | Path | dict | list[str] | None = None,
    *,
    callbacks: list[Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """In-process entry: `run_grpo("recipes/tiny/grpo.yaml", output_dir=..., max_steps=...)`.

    `callbacks` are `transformers.TrainerCallback`s (tests hook the model through them)."""
    script_args, training_args, model_args = parse_recipe(
        (GRPOScriptArguments, VideoGRPOConfig, ModelConfig), config, **overrides
    )
    return main(script_args, training_args, model_args, callbacks=callbacks)


if __name__ == "__main__":
    parser = TrlParser((GRPOScriptArguments, VideoGRPOConfig, ModelConfig))
    main(*parser.parse_args_and_config())
