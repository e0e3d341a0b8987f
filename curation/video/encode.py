"""Frames to JPEG bytes (Pillow; deterministic for the same pixels and quality)."""

from __future__ import annotations

import io

import numpy as np


def encode_jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    """Encode an RGB uint8 HxWx3 array as baseline JPEG."""
    from PIL import Image

    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 HxWx3 frame, got {frame.dtype} {frame.shape}")
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
