"""The tiny offline Qwen2.5-VL and the numpy video processor: ids, layout, metadata, loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_build_is_idempotent(tiny_qwen_dir):
    from training.tiny_qwen import build_tiny_qwen25vl

    weights = tiny_qwen_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_tiny_qwen25vl(tiny_qwen_dir) == tiny_qwen_dir
    assert weights.stat().st_mtime_ns == before  # reused, not rebuilt


def test_tokenizer_ids_match_config(tiny_qwen_dir):
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen_dir)
    cfg = AutoConfig.from_pretrained(tiny_qwen_dir)
    assert type(tok).__name__ == "Qwen2Tokenizer"
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert cfg.text_config.vocab_size >= len(tok)
    # <think>/<answer> are single tokens that survive skip_special_tokens (the rewards read them).
    text = "<|im_start|><think>a red ball</think>\n<answer>B</answer><|im_end|>"
    ids = tok(text)["input_ids"]
    assert tok.convert_tokens_to_ids("<think>") in ids
    assert tok.decode(ids, skip_special_tokens=True) == "<think>a red ball</think>\n<answer>B</answer>"


def test_chat_template_is_trls_qwen25vl(tiny_processor):
    from trl.chat_template_utils import get_training_chat_template

    from training.tiny_qwen import qwen25vl_chat_template

    assert tiny_processor.chat_template == qwen25vl_chat_template()
    # TRL recognises it and has a training variant with generation markers.
    assert "{% generation %}" in get_training_chat_template(tiny_processor).replace(
        "{%- generation -%}", "{% generation %}"
    )


def _stock_patchify(frames: np.ndarray, patch: int = 14, merge: int = 2, tps: int = 2) -> np.ndarray:
    """Qwen2VLVideoProcessor.patchify, copied (torch), for one (T, C, H, W) video."""
    videos = torch.from_numpy(frames)[None]
    b, t, c, h, w = videos.shape
    gt, gh, gw = t // tps, h // patch, w // patch
    x = videos.view(b, gt, tps, c, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)
    return x.reshape(b, gt * gh * gw, c * tps * patch * patch)[0].numpy()


def test_video_patch_layout_matches_stock_processor():
    from training.video_processor import patchify

    rng = np.random.default_rng(0)
    frames = rng.standard_normal((4, 3, 56, 84)).astype(np.float32)
    ours, grid = patchify(frames, 14, 2, 2)
    assert grid == [2, 4, 6]
    np.testing.assert_array_equal(ours, _stock_patchify(frames))


def test_static_video_equals_image_processor():
    """A 2-frame still video must give the image processor's patches (Qwen duplicates images in time)."""
    from PIL import Image
    from transformers import Qwen2VLImageProcessorPil

    from training.video_processor import NumpyQwen2VLVideoProcessor

    img = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
    budget = {"min_pixels": 56 * 56, "max_pixels": 112 * 112}
    a = Qwen2VLImageProcessorPil(**budget)(Image.fromarray(img), return_tensors="np")
    b = NumpyQwen2VLVideoProcessor(**budget)(np.stack([img, img]), return_tensors="np")
    np.testing.assert_array_equal(a["image_grid_thw"], b["video_grid_thw"])
    np.testing.assert_allclose(a["pixel_values"], b["pixel_values_videos"], atol=1e-5)


def test_odd_frame_count_is_padded_and_resize_respects_budget():
    from training.video_processor import NumpyQwen2VLVideoProcessor

    vp = NumpyQwen2VLVideoProcessor(min_pixels=28 * 28, max_pixels=56 * 56)
    out = vp(np.zeros((5, 96, 128, 3), dtype=np.uint8), return_tensors="pt")
    t, h, w = out["video_grid_thw"][0].tolist()
    assert t == 3  # 5 frames -> 6 (last repeated) -> 3 temporal patches
    assert (h * 14) * (w * 14) <= 56 * 56 and (h * 14) % 28 == 0 and (w * 14) % 28 == 0
    assert out["pixel_values_videos"].shape == (t * h * w, 3 * 2 * 14 * 14)


def test_processor_second_per_grid_ts_from_metadata(tiny_processor):
    """16 of 80 frames at 8 fps -> sampled fps 1.6 -> 2 / 1.6 = 1.25 s per temporal patch."""
    frames = np.zeros((16, 56, 56, 3), dtype=np.uint8)
    text = "<|vision_start|><|video_pad|><|vision_end|>what?"
    meta = {"total_num_frames": 80, "fps": 8.0, "frames_indices": list(range(0, 80, 5))}
    out = tiny_processor(text=[text], videos=[frames], video_metadata=[meta], return_tensors="pt")
    assert out["second_per_grid_ts"].tolist() == pytest.approx([1.25])
    n_video_tokens = int((out["input_ids"] == tiny_processor.video_token_id).sum())
    assert n_video_tokens == int(out["video_grid_thw"].prod()) // 4
    assert (out["mm_token_type_ids"] == 2).sum() == n_video_tokens


def test_processor_accepts_video_paths(tiny_processor, media_root):
    """A path in a `{"type": "video"}` part is decoded with the curation sampler (stock TRL generation uses it)."""
    msgs = [{"role": "user", "content": [{"type": "video", "video": str(media_root / "videos/clip0.mp4")}]}]
    out = tiny_processor.apply_chat_template(msgs, tokenize=True, return_dict=True, return_tensors="pt")
    assert out["video_grid_thw"].shape == (1, 3)
    assert out["second_per_grid_ts"].numel() == 1


def test_load_model_and_processor_forward_with_video(tiny_qwen_dir, tiny_processor):
    from training.tiny_qwen import load_model_and_processor

    model, processor = load_model_and_processor(tiny_qwen_dir, video_min_pixels=784, video_max_pixels=3136)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    frames = (np.random.default_rng(2).random((8, 64, 64, 3)) * 255).astype(np.uint8)
    msgs = [
        {"role": "user", "content": [{"type": "video", "video": frames}, {"type": "text", "text": "what?"}]}
    ]
    inputs = processor.apply_chat_template(
        msgs,
        tokenize=True,
        return_dict=True,
        add_generation_prompt=True,
        return_tensors="pt",
        processor_kwargs={
            "video_metadata": [{"total_num_frames": 16, "fps": 8.0, "frames_indices": list(range(0, 16, 2))}]
        },
    )
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[:2] == inputs["input_ids"].shape
    assert torch.isfinite(logits).all()
