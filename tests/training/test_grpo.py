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


@pytest.fixture
def run_tiny_grpo(tmp_path, tiny_qwen_dir, tiny_video_dataset, media_root, repo_root, test_video):
    """`run(**overrides) -> (result, hook)`: the tiny recipe on the test videos, vision tower hooked."""
    from training.grpo import run_grpo

    def run(**overrides):
        hook = VisionHook()
        settings = {
            "model_name_or_path": str(tiny_qwen_dir),
            "dataset_name": str(tiny_video_dataset),
            "media_root": str(media_root),
            "output_dir": str(tmp_path / "grpo"),
            **test_video,
            **overrides,
        }
        result = run_grpo(repo_root / "recipes/tiny/grpo.yaml", callbacks=[hook.callback], **settings)
        return result, hook

    return run


@pytest.mark.integration
def test_video_grpo_steps_carry_video_into_the_loss(run_tiny_grpo, tiny_siglip_dir):
    result, hook = run_tiny_grpo(
        reward_funcs=["format", "accuracy", "semantic", "length", "completion_length"],
        reward_weights=[1.0, 1.0, 1.0, 1.0, 1.0],
        semantic_model=str(tiny_siglip_dir),
        max_steps=2,
        beta=0.04,
        gradient_accumulation_steps=2,
        num_generations=4,
        per_device_train_batch_size=4,
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
def test_frames_as_images_uses_stock_grpo(run_tiny_grpo):
    result, hook = run_tiny_grpo(
        frames_as_images=True,
        video_num_frames=4,
        reward_funcs=["format", "completion_length"],
        reward_weights=[1.0, 1.0],
        max_steps=1,
        gradient_accumulation_steps=1,
        beta=0.0,
    )
    assert result["trainer"] == "GRPOTrainer"
    assert hook.with_grad >= 1  # TRL's own image path reaches the loss


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"vllm_mode": "server"}, "vllm_mode=colocate"),
        ({"vllm_tensor_parallel_size": 2}, "tensor_parallel_size=1"),
    ],
)
def test_video_trainer_refuses_vllm_setups_that_cannot_carry_video(tmp_path, settings, message):
    from training.configs import VideoGRPOConfig
    from training.video_grpo import VideoGRPOTrainer

    args = VideoGRPOConfig(output_dir=str(tmp_path), use_vllm=True, bf16=False, report_to="none", **settings)
    with pytest.raises(NotImplementedError, match=message):
        VideoGRPOTrainer(model="unused", reward_funcs=[], args=args)


class FakeColocatedVLLM:
    """Stands in for `vllm.LLM` inside TRL's colocate rollout (no vLLM on CPU): records each request and
    answers with a fixed, well-formed completion plus per-token log-probs, shaped like vLLM's outputs."""

    def __init__(self, completion_ids: list[int]):
        self.completion_ids = completion_ids
        self.requests: list[dict] = []

    def generate(self, prompts, sampling_params=None, use_tqdm=False):
        from types import SimpleNamespace

        self.requests.extend(prompts)
        logprobs = [{t: SimpleNamespace(logprob=-1.0, rank=1)} for t in self.completion_ids]
        return [
            SimpleNamespace(
                prompt_token_ids=[0],
                outputs=[SimpleNamespace(token_ids=list(self.completion_ids), logprobs=logprobs)],
            )
            for _ in prompts
        ]


@pytest.mark.integration
def test_video_grpo_with_colocated_vllm_sends_the_frames(
    run_tiny_grpo, monkeypatch, tiny_video_dataset, media_loader, tiny_processor
):
    """TRL's colocate rollout runs for real up to `llm.generate`: each request carries the rendered prompt
    and the decoded frames with their metadata; vision tokens are banned; the loss still sees the video."""
    import numpy as np
    import trl.generation.vllm_generation as vllm_generation

    from training.data import load_rows

    processor = tiny_processor
    answer = processor.tokenizer.encode("<think>The ball moves.</think><answer>A</answer>")
    engine = FakeColocatedVLLM(answer + [processor.tokenizer.convert_tokens_to_ids("<|im_end|>")])
    sampling: list[dict] = []
    syncs: list[int] = []

    def fake_init(self):  # what `_init_vllm` does in colocate mode, minus starting vLLM
        self.llm = engine

    monkeypatch.setattr(vllm_generation.VLLMGeneration, "_init_vllm", fake_init)
    monkeypatch.setattr(vllm_generation.VLLMGeneration, "sync_weights", lambda self: syncs.append(1))
    monkeypatch.setattr(
        vllm_generation, "SamplingParams", lambda **kw: sampling.append(kw) or kw, raising=False
    )

    result, hook = run_tiny_grpo(
        use_vllm=True,
        vllm_mode="colocate",
        reward_funcs=["format", "accuracy"],
        reward_weights=[1.0, 1.0],
        max_steps=1,
        gradient_accumulation_steps=1,
        beta=0.04,
    )
    assert result["trainer"] == "VideoGRPOTrainer"
    assert syncs, "weights were never pushed to the engine"

    # One request per completion (n=1 each in colocate mode), each with its own video's frames.
    assert len(engine.requests) == 4 and all(kw["n"] == 1 for kw in sampling)
    video_pad = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert sampling[0]["logit_bias"][video_pad] == -100.0
    rows = {str(media_loader.path(r["media_path"])): r for r in load_rows(tiny_video_dataset)}
    for request in engine.requests:
        assert set(request) == {"prompt", "multi_modal_data"}
        assert request["prompt"].count("<|video_pad|>") == 1  # vLLM expands it from the pixels
        ((frames, meta),) = request["multi_modal_data"]["video"]
        matches = [p for p, r in rows.items() if r["problem"] in request["prompt"]]
        assert len(matches) == 1
        clip = media_loader.clip(matches[0])
        assert frames.dtype == np.uint8 and np.array_equal(frames, clip.frames)
        assert (
            meta["fps"] == clip.metadata()["fps"]
            and meta["frames_indices"] == clip.metadata()["frames_indices"]
        )

    # The fake engine's well-formed completions reached the rewards ...
    logs = [h for h in result["log_history"] if "loss" in h]
    assert logs and logs[0]["rewards/format_reward/mean"] == 1.0
    # ... and the video reached the policy's own forwards: the old-policy log-probs for vLLM's importance
    # sampling correction (no grad; generation no longer runs the policy) and the loss (with grad).
    assert hook.with_grad >= 1 and hook.without_grad >= 1


@pytest.mark.integration
def test_video_grpo_with_lora(run_tiny_grpo, tmp_path):
    """LoRA (peft) from the recipe: the reference is the adapter-disabled model, still with the video."""
    result, hook = run_tiny_grpo(
        use_peft=True,
        lora_r=4,
        lora_alpha=8,
        lora_target_modules=["q_proj", "v_proj"],
        reward_funcs=["completion_length"],
        reward_weights=[1.0],
        max_steps=1,
        gradient_accumulation_steps=1,
        beta=0.04,
    )
    assert result["trainer"] == "VideoGRPOTrainer"
    assert hook.with_grad >= 1 and hook.without_grad >= 2  # generation + reference, both with the video
    assert (tmp_path / "grpo" / "adapter_config.json").exists()
