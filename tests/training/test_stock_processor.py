"""Outputs that stock tools load: saved processor configs name only stock transformers classes and the
video processor's JSON is exactly what the stock `Qwen2VLVideoProcessor` saves (recorded in
data/stock_qwen2vl_video_processor.json from transformers 5.23 + torchvision 0.29.1 by the stock
environment of `make test-stock`, which also loads and generates with them: scripts/check_stock_load.py);
`videorft export-model` writes the flat files older loaders and vLLM read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

STOCK = json.loads((Path(__file__).parent / "data" / "stock_qwen2vl_video_processor.json").read_text())


@pytest.mark.parametrize("case", sorted(STOCK["cases"]))
def test_saved_video_processor_json_equals_the_stock_one(case, tmp_path):
    from training.video_processor import VIDEO_PROCESSOR_FILE, NumpyQwen2VLVideoProcessor

    settings = STOCK["cases"][case]["settings"]
    ours = NumpyQwen2VLVideoProcessor(**settings)
    ours.save_pretrained(tmp_path)
    assert json.loads((tmp_path / VIDEO_PROCESSOR_FILE).read_text()) == STOCK["cases"][case]["saved"]
    # ... and it still loads back into our processor with the same settings.
    again = NumpyQwen2VLVideoProcessor.from_pretrained(tmp_path)
    assert (again.min_pixels, again.max_pixels, again.num_frames) == (
        ours.min_pixels,
        ours.max_pixels,
        ours.num_frames,
    )


@pytest.mark.integration
def test_sft_and_grpo_outputs_name_only_stock_classes_and_export(
    tmp_path, tiny_qwen_dir, tiny_dataset, tiny_video_dataset, media_root, repo_root, test_video
):
    from training.export import class_names, export_model, non_stock_classes
    from training.grpo import run_grpo
    from training.sft import run_sft
    from training.tiny_qwen import load_model_and_processor

    common = {"media_root": str(media_root), "max_steps": 1, "report_to": "none", **test_video}
    run_sft(
        repo_root / "recipes/tiny/sft.yaml",
        model_name_or_path=str(tiny_qwen_dir),
        dataset_name=str(tiny_dataset),
        output_dir=str(tmp_path / "sft"),
        **common,
    )
    run_grpo(
        repo_root / "recipes/tiny/grpo.yaml",
        model_name_or_path=str(tmp_path / "sft"),
        dataset_name=str(tiny_video_dataset),
        output_dir=str(tmp_path / "grpo"),
        reward_funcs=["completion_length"],
        reward_weights=[1.0],
        gradient_accumulation_steps=1,
        **common,
    )
    stock_tiny = STOCK["cases"]["tiny_test"]["saved"]
    for stage in ("sft", "grpo"):
        out = tmp_path / stage
        names = class_names(out)
        assert names["processor_config.json.video_processor:video_processor_type"] == "Qwen2VLVideoProcessor"
        assert non_stock_classes(out) == {}, names
        nested = json.loads((out / "processor_config.json").read_text())["video_processor"]
        assert nested == stock_tiny

    exported = export_model(tmp_path / "grpo", tmp_path / "export")
    for name in (
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "chat_template.jinja",
        "chat_template.json",
        "processor_config.json",
        "preprocessor_config.json",
        "video_preprocessor_config.json",
        "videorft_run.json",
    ):
        assert (exported / name).exists(), name
    assert not (exported / "training_args.bin").exists()
    assert non_stock_classes(exported) == {}
    assert json.loads((exported / "preprocessor_config.json").read_text())["image_processor_type"] == (
        "Qwen2VLImageProcessor"
    )
    # Same weights, same processor settings, through our own loader too.
    model, processor = load_model_and_processor(exported)
    source, _ = load_model_and_processor(tmp_path / "grpo")
    for (name, a), b in zip(model.state_dict().items(), source.state_dict().values(), strict=True):
        assert a.equal(b), name
    assert processor.video_processor.max_pixels == test_video["video_max_pixels"]
    with pytest.raises(FileExistsError):
        export_model(tmp_path / "grpo", exported)
