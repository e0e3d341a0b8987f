"""Frames fit the pixel budget with their aspect ratio kept, and are never enlarged."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from curation.video import encode_jpeg, fit_to_budget, resize_frame

BUDGET = 128 * 28 * 28


def test_720p_becomes_qwen_grid_within_budget():
    w, h = fit_to_budget(1280, 720, BUDGET, 28)
    assert (w, h) == (420, 224)  # what Qwen2.5-VL's smart_resize picks for this budget
    assert w * h <= BUDGET
    assert abs(w / h - 1280 / 720) / (1280 / 720) < 0.08


@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920), (4000, 3000), (641, 479), (2000, 100)])
def test_large_frames_fit_and_keep_their_shape(size: tuple[int, int]):
    width, height = size
    w, h = fit_to_budget(width, height, BUDGET, 28)
    assert w * h <= BUDGET
    assert w <= width and h <= height
    assert abs(w / h - width / height) / (width / height) < 0.3
    exact_w, exact_h = fit_to_budget(width, height, BUDGET, 1)
    assert exact_w * exact_h <= BUDGET
    assert abs(exact_w / exact_h - width / height) / (width / height) < 0.02


def test_small_frames_are_never_upscaled():
    assert fit_to_budget(320, 240, BUDGET, 28) == (320, 240)
    assert fit_to_budget(30, 20, BUDGET, 28) == (30, 20)


def test_extreme_aspect_ratio_still_fits():
    w, h = fit_to_budget(100_000, 30, BUDGET, 28)
    assert w * h <= BUDGET and h >= 1


def test_resize_frame_changes_only_size():
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[:, :640] = (255, 0, 0)
    small = resize_frame(frame, (420, 224))
    assert small.shape == (224, 420, 3) and small.dtype == np.uint8
    assert tuple(small[100, 50]) == (255, 0, 0)


def test_jpeg_round_trip_and_determinism():
    frame = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    frame[:] = frame.mean(axis=(0, 1)).astype(np.uint8)  # flat colour survives JPEG closely
    data = encode_jpeg(frame, 90)
    assert data == encode_jpeg(frame, 90)
    decoded = np.asarray(Image.open(io.BytesIO(data)))
    assert decoded.shape == (60, 80, 3)
    assert np.abs(decoded.astype(int) - frame.astype(int)).max() <= 3


def test_jpeg_refuses_non_rgb_arrays():
    with pytest.raises(ValueError, match="RGB uint8"):
        encode_jpeg(np.zeros((4, 4), np.uint8))
