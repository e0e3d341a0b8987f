"""Learning happens (not only plumbing): GRPO raises a verifiable reward from near 0 to near 1 on a toy
task within a CPU budget; the recipes log to TensorBoard; `stop_after_steps` keeps the LR horizon.
(SFT's loss falling is `test_sft.py::test_sft_steps_lower_the_loss`.)"""

from __future__ import annotations

import pytest


@pytest.fixture
def letter_reward(monkeypatch):
    """A toy verifiable task: the fraction of completion tokens that are answer letters (A-D).

    A random policy scores ~0.02 (4 of ~650 tokens); the reward is dense enough that every group has
    non-zero advantages, so a policy that learns anything learns this within tens of steps."""
    import training.rewards as rewards
    from training.tiny_qwen import build_tiny_tokenizer

    letters = set(build_tiny_tokenizer().encode(" A B C D"))

    def factory():
        def answer_letter_reward(completions, completion_ids=None, **kwargs):
            return [sum(t in letters for t in ids) / max(1, len(ids)) for ids in completion_ids]

        return answer_letter_reward

    monkeypatch.setitem(rewards.REWARD_REGISTRY, "answer_letters", factory)
    return "answer_letters"


@pytest.mark.integration
def test_grpo_mean_reward_rises(
    tmp_path, tiny_qwen_dir, tiny_video_dataset, media_root, repo_root, test_video, letter_reward
):
    from training.grpo import run_grpo

    result = run_grpo(
        repo_root / "recipes/tiny/grpo.yaml",
        model_name_or_path=str(tiny_qwen_dir),
        dataset_name=str(tiny_video_dataset),
        media_root=str(media_root),
        output_dir=str(tmp_path / "grpo"),
        reward_funcs=[letter_reward],
        reward_weights=[1.0],
        max_steps=24,
        learning_rate=1e-2,
        num_generations=8,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=1,
        max_completion_length=8,
        beta=0.0,
        report_to="none",
        **test_video,
    )
    rewards = [h["reward"] for h in result["log_history"] if "reward" in h]
    assert len(rewards) == 24
    first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    assert first < 0.2 and last > 0.8, [round(r, 2) for r in rewards]


@pytest.mark.integration
def test_tiny_recipe_logs_to_tensorboard_and_stops_without_shrinking_the_schedule(
    tmp_path, tiny_qwen_dir, tiny_dataset, media_root, repo_root, test_video
):
    """`report_to: tensorboard` (the recipes' default) writes an events file under output_dir/runs/;
    `stop_after_steps` ends the run at step 2 while the cosine still spans the epoch (10 steps here)."""
    from training.sft import run_sft

    result = run_sft(
        repo_root / "recipes/tiny/sft.yaml",
        model_name_or_path=str(tiny_qwen_dir),
        dataset_name=str(tiny_dataset),
        media_root=str(media_root),
        output_dir=str(tmp_path / "sft"),
        max_steps=-1,
        num_train_epochs=1,  # 20 rows / batch 2 = 10 steps of schedule
        stop_after_steps=2,
        lr_scheduler_type="cosine",
        **test_video,
    )
    logs = [h for h in result["log_history"] if "loss" in h]
    assert [h["step"] for h in logs] == [1, 2]
    peak = 5e-3  # the tiny recipe's learning_rate
    # At step 2 of a 10-step cosine the LR is still ~0.9 of its peak (a 2-step horizon would give 0).
    assert logs[-1]["learning_rate"] > 0.8 * peak, logs
    events = list((tmp_path / "sft" / "runs").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert "train/loss" in acc.Tags()["scalars"]
