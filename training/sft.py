"""Supervised fine-tuning on curated video CoTs (VideoRFT stage 1), open-r1 style.

    python -m training.sft --config recipes/qwen2_5_vl_7b/sft.yaml
    accelerate launch --config_file recipes/accelerate/zero2.yaml -m training.sft --config recipes/...
    # any recipe key can be overridden on the command line: --max_steps 10 --output_dir runs/x

Stock `trl.SFTTrainer`; the only customisation is the collator (`training.data.SFTCollator`), which
builds each conversation at collate time (media stay in their own columns, never in Arrow), decodes
frames with the curation sampler, and puts the loss on the assistant turn only.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from trl import ModelConfig, SFTTrainer, TrlParser, get_peft_config

from training.checkpoints import use_checkpoint_loader
from training.configs import VideoScriptArguments, VideoSFTConfig, parse_recipe, to_dict
from training.data import SFT_COLUMNS, PromptConfig, SFTCollator, check_columns, load_rows, prompt_hashes
from training.media_checks import MediaSkips, RowReplacer, report_media_skips, run_media_preflight
from training.run_setup import setup_run
from training.schedule import schedule_callbacks
from training.tiny_qwen import load_model_and_processor
from training.video_io import MediaLoader

logger = logging.getLogger(__name__)


def main(
    script_args: VideoScriptArguments,
    training_args: VideoSFTConfig,
    model_args: ModelConfig,
    callbacks: list[Any] | None = None,
) -> dict[str, Any]:
    # ---- Setup: logging, seed, checkpoint to resume from ---------------------------------------
    last_checkpoint = setup_run(logger, training_args, model_args, script_args)

    # ---- Data: flat published rows; conversations are built by the collator -----------------------
    if not script_args.dataset_name:
        raise ValueError("dataset_name (a dataset folder or parquet/json files) is required")
    train_dataset = load_rows(script_args.dataset_name, script_args.dataset_train_split)
    check_columns(train_dataset, SFT_COLUMNS)
    if script_args.max_train_samples is not None:
        train_dataset = train_dataset.select(range(min(script_args.max_train_samples, len(train_dataset))))
    eval_dataset = None
    if training_args.eval_strategy != "no":
        eval_dataset = load_rows(script_args.dataset_name, script_args.dataset_test_split)
        if script_args.max_eval_samples is not None:
            eval_dataset = eval_dataset.select(range(min(script_args.max_eval_samples, len(eval_dataset))))
    # Every media file opens before the model loads: a wrong media_root fails here, naming files.
    preflight = run_media_preflight(script_args, ("train", train_dataset), ("test", eval_dataset))

    # ---- Model and processor (real checkpoint or the tiny folder, same path) ----------------------
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
        padding_side="right",
    )
    model.config.use_cache = not training_args.gradient_checkpointing

    # ---- Collator: rows -> conversations -> tensors, loss on the assistant turn -------------------
    loader = MediaLoader.from_args(script_args)
    prompts = PromptConfig(script_args.system_prompt_path, script_args.answer_format_dir)
    # Undecodable media: the row is skipped with a warning and counted (media_skips.jsonl, metrics).
    skips = MediaSkips.for_run(
        training_args, resuming=bool(training_args.resume_from_checkpoint or last_checkpoint)
    )
    collator = SFTCollator(
        processor,
        loader,
        prompts=prompts,
        frames_as_images=script_args.frames_as_images,
        max_length=training_args.max_length,
        replacer=RowReplacer(train_dataset, loader, skips),
    )

    # ---- Trainer: stock SFTTrainer ----------------------------------------------------------------
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        data_collator=collator,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
        callbacks=schedule_callbacks(training_args, callbacks),
    )
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

    # ---- Save: model + processor (Trainer saves the processing class; the GRPO stage loads this folder)
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        record = {
            "stage": "sft",
            "script_args": to_dict(script_args),
            "model_args": to_dict(model_args),
            "prompt_hashes": prompt_hashes(script_args.system_prompt_path, script_args.answer_format_dir),
            "media_cache": {"hits": loader.hits, "misses": loader.misses},
            "media_preflight": preflight,
            "media_skipped": skips.total(),
        }
        Path(training_args.output_dir, "videorft_run.json").write_text(
            json.dumps(record, indent=2, default=str)
        )

    # ---- Evaluate (loss on the test split) --------------------------------------------------------
    if eval_dataset is not None:
        eval_metrics = trainer.evaluate()
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        metrics.update(eval_metrics)

    return {
        "stage": "sft",
        "output_dir": training_args.output_dir,
        "metrics": metrics,
        "log_history": list(trainer.state.log_history),
        "wall_s": time.perf_counter() - started,
    }


def run_sft(
    config: str | Path | dict | list[str] | None = None,
    *,
    callbacks: list[Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """In-process entry: `run_sft("recipes/tiny/sft.yaml", output_dir=..., max_steps=...)`.

    `callbacks` are `transformers.TrainerCallback`s (tests hook the model through them)."""
    script_args, training_args, model_args = parse_recipe(
        (VideoScriptArguments, VideoSFTConfig, ModelConfig), config, **overrides
    )
    return main(script_args, training_args, model_args, callbacks=callbacks)


if __name__ == "__main__":
    parser = TrlParser((VideoScriptArguments, VideoSFTConfig, ModelConfig))
    main(*parser.parse_args_and_config())
