"""GRPO on video prompts: the subclass carries the video into every log-prob forward; stock TRL does not."""

from __future__ import annotations

import pytest
import torch


class VisionHook:
    """Counts vision-tower forwards with and without grad; attached through a TrainerCallback."""

    def __init__(self):
        from transformers import TrainerCallback

        hook = self
        self.with_grad = 0
        self.without_grad = 0
        self.grids: list[tuple] = []

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, model=None, **kwargs):
                base = model.get_base_model() if hasattr(model, "get_base_model") else model
                base.model.visual.register_forward_hook(hook)

        self.callback = _Callback()

    def __call__(self, module, args, kwargs_or_output, output=None):
        if torch.is_grad_enabled():
            self.with_grad += 1
        else:
            self.without_grad += 1


# ---- unit: media rows survive TRL's shuffling and splitting --------------------------------------


def test_media_follow_their_rows_through_trl_shuffle_and_split():
    from trl.trainer.utils import shuffle_sequence_dict, split_tensor_dict

    from training.video_grpo import MEDIA_KEY, _concat_media

    # Two prompts with different grids, G=2 copies each; row i's media are tagged with i's prompt id.
    media_a = {"pixel_values_videos": torch.full((4, 3), 1.0), "video_grid_thw": torch.tensor([[1, 2, 2]])}
    media_b = {"pixel_values_videos": torch.full((8, 3), 2.0), "video_grid_thw": torch.tensor([[2, 2, 2]])}
    batch = {
        "prompt_ids": torch.tensor([[1], [1], [2], [2]]),
        "advantages": torch.tensor([0.1, 0.2, 0.3, 0.4]),
        "num_items_in_batch": torch.tensor(4),
        MEDIA_KEY: [media_a, media_a, media_b, media_b],
    }
    torch.manual_seed(3)
    for chunk in split_tensor_dict(shuffle_sequence_dict(batch), 2):
        for row_id, media in zip(chunk["prompt_ids"][:, 0].tolist(), chunk[MEDIA_KEY], strict=True):
            assert media is (media_a if row_id == 1 else media_b)
        flat = _concat_media(chunk[MEDIA_KEY])
        # Flat patches are in row order and match the grids the model will iterate over.
        assert flat["pixel_values_videos"].shape[0] == int(flat["video_grid_thw"].prod(-1).sum())


def test_grpo_prompts_are_built_on_access(tiny_video_dataset, media_loader):
    from training.data import load_rows, with_grpo_prompts

    ds = with_grpo_prompts(load_rows(tiny_video_dataset), media_loader)
    row = ds[0]
    user = row["prompt"][1]
    assert user["content"][0] == {"type": "video", "video": str(media_loader.path(row["media_path"]))}
    assert user["content"][1]["type"] == "text" and row["problem"] in user["content"][1]["text"]
    assert "prompt" not in load_rows(tiny_video_dataset).column_names  # nothing conversational in Arrow
    images = with_grpo_prompts(load_rows(tiny_video_dataset), media_loader, frames_as_images=True)[0]
    assert isinstance(images["prompt"][1]["content"], str) and len(images["images"]) == 8


# ---- integration: a few real GRPO steps ------------------------------------------------------------


def _grpo_overrides(tmp_path, tiny_qwen_dir, dataset, media_root, test_video, **extra):
    return {
        "model_name_or_path": str(tiny_qwen_dir),
        "dataset_name": str(dataset),
        "media_root": str(media_root),
        "output_dir": str(tmp_path / "grpo"),
        **test_video,
        **extra,
    }


@pytest.mark.integration
def test_video_grpo_steps_carry_video_into_the_loss(
    tmp_path, tiny_qwen_dir, tiny_siglip_dir, tiny_video_dataset, media_root, repo_root, test_video
):
    from training.grpo import run_grpo

    hook = VisionHook()
    result = run_grpo(
        repo_root / "recipes/tiny/grpo.yaml",
        callbacks=[hook.callback],
        **_grpo_overrides(
            tmp_path,
            tiny_qwen_dir,
            tiny_video_dataset,
            media_root,
            test_video,
            reward_funcs=["format", "accuracy", "semantic", "length", "completion_length"],
            reward_weights=[1.0, 1.0, 1.0, 1.0, 1.0],
            semantic_model=str(tiny_siglip_dir),
            max_steps=2,
            beta=0.04,
            gradient_accumulation_steps=2,
            num_generations=4,
            per_device_train_batch_size=4,
        ),
    )
    assert result["trainer"] == "VideoGRPOTrainer"
    logs = [h for h in result["log_history"] if "loss" in h]
    assert len(logs) == 2
    for name in (
        "format_reward",
        "accuracy_reward",
        "semantic_reward",
        "length_reward",
        "completion_length_reward",
    ):
        assert all(f"rewards/{name}/mean" in h for h in logs), name
    assert all("kl" in h for h in logs)  # beta > 0: a reference forward ran
    # The policy forward sees the video with grad enabled (2 optimizer steps x 2 micro-batches);
    # the reference forwards (no grad) see it too.
    assert hook.with_grad >= 4, (hook.with_grad, hook.without_grad)
    assert hook.without_grad >= 2


