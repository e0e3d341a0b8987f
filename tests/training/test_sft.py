"""Rows → conversations → SFT batches (labels on the assistant turn only), and a few real SFT steps."""

from __future__ import annotations

import json

import pytest

# ---- prompt building ---------------------------------------------------------------------------


def test_user_text_options_and_answer_format(rows):
    from training.data import answer_format_suffix, user_text

    mc = rows[0]
    text = user_text(mc)
    assert text.startswith(mc["problem"] + "\nA. left\nB. right")
    assert text.endswith(answer_format_suffix("multiple choice"))
    # Options already embedded in the problem (VideoRFT's files) are not listed twice.
    embedded = dict(mc, problem=mc["problem"] + "\n" + "\n".join(mc["options"]))
    assert user_text(embedded).count("B. right") == 1
    # Every problem type has its own suffix file; aliases resolve.
    for ptype in ("multiple choice", "numerical", "OCR", "free-form", "regression", "mc", "free_form"):
        assert "<answer>" in answer_format_suffix(ptype)
    with pytest.raises(ValueError):
        answer_format_suffix("haiku")


def test_messages_keep_media_out_of_arrow(rows, media_loader, test_video):
    """Datasets hold flat columns only; the conversation (with frames) is built in Python."""
    from training.data import assistant_target, build_messages, load_system_prompt, media_parts

    row = rows[0]
    parts, meta = media_parts(row, media_loader)
    assert parts[0]["type"] == "video" and parts[0]["video"].shape[0] == test_video["video_num_frames"]
    assert meta["fps"] == 8.0 and meta["total_num_frames"] == 16
    messages = build_messages(row, parts, with_target=True)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[0]["content"][0]["text"] == load_system_prompt()
    assert set(messages[1]["content"][1]) == {"type", "text"}  # no None keys on any part
    assert assistant_target(row) == row["process"] + "\n" + row["solution"]
    frames, _ = media_parts(row, media_loader, frames_as_images=True)
    assert len(frames) == test_video["video_num_frames"] and all(p["type"] == "image" for p in frames)


def test_load_rows_formats(tmp_path, tiny_dataset, rows):
    import datasets

    from training.data import load_rows

    assert len(load_rows(tiny_dataset, "train")) == 20
    assert len(load_rows(tiny_dataset, "test")) == 5
    with pytest.raises(KeyError, match="has"):
        load_rows(tiny_dataset, "validation")
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "train.parquet"))
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert load_rows(tmp_path / "train.parquet")["problem"] == [r["problem"] for r in rows]
    assert load_rows(tmp_path / "rows.jsonl")["options"][0] == rows[0]["options"]


# ---- collator ----------------------------------------------------------------------------------


def test_collator_labels_only_on_assistant_turn(tiny_processor, media_loader, rows):
    import torch

    from training.data import SFTCollator, assistant_target

    batch = SFTCollator(tiny_processor, media_loader)(rows)
    assert {"input_ids", "attention_mask", "labels", "pixel_values_videos", "video_grid_thw"} <= set(batch)
    assert {"second_per_grid_ts", "mm_token_type_ids", "pixel_values", "image_grid_thw"} <= set(batch)
    assert batch["video_grid_thw"].shape[0] == 4 and batch["image_grid_thw"].shape[0] == 1
    tok = tiny_processor.tokenizer
    vision_ids = [
        tok.convert_tokens_to_ids(t) for t in ("<|video_pad|>", "<|image_pad|>", "<|vision_start|>")
    ]
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    for i, row in enumerate(rows):
        labels, ids = batch["labels"][i], batch["input_ids"][i]
        trained = labels != -100
        # Exactly the assistant text + its end-of-turn are trained ...
        assert tok.decode(ids[trained]) == assistant_target(row) + "<|im_end|>\n"
        assert torch.equal(labels[trained], ids[trained])
        # ... and it is one contiguous span at the end of the real tokens (right padding).
        positions = trained.nonzero().flatten()
        assert positions[-1] - positions[0] + 1 == trained.sum()
        assert not torch.isin(labels, torch.tensor(vision_ids + [im_start])).any()
        assert (labels[batch["attention_mask"][i] == 0] == -100).all()


