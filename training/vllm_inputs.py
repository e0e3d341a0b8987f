"""vLLM request rows for Qwen-VL prompts: one builder for evaluation and for GRPO rollouts.

vLLM's offline `LLM.generate` takes `{"prompt": text, "multi_modal_data": {...}}`. The chat template
renders one `<|video_pad|>` (or `<|image_pad|>`) per media item and vLLM's own Qwen2.5-VL processor
expands it from the pixels, so the request never has to agree with our processor's token count.
Videos go as `(frames, metadata)` pairs: uint8 (T, H, W, 3) frames already sampled and resized by
`training.video_io` (the frames the transformers forward sees too) and `VideoClip.metadata()`, whose
source fps places the frames in time (Qwen2.5-VL's `second_per_grid_ts`).

Nothing here imports vLLM: the rows are plain dicts, so they are built and checked on any machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# OpenAI-style logit-bias floor, which vLLM accepts: enough to never sample the token.
BANNED_LOGIT_BIAS = -100.0


def vllm_request(
    text: str,
    videos: Sequence[tuple[Any, dict[str, Any]]] = (),
    images: Sequence[Any] = (),
) -> dict[str, Any]:
    """One `LLM.generate` row: the rendered prompt and its media, in prompt order per modality."""
    request: dict[str, Any] = {"prompt": text}
    media: dict[str, Any] = {}
    if videos:
        media["video"] = [(np.asarray(frames, dtype=np.uint8), dict(meta)) for frames, meta in videos]
    if images:
        media["image"] = list(images) if len(images) > 1 else images[0]
    if media:
        request["multi_modal_data"] = media
    return request


def banned_tokens_bias(token_ids: Sequence[int | None]) -> dict[int, float]:
    """`SamplingParams.logit_bias` that keeps vLLM from sampling `token_ids` (vision placeholders):
    one sampled `<|video_pad|>` would break the feature/token count of the next forward."""
    return {int(t): BANNED_LOGIT_BIAS for t in token_ids if t is not None}
