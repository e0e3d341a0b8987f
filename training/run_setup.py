"""The set-up every training entry script starts with: logging, seed, checkpoint to resume from."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import datasets
import transformers
from transformers import set_seed
from transformers.trainer_utils import get_last_checkpoint


def setup_run(logger: logging.Logger, training_args: Any, model_args: Any, script_args: Any) -> str | None:
    """Configure logging and the seed; return the last checkpoint in `output_dir` to resume from
    (None when there is none or `resume_from_checkpoint` was given explicitly)."""
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

    last_checkpoint = None
    if Path(training_args.output_dir).is_dir() and training_args.resume_from_checkpoint is None:
        last_checkpoint = get_last_checkpoint(training_args.output_dir)
        if last_checkpoint is not None:
            logger.info("Checkpoint detected, resuming training at %s", last_checkpoint)
    return last_checkpoint