def test_collator_frames_as_images(tiny_processor, media_loader, rows, test_video):
    from training.data import SFTCollator

    batch = SFTCollator(tiny_processor, media_loader, frames_as_images=True)(rows[:2])
    assert "pixel_values_videos" not in batch
    assert batch["image_grid_thw"].shape[0] == 2 * test_video["video_num_frames"]


def test_collator_refuses_truncation(tiny_processor, media_loader, rows):
    from training.data import SFTCollator

    with pytest.raises(ValueError, match="max_length"):
        SFTCollator(tiny_processor, media_loader, max_length=16)(rows[:1])


# ---- a few real SFT steps ----------------------------------------------------------------------


class _VisionHook:
    """Counts vision-tower forwards with grad enabled (a TrainerCallback that hooks the model)."""

    def __init__(self):
        from transformers import TrainerCallback

        hook = self

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, model=None, **kwargs):
                visual = (
                    model.get_base_model().model.visual
                    if hasattr(model, "get_base_model")
                    else model.model.visual
                )
                visual.register_forward_hook(hook)

        self.callback = _Callback()
        self.calls_with_grad = 0
        self.calls_without_grad = 0

    def __call__(self, module, args, output):
        import torch

        if torch.is_grad_enabled():
            self.calls_with_grad += 1
        else:
            self.calls_without_grad += 1


@pytest.mark.integration
def test_sft_steps_lower_the_loss(tmp_path, tiny_qwen_dir, tiny_dataset, media_root, repo_root, test_video):
    from training.sft import run_sft
    from training.tiny_qwen import load_model_and_processor

    hook = _VisionHook()
    out = tmp_path / "sft"
    result = run_sft(
        repo_root / "recipes/tiny/sft.yaml",
        callbacks=[hook.callback],
        model_name_or_path=str(tiny_qwen_dir),
        dataset_name=str(tiny_dataset),
        media_root=str(media_root),
        output_dir=str(out),
        max_steps=10,
        **test_video,
    )
    losses = [h["loss"] for h in result["log_history"] if "loss" in h]
    assert len(losses) == 10
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.5, losses
    assert hook.calls_with_grad >= 10  # the vision tower is in the graph every step
    # The output folder is a complete checkpoint: the GRPO stage loads it through the same function.
    model, processor = load_model_and_processor(out)
    assert processor.video_processor.max_pixels == test_video["video_max_pixels"]
    record = json.loads((out / "videorft_run.json").read_text())
    assert record["stage"] == "sft" and "system.txt" in record["prompt_hashes"]


# ---- recipes and launching ---------------------------------------------------------------------


RECIPES = {
    "sft": ("recipes/tiny/sft.yaml", "recipes/qwen2_5_vl_7b/sft.yaml", "recipes/qwen2_5_vl_3b/sft.yaml"),
    "grpo": ("recipes/tiny/grpo.yaml", "recipes/qwen2_5_vl_7b/grpo.yaml", "recipes/qwen2_5_vl_3b/grpo.yaml"),
    "eval": ("recipes/tiny/eval.yaml", "recipes/qwen2_5_vl_7b/eval.yaml", "recipes/qwen2_5_vl_3b/eval.yaml"),
}


