"""Stored frame sizes follow Qwen's smart_resize from the source size; one bicubic resample."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from curation.video import VideoConfig, encode_jpeg, frame_size, image_size, resize_frame

BUDGET = 128 * 28 * 28


def test_720p_becomes_qwen_grid_within_budget():
    # The case: 420x224 (960 visual tokens for 16 frames), not 448x252 after a second resize.
    assert frame_size(1280, 720, 16, VideoConfig()) == (420, 224)


@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920), (4000, 3000), (641, 479), (2000, 100)])
def test_large_frames_fit_and_keep_their_shape(size: tuple[int, int]):
    width, height = size
    w, h = frame_size(width, height, 16, VideoConfig())
    assert w * h <= BUDGET and w % 28 == 0 and h % 28 == 0
    assert abs(w / h - width / height) / (width / height) < 0.3


def test_small_frames_grow_to_the_minimum_as_qwen_does():
    # min = max = 128*28*28 (VideoRFT): a 320x240 clip becomes 392x280, as the processor would make it.
    assert frame_size(320, 240, 16, VideoConfig()) == (392, 280)
    # A lower minimum only snaps it to the grid.
    assert frame_size(320, 240, 16, VideoConfig(min_pixels=28 * 28)) == (308, 252)


def test_many_frames_share_the_total_budget():
    cfg = VideoConfig(min_pixels=28 * 28, max_pixels=768 * 28 * 28, total_pixels=64 * 28 * 28 * 16)
    few = frame_size(1920, 1080, 4, cfg)
    many = frame_size(1920, 1080, 64, cfg)
    assert many[0] * many[1] < few[0] * few[1]


def test_images_have_their_own_budget():
    cfg = VideoConfig()
    w, h = image_size(1920, 1080, cfg)
    assert w * h <= 256 * 28 * 28 and w * h > BUDGET  # a chart keeps twice the pixels of a frame
    assert image_size(64, 64, cfg) == (56, 56)


def test_resize_frame_changes_only_size():
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[:, :640] = (255, 0, 0)
    small = resize_frame(frame, (420, 224))
    assert small.shape == (224, 420, 3) and small.dtype == np.uint8
    assert tuple(small[100, 50]) == (255, 0, 0)
    assert resize_frame(small, (420, 224)) is small  # already at size: no second resample


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