@pytest.mark.integration
def test_stock_grpo_trainer_drops_the_video_in_the_loss(
    tmp_path, tiny_qwen_dir, tiny_video_dataset, media_root, tiny_processor, media_loader, test_video
):
    """Why the subclass exists: stock TRL 1.16 generates with the video but never forwards it with grad."""
    from transformers import AutoModelForImageTextToText
    from trl import GRPOTrainer

    from training.configs import VideoGRPOConfig
    from training.data import load_rows, with_grpo_prompts
    from training.rewards import get_reward_funcs

    hook = VisionHook()
    args = VideoGRPOConfig(
        output_dir=str(tmp_path / "stock"),
        max_steps=1,
        num_generations=4,
        per_device_train_batch_size=4,
        max_completion_length=8,
        beta=0.0,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        logging_steps=1,
        save_strategy="no",
    )
    trainer = GRPOTrainer(
        model=AutoModelForImageTextToText.from_pretrained(tiny_qwen_dir),
        reward_funcs=get_reward_funcs(["completion_length"], completion_length_target=8),
        args=args,
        train_dataset=with_grpo_prompts(load_rows(tiny_video_dataset), media_loader),
        processing_class=tiny_processor,
        callbacks=[hook.callback],
    )
    trainer.train()
    assert hook.without_grad >= 1  # generation saw the video ...
    assert hook.with_grad == 0  # ... the loss forward never did


@pytest.mark.integration
def test_frames_as_images_uses_stock_grpo(
    tmp_path, tiny_qwen_dir, tiny_video_dataset, media_root, repo_root, test_video
):
    from training.grpo import run_grpo

    hook = VisionHook()
    result = run_grpo(
        repo_root / "recipes/tiny/grpo.yaml",
        callbacks=[hook.callback],
        **_grpo_overrides(
            tmp_path,
            tiny_qwen_dir,
            tiny_video_dataset,
            media_root,
            test_video,
            frames_as_images=True,
            video_num_frames=4,
            reward_funcs=["format", "completion_length"],
            reward_weights=[1.0, 1.0],
            max_steps=1,
            gradient_accumulation_steps=1,
            beta=0.0,
        ),
    )
    assert result["trainer"] == "GRPOTrainer"
    assert hook.with_grad >= 1  # TRL's own image path reaches the loss


def test_video_trainer_refuses_vllm(tmp_path):
    from training.configs import VideoGRPOConfig
    from training.video_grpo import VideoGRPOTrainer

    args = VideoGRPOConfig(output_dir=str(tmp_path), use_vllm=True, bf16=False, report_to="none")
    with pytest.raises(NotImplementedError, match="frames_as_images"):
        VideoGRPOTrainer(model="unused", reward_funcs=[], args=args)


@pytest.mark.integration
def test_video_grpo_with_lora(tmp_path, tiny_qwen_dir, tiny_video_dataset, media_root, repo_root, test_video):
    """LoRA (peft) from the recipe: the reference is the adapter-disabled model, still with the video."""
    from training.grpo import run_grpo

    hook = VisionHook()
    result = run_grpo(
        repo_root / "recipes/tiny/grpo.yaml",
        callbacks=[hook.callback],
        **_grpo_overrides(
            tmp_path,
            tiny_qwen_dir,
            tiny_video_dataset,
            media_root,
            test_video,
            use_peft=True,
            lora_r=4,
            lora_alpha=8,
            lora_target_modules=["q_proj", "v_proj"],
            reward_funcs=["completion_length"],
            reward_weights=[1.0],
            max_steps=1,
            gradient_accumulation_steps=1,
            beta=0.04,
        ),
    )
    assert result["trainer"] == "VideoGRPOTrainer"
    assert hook.with_grad >= 1 and hook.without_grad >= 2  # generation + reference, both with the video
    assert (tmp_path / "grpo" / "adapter_config.json").exists()