@pytest.mark.parametrize("stage,recipe", [(s, r) for s, rs in RECIPES.items() for r in rs])
def test_recipes_parse(stage, recipe, repo_root, tmp_path):
    """Every recipe key is a real field (a typo would raise), and the VideoRFT numbers are what they say."""
    from trl import ModelConfig

    from training.configs import (
        EvalArguments,
        GRPOScriptArguments,
        VideoGRPOConfig,
        VideoScriptArguments,
        VideoSFTConfig,
        parse_recipe,
    )

    path = repo_root / recipe
    if stage == "eval":
        (args,) = parse_recipe((EvalArguments,), path)
        assert args.model_name_or_path and args.dataset_name
        return
    # GPU recipes ask for bf16, which TrainingArguments refuses on a CPU-only machine.
    overrides = {"output_dir": str(tmp_path), "bf16": False}
    if stage == "sft":
        script, cfg, model = parse_recipe(
            (VideoScriptArguments, VideoSFTConfig, ModelConfig), path, **overrides
        )
        assert cfg.remove_unused_columns is False and cfg.dataset_kwargs == {"skip_prepare_dataset": True}
        if "tiny" not in recipe:
            assert (cfg.learning_rate, cfg.gradient_accumulation_steps, cfg.max_grad_norm) == (1e-6, 2, 5.0)
            assert (script.video_num_frames, script.video_max_pixels) == (16, 128 * 28 * 28)
    else:
        script, cfg, model = parse_recipe(
            (GRPOScriptArguments, VideoGRPOConfig, ModelConfig), path, **overrides
        )
        assert len(cfg.reward_weights) == len(script.reward_funcs)
        assert cfg.per_device_train_batch_size % cfg.num_generations == 0  # whole groups per device
        if "tiny" not in recipe:
            assert (cfg.num_generations, cfg.beta, cfg.temperature, cfg.top_p) == (8, 0.04, 1.0, 0.95)
            assert (cfg.learning_rate, cfg.lr_scheduler_type, cfg.weight_decay) == (1e-6, "cosine", 0.01)
            assert cfg.max_completion_length == 1024
            assert script.reward_funcs == ["format", "accuracy", "semantic", "length"]
    assert model.model_name_or_path


def test_one_value_for_a_list_field_is_a_one_item_list(repo_root, tmp_path):
    """`run_grpo(recipe, reward_funcs="accuracy")` (or a flow's override) trains with the accuracy
    reward, not with rewards named "a", "c", "c", ...; `report_to`, which takes a string, stays one."""
    from trl import ModelConfig

    from training.configs import GRPOScriptArguments, VideoGRPOConfig, parse_recipe

    script, cfg, model = parse_recipe(
        (GRPOScriptArguments, VideoGRPOConfig, ModelConfig),
        repo_root / "recipes/tiny/grpo.yaml",
        output_dir=str(tmp_path),
        reward_funcs="accuracy",
        reward_weights=None,
        lora_target_modules="q_proj",
        report_to="none",
    )
    assert script.reward_funcs == ["accuracy"] and model.lora_target_modules == ["q_proj"]
    assert cfg.report_to in ("none", [], ["none"])


def test_accelerate_command(repo_root):
    from training.launch import accelerate_command, override_args

    cmd = accelerate_command(
        "grpo",
        "recipes/qwen2_5_vl_7b/grpo.yaml",
        accelerate_config="zero3",
        num_processes=8,
        overrides={"max_steps": 10, "reward_funcs": ["format", "accuracy"]},
    )
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--config_file") + 1] == str(repo_root / "recipes/accelerate/zero3.yaml")
    assert cmd[cmd.index("--num_processes") + 1] == "8"
    tail = cmd[cmd.index("-m", 3) :]
    assert tail[:4] == ["-m", "training.grpo", "--config", "recipes/qwen2_5_vl_7b/grpo.yaml"]
    assert tail[4:] == ["--max_steps", "10", "--reward_funcs", "format", "accuracy"]
    with pytest.raises(ValueError):
        override_args({"gradient_checkpointing_kwargs": {"use_reentrant": False}})
    with pytest.raises(ValueError, match="unknown stage"):
        accelerate_command("dpo", "x.yaml")


@pytest.mark.integration
def test_sft_module_cli(tmp_path, tiny_qwen_dir, tiny_dataset, media_root, repo_root, test_video):
    """`python -m training.sft --config RECIPE --key value` (what `accelerate launch -m` runs)."""
    import os
    import subprocess
    import sys

    from training.launch import override_args

    overrides = {
        "model_name_or_path": tiny_qwen_dir,
        "dataset_name": tiny_dataset,
        "media_root": media_root,
        "output_dir": tmp_path / "cli",
        "max_steps": 1,
        **test_video,
    }
    cmd = [
        sys.executable,
        "-m",
        "training.sft",
        "--config",
        "recipes/tiny/sft.yaml",
        *override_args(overrides),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # see the thread note in conftest.py
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "cli" / "model.safetensors").exists()
