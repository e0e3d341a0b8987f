"""vLLM request rows (evaluation and GRPO rollouts): rendered prompt + media in vLLM's offline format."""

from __future__ import annotations

import numpy as np
from PIL import Image

from training.vllm_inputs import banned_tokens_bias, vllm_request


def test_video_goes_with_its_metadata_as_uint8_frames():
    frames = np.zeros((4, 28, 56, 3), dtype=np.uint8)
    meta = {"fps": 25.0, "frames_indices": [0, 10, 20, 30], "total_num_frames": 40}
    row = vllm_request("<|vision_start|><|video_pad|><|vision_end|>Q", [(frames, meta)])
    assert row["prompt"].endswith("Q")
    ((sent, sent_meta),) = row["multi_modal_data"]["video"]
    assert sent.dtype == np.uint8 and sent.shape == (4, 28, 56, 3)
    assert sent_meta == meta and sent_meta is not meta  # a copy: vLLM may annotate it


def test_images_single_or_list_and_text_only():
    a, b = Image.new("RGB", (28, 28)), Image.new("RGB", (28, 28))
    assert vllm_request("p", images=[a])["multi_modal_data"] == {"image": a}
    assert vllm_request("p", images=[a, b])["multi_modal_data"] == {"image": [a, b]}
    assert vllm_request("p") == {"prompt": "p"}


def test_vision_tokens_are_banned_and_missing_ids_skipped():
    assert banned_tokens_bias([151656, None, 151652]) == {151656: -100.0, 151652: -100.0}
