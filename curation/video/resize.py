"""Frame sizes by Qwen's `smart_resize`, computed once from the source frame, and the one resampling.

The target size depends only on the source size and the budget (`frame_size`, `image_size`), so a
reader that can decode straight to it (decord, PyAV on large frames) and one that decodes full
frames and then calls `resize_frame` store frames of the same size. `resize_frame` resamples with
Pillow's antialiased bicubic filter, the filter qwen-vl-utils uses (torchvision's
`resize(BICUBIC, antialias=True)` on videos, PIL's `resize` on images).
"""

from __future__ import annotations

import numpy as np

from curation.video.qwen_rules import smart_resize, video_frame_max_pixels


def frame_size(width: int, height: int, n_frames: int, cfg) -> tuple[int, int]:  # cfg: VideoConfig
    """(width, height) of the stored frames of a video with `n_frames` sampled frames.

    qwen-vl-utils' `fetch_video`: the per-frame ceiling is min(max_pixels, 768*28*28,
    total_pixels / n_frames * 2) (never below 1.05 * min_pixels), then `smart_resize`.
    """
    ceiling = video_frame_max_pixels(max(n_frames, 1), cfg.min_pixels, cfg.max_pixels, cfg.total_pixels)
    h, w = smart_resize(height, width, cfg.size_factor, cfg.min_pixels, ceiling)
    return w, h


def image_size(width: int, height: int, cfg) -> tuple[int, int]:  # cfg: VideoConfig
    """(width, height) of a stored image: `smart_resize` with the image budget (qwen-vl-utils' `fetch_image`)."""
    h, w = smart_resize(height, width, cfg.size_factor, cfg.image_min_pixels, cfg.image_max_pixels)
    return w, h


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB HxWx3 uint8 frame to (width, height) with antialiased bicubic; a no-op at that size."""
    from PIL import Image

    width, height = size
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    resized = Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(resized)
