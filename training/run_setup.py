"""The set-up every training entry script starts with: logging, seed, checkpoint to resume from."""

from __future__ import annotations

import logging
import sys
from typing import Any

import datasets
import transformers
from transformers import set_seed

from training.checkpoints import resume_checkpoint, warn_if_weights_only


def setup_run(logger: logging.Logger, training_args: Any, model_args: Any, script_args: Any) -> str | None:
    """Configure logging and the seed; return the checkpoint to resume from (`training.checkpoints`'
    policy: the last one in `output_dir` unless `resume: false`), or None."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    set_seed(training_args.seed)
    logger.info("Model %s | Script %s", model_args, script_args)

    # `resume` (auto | false | a folder) decides; an explicit `resume_from_checkpoint` still wins.
    if training_args.resume_from_checkpoint is not None:
        return training_args.resume_from_checkpoint
    checkpoint = resume_checkpoint(
        training_args.output_dir,
        getattr(training_args, "resume", "auto"),
        is_main_process=training_args.process_index == 0,
    )
    if checkpoint is not None:
        logger.info("Checkpoint detected, resuming training at %s", checkpoint)
        warn_if_weights_only(checkpoint)
    return checkpoint
