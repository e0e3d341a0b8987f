"""Downscale frames to a pixel budget, keeping the aspect ratio; never upscale."""

from __future__ import annotations

import math

import numpy as np


def fit_to_budget(width: int, height: int, max_pixels: int, factor: int = 28) -> tuple[int, int]:
    """Target (width, height) for a frame: unchanged when within `max_pixels`, else scaled down.

    When scaling, both sides are floored to multiples of `factor` (28 = Qwen2.5-VL's patch grid)
    exactly as Qwen's `smart_resize` does above its budget, so the training processor keeps the
    stored size instead of resampling again. Flooring costs at most one `factor` per side of
    aspect accuracy (1280x720 -> 420x224 at the default budget); `factor=1` keeps it exact.
    Frames within budget are stored as decoded: no resampling, no upscaling.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    new_w = max(factor, math.floor(width * scale / factor) * factor)
    new_h = max(factor, math.floor(height * scale / factor) * factor)
    if new_w * new_h > max_pixels:
        # Only for extreme aspect ratios, where one side hit the factor floor: drop the grid.
        new_w = max(1, math.floor(width * scale))
        new_h = max(1, math.floor(height * scale))
    return min(new_w, width), min(new_h, height)


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an HxWx3 frame to (width, height); area interpolation, the right one for shrinking."""
    import cv2

    width, height = size
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
