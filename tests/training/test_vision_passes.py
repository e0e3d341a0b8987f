"""Fewer vision-tower passes: in the no-grad log-prob passes (old policy, reference) each distinct prompt's
video is encoded once for its G completions; the policy pass still encodes with grad (gradient path
intact); the log-probs are the ones the pixel path gives."""

from __future__ import annotations

import pytest
import torch


class VideoCounter:
    """Counts videos (grid rows) every Qwen2.5-VL vision tower encodes (policy *and* reference model),
    with and without grad, by wrapping the tower class's forward."""

    def __init__(self, monkeypatch):
        from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as qwen

        self.with_grad = 0
        self.without_grad = 0
        tower = qwen.Qwen2_5_VisionTransformerPretrainedModel
        forward = tower.forward
        counter = self

        def counting_forward(module, hidden_states, grid_thw, **kwargs):
            if torch.is_grad_enabled():
                counter.with_grad += int(grid_thw.shape[0])
            else:
                counter.without_grad += int(grid_thw.shape[0])
            return forward(module, hidden_states, grid_thw, **kwargs)

        monkeypatch.setattr(tower, "forward", counting_forward)


def _run(tmp_path, monkeypatch, name, tiny_qwen_dir, tiny_video_dataset, media_root, repo_root, test_video):
    from training.grpo import run_grpo

    counter = VideoCounter(monkeypatch)
    result = run_grpo(
        repo_root / "recipes/tiny/grpo.yaml",
        model_name_or_path=str(tiny_qwen_dir),
        dataset_name=str(tiny_video_dataset),
        media_root=str(media_root),
        output_dir=str(tmp_path / name),
        reward_funcs=["completion_length"],
        reward_weights=[1.0],
        completion_length_target=64,  # never saturates: advantages stay non-zero
        max_steps=2,
        num_generations=4,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,  # a generation batch = 2 prompts x 4 completions
        beta=0.04,
        report_to="none",
        **test_video,
    )
    return result, counter


@pytest.mark.integration
def test_no_grad_passes_encode_each_prompt_video_once(
    tmp_path, monkeypatch, tiny_qwen_dir, tiny_video_dataset, media_root, repo_root, test_video
):
    import training.video_grpo as video_grpo

    args = (tiny_qwen_dir, tiny_video_dataset, media_root, repo_root, test_video)
    shared, counter = _run(tmp_path, monkeypatch, "shared", *args)
    steps, prompts, g = 2, 2, 4
    # Per step: generation encodes the 8 rows (TRL's generate), the reference pass 2 distinct prompts
    # (was 8), the policy pass 8 with grad (2 micro-batches x 4).
    assert counter.without_grad == steps * (prompts * g + prompts), counter.without_grad
    assert counter.with_grad == steps * prompts * g

    monkeypatch.setattr(video_grpo, "_accepts_encoder_outputs", lambda vlm: False)  # the pixel path
    pixels, baseline = _run(tmp_path, monkeypatch, "pixels", *args)
    assert baseline.without_grad == steps * 2 * prompts * g
    # Same rollouts (same seed), same reference log-probs: the KL and loss of step 2 agree.
    got = [h for h in shared["log_history"] if "loss" in h]
    ref = [h for h in pixels["log_history"] if "loss" in h]
    assert got[1]["kl"] > 0
    for key in ("kl", "loss", "reward"):
        assert got[1][key] == pytest.approx(ref[1][key], rel=1e-3, abs=1e-6), key
