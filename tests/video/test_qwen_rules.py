"""Our frames are qwen-vl-utils' frames: its own functions, run on the same videos, are the reference.

qwen-vl-utils 0.0.14 is a test dependency, imported with a torchvision stand-in (qwen_reference.py).
For 16:9, 4:3, portrait and rotated phone clips, in nframes and fps modes, the stored frames have
its indices and its size, the processor's `video_grid_thw` is the grid of its frames, and
`second_per_grid_ts` is 2 / its sample fps.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import qwen_reference
from PIL import Image

from curation.records import Sample
from curation.stages.extract import extract_sample
from curation.video import VideoConfig, linspace_indices, sample_frames, smart_nframes, smart_resize
from curation.video.qwen_rules import frame_count_to_sample, video_frame_max_pixels

VIDEORFT = 128 * 28 * 28


@pytest.fixture(scope="module")
def qwen():
    return qwen_reference.load()


# ---- the pure rules, exhaustively against qwen-vl-utils ------------------------------------------


def test_smart_resize_is_qwens(qwen):
    sizes = [
        (720, 1280),
        (1080, 1920),
        (1920, 1080),
        (240, 320),
        (30, 40),
        (4000, 3000),
        (100, 2000),
        (57, 57),
    ]
    budgets = [(VIDEORFT, VIDEORFT), (4 * 784, 256 * 784), (128 * 784, 768 * 784), (784, 3136)]
    for (h, w), (low, high) in itertools.product(sizes, budgets):
        assert smart_resize(h, w, 28, low, high) == qwen.smart_resize(h, w, 28, low, high), (h, w, low, high)
    assert smart_resize(720, 1280, 28, VIDEORFT, VIDEORFT) == (224, 420)  # below min: qwen's own quirk


def test_frame_counts_are_qwens(qwen):
    for total, fps in itertools.product([2, 3, 7, 16, 17, 40, 301, 9000, 100_000], [5.0, 10.0, 29.97, 30.0]):
        for n in (2, 4, 8, 15, 16, 32):
            if n <= total:
                assert smart_nframes(total, fps, nframes=n) == qwen.smart_nframes({"nframes": n}, total, fps)
        for ele in (
            {},
            {"fps": 1.0},
            {"fps": 2.0, "max_frames": 16},
            {"fps": 0.5, "min_frames": 16, "max_frames": 16},
        ):
            kwargs = {
                "fps": ele.get("fps"),
                "min_frames": ele.get("min_frames"),
                "max_frames": ele.get("max_frames"),
            }
            try:
                expected = qwen.smart_nframes(ele, total, fps)
            except ValueError:
                with pytest.raises(ValueError):
                    smart_nframes(total, fps, **kwargs)
                assert frame_count_to_sample(total, fps, **kwargs) <= total  # we keep the clip instead
                continue
            assert smart_nframes(total, fps, **kwargs) == expected, (total, fps, ele)


def test_fps_mode_caps_at_fps_max_frames(qwen):
    # A 10-minute clip at 2 fps: 768 frames (FPS_MAX_FRAMES), not 16.
    assert smart_nframes(18_000, 30.0, fps=2.0) == qwen.smart_nframes({"fps": 2.0}, 18_000, 30.0) == 768


def test_linspace_indices_are_torchs(qwen):
    import torch

    for total, n in itertools.product([2, 5, 16, 17, 40, 299, 1000, 9001, 54_000], [2, 4, 8, 16, 32, 64]):
        if n <= total:
            expected = torch.linspace(0, total - 1, n).round().long().tolist()
            assert linspace_indices(total, n) == expected, (total, n)


def test_frame_ceiling_is_fetch_videos(qwen):
    # fetch_video: max(min(768*28*28, total_pixels / nframes * 2), int(min_pixels * 1.05)), capped by max_pixels
    for n, low, high, total in [
        (16, VIDEORFT, VIDEORFT, 90_316_800),
        (768, 784, 768 * 784, 90_316_800),
        (64, 784, 10**7, 10**6),
    ]:
        expected = min(high, max(min(768 * 784, total / n * 2), int(low * 1.05)))
        assert video_frame_max_pixels(n, low, high, total) == expected


# ---- real videos: our frames vs fetch_video's ------------------------------------------------------


def _qwen_frames(qwen, path: Path, ele: dict) -> tuple[np.ndarray, dict, float]:
    video, meta = qwen.fetch_video(
        {"video": str(path), **ele}, return_video_metadata=True, return_video_sample_fps=False
    )
    frames = video.round().clamp(0, 255).to(dtype=__import__("torch").uint8).permute(0, 2, 3, 1).numpy()
    sample_fps = len(meta["frames_indices"]) / meta["total_num_frames"] * meta["fps"]
    return frames, meta, sample_fps


MODES = {
    "nframes": ({"nframes": 16}, {"num_frames": 16}),
    "fps": (
        {"fps": 2.0, "min_frames": 4, "max_frames": 16},
        {"sampling": "fps", "fps": 2.0, "min_frames": 4, "max_frames": 16},
    ),
}
EXPECTED_SIZE = {"16:9": (420, 224), "4:3": (364, 252), "portrait": (224, 420), "phone": (224, 420)}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("source", ["16:9", "4:3", "portrait", "phone"])
def test_stored_frames_grid_and_indices_are_qwens(
    qwen, qwen_sources, source, mode, tmp_path, tiny_video_processor
):
    qwen_ele, ours = MODES[mode]
    budget = {"min_pixels": VIDEORFT, "max_pixels": VIDEORFT}
    expected, meta, sample_fps = _qwen_frames(qwen, qwen_sources[source], {**qwen_ele, **budget})

    path = qwen_sources[source]
    sample = Sample("s" + source.replace(":", "x"), path.name, "video", "q?", "a", "free-form", "test")
    cfg = VideoConfig(**ours, **budget)
    row = extract_sample(sample, path.parent, tmp_path, cfg)
    assert row["status"] == "ok", row["reason"]
    # Indices: qwen's linspace (first and last frame included).
    assert row["frame_indices"] == [int(i) for i in meta["frames_indices"]]
    # Size: smart_resize once from the source; the stored JPEGs are what qwen's processor input is.
    height, width = expected.shape[1:3]
    assert (row["frame_width"], row["frame_height"]) == (width, height) == EXPECTED_SIZE[source]
    stored = np.stack([np.asarray(Image.open(tmp_path / p)) for p in row["frame_paths"]])
    assert stored.shape == expected.shape
    # Pixels: the same decoded frames, one antialiased bicubic resample (JPEG q90 on top).
    assert np.abs(stored.astype(int) - expected.astype(int)).mean() < 3.0
    raw = np.stack(sample_frames(path, cfg).frames)
    assert np.abs(raw.astype(int) - expected.astype(int)).mean() < 1.0

    # The processor keeps that size: video_grid_thw is the grid of qwen's frames, for ours and for theirs.
    vp = tiny_video_processor(min_pixels=VIDEORFT, max_pixels=VIDEORFT)
    grid = [len(expected) // 2, height // 14, width // 14]
    metadata = {
        "fps": meta["fps"],
        "total_num_frames": meta["total_num_frames"],
        "frames_indices": row["frame_indices"],
    }
    ours_out = vp(videos=[stored], video_metadata=[metadata], return_metadata=True)
    assert ours_out["video_grid_thw"].tolist() == [grid]
    assert vp(videos=[expected])["video_grid_thw"].tolist() == [grid]  # no second resampling of qwen's frames
    assert ours_out["video_metadata"][0].sampled_fps == pytest.approx(sample_fps)


def test_second_per_grid_ts_follows_the_sampled_rate(qwen, qwen_sources):
    from training.video_io import VideoDecodeConfig, load_clip

    clip = load_clip(
        qwen_sources["16:9"], VideoDecodeConfig(num_frames=16, max_pixels=VIDEORFT, min_pixels=VIDEORFT)
    )
    _, meta, sample_fps = _qwen_frames(
        qwen, qwen_sources["16:9"], {"nframes": 16, "min_pixels": VIDEORFT, "max_pixels": VIDEORFT}
    )
    assert clip.indices == list(meta["frames_indices"])
    m = clip.metadata()
    # transformers' Qwen2.5-VL processor: second_per_grid_ts = temporal_patch_size / sampled fps
    assert len(m["frames_indices"]) / m["total_num_frames"] * m["fps"] == pytest.approx(sample_fps)
    assert 2 / sample_fps == pytest.approx(2 / (16 / 4.0))  # 16 frames over a 4 s clip: 1 s per grid step


def test_recorded_figures_hold_without_qwen_vl_utils():
    """The figures this file checks live against qwen-vl-utils, recorded (they hold if it is absent)."""
    recorded = json.loads((Path(__file__).parent / "qwen_vl_utils_0.0.14_figures.json").read_text())
    for case in recorded["smart_resize"]:
        assert list(smart_resize(*case["args"])) == case["result"]
    for case in recorded["smart_nframes"]:
        assert smart_nframes(*case["args"], **case["kwargs"]) == case["result"]
    for case in recorded["indices"]:
        assert linspace_indices(*case["args"]) == case["result"]
