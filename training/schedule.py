"""Stop a run early without shortening its learning-rate schedule (VideoRFT's GRPO horizon).

VideoRFT's `run_grpo_video.sh` trains `num_train_epochs: 1` with no `max_steps`: its cosine schedule
spans one epoch of the RL set (310K prompts / 8 per step ≈ 38.8K steps), and the paper reports the
policy at step 1K, where the LR is still ≈ 99.8% of its peak. Setting `max_steps: 1000` instead makes
transformers fit the whole cosine into 1K steps (LR 0 at the end, half the cumulative LR). With
`stop_after_steps`, the Trainer keeps its horizon from `num_train_epochs` and this callback ends the
run at that optimizer step (the entry script then saves the model as after any run).
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


class StopAfterSteps(TrainerCallback):
    """End training once `state.global_step` reaches `steps` (schedule horizon unchanged)."""

    def __init__(self, steps: int) -> None:
        if steps < 1:
            raise ValueError(f"stop_after_steps must be >= 1, got {steps}")
        self.steps = steps

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step >= self.steps:
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"  # the stopping step is a checkpoint too
        return control


def schedule_callbacks(training_args: Any, callbacks: list[Any] | None) -> list[Any]:
    """`callbacks` plus `StopAfterSteps` when the recipe sets `stop_after_steps`."""
    out = list(callbacks or [])
    steps = getattr(training_args, "stop_after_steps", None)
    if steps:
        out.append(StopAfterSteps(int(steps)))
    return out
