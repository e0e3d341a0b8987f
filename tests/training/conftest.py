"""Fixtures shared by the training tests: tiny offline models, real encoded videos, a tiny published
dataset. Session-scoped: built once, reused by every test (each builder is idempotent too)."""

from __future__ import annotations

from pathlib import Path

import pytest

# Small visual budget for CPU tests: 64x64 videos fit in 56x56 -> 2x2 merged tokens per frame pair.
TEST_VIDEO = {
    "video_num_frames": 8,
    "video_max_pixels": 56 * 56,
    "video_min_pixels": 28 * 28,
    "image_max_pixels": 56 * 56,
    "image_min_pixels": 28 * 28,
}


@pytest.fixture(scope="session", autouse=True)
def _single_torch_thread():
    """One intra-op thread: on this 2-core box, two OpenMP threads competing with other processes make a
    tiny matmul 5-50x slower (measured: 1.2 ms vs 6-50 ms for a 64-wide linear)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory) -> Path:
    """A tiny random SigLIP checkpoint folder (~54k parameters), loadable like the real one."""
    from training.tiny_siglip import build_tiny_siglip

    return build_tiny_siglip(tmp_path_factory.mktemp("tiny-siglip"))


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2.5-VL checkpoint folder (~350k parameters)."""
    from training.tiny_qwen import build_tiny_qwen25vl

    return build_tiny_qwen25vl(tmp_path_factory.mktemp("tiny-qwen") / "model")


def write_video(path: Path, width: int, height: int, fps: float, seconds: float, seed: int) -> Path:
    """A real mp4 (OpenCV `mp4v`): a coloured square moving over a plain background."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    background = rng.integers(0, 120, size=3)
    colour = rng.integers(130, 255, size=3)
    n = max(2, round(fps * seconds))
    side = max(8, min(width, height) // 4)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for i in range(n):
        frame = np.empty((height, width, 3), dtype=np.uint8)
        frame[:] = background
        x = int((width - side) * i / max(1, n - 1))
        y = (height - side) // 2
        frame[y : y + side, x : x + side] = colour
        writer.write(frame[:, :, ::-1].copy())  # OpenCV writes BGR
    writer.release()
    return path


@pytest.fixture(scope="session")
def media_root(tmp_path_factory) -> Path:
    """Videos (64x64 and 128x96, 8 fps, 1-2 s) and one PNG image under one media root."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("media")
    (root / "videos").mkdir()
    specs = [(64, 64, 8.0, 2.0), (128, 96, 8.0, 1.5), (64, 64, 8.0, 1.0), (96, 64, 8.0, 2.0)]
    for i, (w, h, fps, sec) in enumerate(specs):
        write_video(root / "videos" / f"clip{i}.mp4", w, h, fps, sec, seed=i)
    (root / "images").mkdir()
    img = np.zeros((56, 84, 3), dtype=np.uint8)
    img[:, :42] = (200, 30, 30)
    Image.fromarray(img).save(root / "images" / "img0.png")
    return root


def published_rows() -> list[dict]:
    """Rows in the published CoT schema (the RL set is the same without `process`)."""
    rows = [
        {
            "media_path": "videos/clip0.mp4",
            "data_type": "video",
            "problem": "Which direction does the square move?",
            "options": ["A. left", "B. right", "C. up", "D. down"],
            "problem_type": "multiple choice",
            "process": "<think>The square starts on the left and ends on the right. So it moves right.</think>",
            "solution": "<answer>B</answer>",
            "data_source": "synthetic/motion",
        },
        {
            "media_path": "videos/clip1.mp4",
            "data_type": "video",
            "problem": "How many squares appear in the video?",
            "options": [],
            "problem_type": "numerical",
            "process": "<think>Let me think. I see one square in every frame.</think>",
            "solution": "<answer>1</answer>",
            "data_source": "synthetic/count",
        },
        {
            "media_path": "videos/clip2.mp4",
            "data_type": "video",
            "problem": "Describe what happens.",
            "options": [],
            "problem_type": "free-form",
            "process": "<think>A square moves from left to right over a plain background.</think>",
            "solution": "<answer>a square moves to the right</answer>",
            "data_source": "synthetic/motion",
        },
        {
            "media_path": "videos/clip3.mp4",
            "data_type": "video",
            "problem": "How far does the square travel, in square widths?",
            "options": [],
            "problem_type": "regression",
            "process": "<think>The frame is 6 squares wide and the square crosses it. So about 5.</think>",
            "solution": "<answer>5</answer>",
            "data_source": "synthetic/count",
        },
        {
            "media_path": "images/img0.png",
            "data_type": "image",
            "problem": "What colour is the left half of the image?",
            "options": ["A. red", "B. green", "C. blue", "D. black"],
            "problem_type": "multiple choice",
            "process": "<think>The left half is red.</think>",
            "solution": "<answer>A</answer>",
            "data_source": "synthetic/colour",
        },
    ]
    from curation.records import sample_id

    for row in rows:
        row["id"] = sample_id(row["data_source"], row["media_path"], row["problem"])
    return rows


@pytest.fixture
def rows() -> list[dict]:
    """Fresh copies of the published-schema rows (tests may mutate them)."""
    return published_rows()


@pytest.fixture(scope="session")
def test_video() -> dict:
    """The small visual budget the tiny recipes are run with in tests (recipe overrides)."""
    return dict(TEST_VIDEO)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A DatasetDict (train: the 5 rows x4, test: the 5 rows) saved with `save_to_disk`."""
    import datasets

    rows = published_rows()
    out = tmp_path_factory.mktemp("dataset") / "cot"
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(rows * 4),
            "test": datasets.Dataset.from_list(rows),
        }
    )
    dd.save_to_disk(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_video_dataset(tmp_path_factory) -> Path:
    """Video rows only (the GRPO tests check the video path specifically)."""
    import datasets

    rows = [r for r in published_rows() if r["data_type"] == "video"]
    out = tmp_path_factory.mktemp("dataset") / "rl"
    rl_rows = [{k: v for k, v in r.items() if k != "process"} for r in rows]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rl_rows * 4)}).save_to_disk(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_processor(tiny_qwen_dir):
    from training.video_processor import load_processor

    return load_processor(
        tiny_qwen_dir,
        video_min_pixels=TEST_VIDEO["video_min_pixels"],
        video_max_pixels=TEST_VIDEO["video_max_pixels"],
        image_min_pixels=TEST_VIDEO["image_min_pixels"],
        image_max_pixels=TEST_VIDEO["image_max_pixels"],
    )


@pytest.fixture(scope="session")
def media_loader(media_root):
    from training.video_io import MediaLoader, VideoDecodeConfig

    return MediaLoader(
        media_root,
        VideoDecodeConfig(
            num_frames=TEST_VIDEO["video_num_frames"],
            max_pixels=TEST_VIDEO["video_max_pixels"],
            min_pixels=TEST_VIDEO["video_min_pixels"],
        ),
        image_max_pixels=TEST_VIDEO["image_max_pixels"],
    )
