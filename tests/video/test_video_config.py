"""The `video:` recipe slice: sensible defaults and loud errors for typos."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from curation.video import VideoConfig


def test_defaults_follow_videorft():
    cfg = VideoConfig()
    assert cfg.reader == "decord"
    assert cfg.fallback_readers == ["opencv", "pyav"]
    assert cfg.num_frames == 16
    assert cfg.max_pixels == cfg.min_pixels == 128 * 28 * 28 == 100352  # VideoRFT: min = max per frame
    assert (cfg.image_min_pixels, cfg.image_max_pixels) == (4 * 28 * 28, 256 * 28 * 28)  # VideoRFT's images
    assert cfg.max_frames == 768  # qwen-vl-utils' FPS_MAX_FRAMES, not 16
    assert cfg.jpeg_quality == 90


def test_a_typo_names_the_key():
    with pytest.raises(ValidationError, match="num_frame"):
        VideoConfig.model_validate({"num_frame": 8})


def test_unknown_reader_is_refused():
    with pytest.raises(ValidationError, match="decord"):
        VideoConfig(reader="decrod")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min_frames": 20, "max_frames": 8}, "min_frames"),
        ({"min_pixels": 200_000}, "min_pixels"),
        ({"image_min_pixels": 300_000}, "image_min_pixels"),
        ({"jpeg_quality": 0}, "jpeg_quality"),
        ({"workers": 0}, "workers"),
    ],
)
def test_inconsistent_values_are_refused(fields: dict, message: str):
    with pytest.raises(ValidationError, match=message):
        VideoConfig(**fields)


def test_readers_are_tried_in_order_without_repeats():
    assert VideoConfig(reader="opencv").readers_to_try() == ["opencv", "pyav"]
    assert VideoConfig(reader="pyav", fallback_readers=[]).readers_to_try() == ["pyav"]


def test_worker_count_does_not_change_the_content_key():
    assert VideoConfig(workers=1).content_slice() == VideoConfig(workers=8).content_slice()
    assert VideoConfig(num_frames=8).content_slice() != VideoConfig().content_slice()
