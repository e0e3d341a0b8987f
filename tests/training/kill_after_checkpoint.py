"""Run a training entry point, and SIGKILL every rank right after checkpoint STEP is on disk.

    python tests/training/kill_after_checkpoint.py sft 3 --config RECIPE --key value ...
    accelerate launch ... tests/training/kill_after_checkpoint.py sft 3 --config RECIPE ...

A deterministic stand-in for a machine dying mid-run (a kill from outside races the next steps of a
tiny model): the resume tests relaunch the *normal* command after it and compare with a run that was
never interrupted.
"""

from __future__ import annotations

import os
import signal
import sys

from transformers import TrainerCallback


class KillAfterSave(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.barrier()  # every rank has written its part (RNG state) of the checkpoint
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    stage, step, rest = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    from trl import ModelConfig, TrlParser

    if stage == "sft":
        from training.configs import VideoScriptArguments, VideoSFTConfig
        from training.sft import main as entry

        parsed = TrlParser((VideoScriptArguments, VideoSFTConfig, ModelConfig)).parse_args_and_config(rest)
    else:
        from training.configs import GRPOScriptArguments, VideoGRPOConfig
        from training.grpo import main as entry

        parsed = TrlParser((GRPOScriptArguments, VideoGRPOConfig, ModelConfig)).parse_args_and_config(rest)
    entry(*parsed, callbacks=[KillAfterSave(step)])
    raise SystemExit(f"checkpoint {step} was never saved")


if __name__ == "__main__":
    main()
