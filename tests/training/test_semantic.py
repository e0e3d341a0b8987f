"""training/semantic.py: VideoRFT's semantic reward, its gate, variants and frame-embedding cache."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training import scoring
from training.semantic import (
    Media,
    SemanticScorer,
    make_semantic_reward,
    media_from_row,
    reasoning_span,
    similarity_reward,
    to_uint8_rgb,
)

# ---- pure helpers (no model) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (
            "<think>The question asks X. The ball moves left. Then it stops.</think><answer>A</answer>",
            "The ball moves left. Then it stops.",
        ),
        ("<think>No full stop here</think><answer>A</answer>", "No full stop here"),
        ("<think>Only one sentence.</think><answer>A</answer>", "Only one sentence."),  # nothing after "."
        ("<think>\n  First. \n Second  </think>", "Second"),
        ("no think block. at all", "no think block. at all"),  # whole completion
        ("<think>a. b</think><think>c. d</think>", "b"),  # first think block
    ],
)
def test_reasoning_span(completion, expected):
    assert reasoning_span(completion) == expected


def test_to_uint8_rgb_handles_float_frames_without_garbling():
    base = np.tile(np.array([0, 128, 255], dtype=np.uint8), (2, 5, 1))  # (2, 5, 3)
    assert np.array_equal(to_uint8_rgb(base.astype(np.float32)), base)  # floats in [0, 255]: kept
    assert np.array_equal(to_uint8_rgb(base.astype(np.float32) / 255.0), base)  # floats in [0, 1]: scaled
    assert np.array_equal(to_uint8_rgb(np.transpose(base, (2, 0, 1))), base)  # CHW
    assert to_uint8_rgb(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)  # grayscale
    assert to_uint8_rgb(Image.new("L", (5, 4))).shape == (4, 5, 3)  # PIL
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert to_uint8_rgb(rgba).shape == (2, 2, 3)


def test_media_from_row_column_priority(tmp_path):
    frames = [np.zeros((4, 4, 3), np.uint8)]
    assert media_from_row({"frames": frames, "video": "v.mp4"}, None).kind == "arrays"
    m = media_from_row({"frame_paths": ["a.jpg", "/abs/b.jpg"]}, tmp_path)
    assert m.kind == "paths" and m.paths == (tmp_path / "a.jpg", Path("/abs/b.jpg"))
    assert media_from_row({"image": Image.new("RGB", (2, 2))}, None).kind == "arrays"
    assert media_from_row({"video": "./clips/v.mp4"}, tmp_path) == Media(
        "video", paths=(tmp_path / "clips/v.mp4",)
    )
    assert media_from_row({"media_path": "x.png"}, tmp_path).kind == "paths"
    assert media_from_row({"media_path": "x.bin", "data_type": "image"}, tmp_path).kind == "paths"
    assert media_from_row({"frame_paths": [], "video": None}, tmp_path) is None


def test_similarity_variants_differ():
    e1, e2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    frames = np.stack([e1, e2])
    # per_frame: mean(min(1, 2*1), min(1, 2*0)) = 0.5; mean_of_frames: cos(e1, (e1+e2)/√2) = 0.707 -> 1.
    assert similarity_reward(e1, frames, "per_frame", 2.0) == pytest.approx(0.5)
    assert similarity_reward(e1, frames, "mean_of_frames", 2.0) == pytest.approx(1.0)
    assert similarity_reward(e1, frames, "mean_of_frames", 1.0) == pytest.approx(2**-0.5)
    assert similarity_reward(-e1, frames, "mean_of_frames", 2.0) == 0.0  # negative cosine clipped
    with pytest.raises(ValueError):
        similarity_reward(e1, frames, "median", 2.0)


# ---- with the tiny SigLIP ----------------------------------------------------------------------------


def _videos(n: int, frames: int = 4, seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(frames)] for _ in range(n)]


def _completion(i: int, answer: str = "B") -> str:
    return f"<think>The question asks about motion. The red ball number {i} moves left.</think><answer>{answer}</answer>"


def _batch(videos, g: int, answers=None):
    """G completions per video, contiguous like TRL's groups; all correct unless `answers` says otherwise."""
    n = len(videos) * g
    answers = answers or ["B"] * n
    return {
        "completions": [_completion(i, answers[i]) for i in range(n)],
        "solution": ["B"] * n,
        "problem_type": ["multiple choice"] * n,
        "frames": [v for v in videos for _ in range(g)],
    }


class VisionCounter:
    """Forward hook on `model.vision_model`: calls and frames seen by the image tower."""

    def __init__(self, scorer: SemanticScorer):
        self.calls = 0
        self.frames = 0
        self.handle = scorer.model.vision_model.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output):
        pixels = kwargs.get("pixel_values", args[0] if args else None)
        self.calls += 1
        self.frames += int(pixels.shape[0])


@pytest.fixture
def make_scorer(tiny_siglip_dir, tmp_path):
    def make(**kwargs) -> SemanticScorer:
        kwargs.setdefault("cache_dir", tmp_path / "semantic-cache")
        return SemanticScorer(tiny_siglip_dir, **kwargs)

    return make


@pytest.mark.integration
def test_one_image_pass_per_frame_per_video_whatever_g(make_scorer, tmp_path):
    videos = _videos(3, frames=4)
    counts = {}
    for g in (2, 8):
        scorer = make_scorer(cache_dir=tmp_path / f"cache-g{g}")
        counter = VisionCounter(scorer)
        rewards = make_semantic_reward(scorer)(**_batch(videos, g))
        assert len(rewards) == 3 * g and all(0.0 <= r <= 1.0 for r in rewards)
        counts[g] = (counter.frames, scorer.stats["videos_encoded"])
    assert counts[2] == counts[8] == (3 * 4, 3)  # one pass per frame per video, for G = 2 and G = 8

    # Same frames, new scorer (another rank, the next epoch): disk cache, zero image-tower passes.
    second = make_scorer(cache_dir=tmp_path / "cache-g8")
    counter = VisionCounter(second)
    again = make_semantic_reward(second)(**_batch(videos, 8))
    assert counter.calls == 0 and counter.frames == 0
    assert second.stats["disk_hits"] == 3
    # And a later batch on the same scorer hits memory.
    make_semantic_reward(second)(**_batch(videos, 8))
    assert counter.frames == 0 and second.stats["memory_hits"] == 3
    assert again == pytest.approx(rewards)


@pytest.mark.integration
def test_gate_zeroes_wrong_answers_and_skips_their_work(make_scorer):
    scorer = make_scorer()
    counter = VisionCounter(scorer)
    videos = _videos(2)
    answers = ["B", "C", "B", "B"] + ["C"] * 4  # video 2's group is all wrong
    rewards = make_semantic_reward(scorer)(**_batch(videos, 4, answers))
    assert rewards[1] == 0.0 and rewards[4:] == [0.0] * 4
    assert all(isinstance(rewards[i], float) for i in (0, 2, 3))
    assert counter.frames == 4  # the all-wrong group never reached the image tower
    assert scorer.stats["texts_encoded"] == 3

    ungated = make_semantic_reward(scorer, gated=False)(**_batch(videos, 4, answers))
    assert ungated[:4][0] == pytest.approx(rewards[0])
    assert scorer.stats["texts_encoded"] == 3 + 8


@pytest.mark.integration
def test_gate_passes_partial_credit(make_scorer):
    scorer = make_scorer()
    videos = _videos(1)
    batch = {
        "completions": [_completion(0).replace("<answer>B</answer>", "<answer>a red ball</answer>")],
        "solution": ["a blue ball"],
        "problem_type": ["free-form"],
        "frames": [videos[0]],
    }
    make_semantic_reward(scorer)(**batch)
    assert scorer.stats["texts_encoded"] == 1  # ROUGE > 0 passes the gate


@pytest.mark.integration
def test_variants_differ(make_scorer):
    videos = _videos(2, frames=6, seed=3)
    batch = _batch(videos, 4)
    mean = make_semantic_reward(make_scorer(variant="mean_of_frames"))(**batch)
    per = make_semantic_reward(make_scorer(variant="per_frame"))(**batch)
    assert mean != pytest.approx(per)
    assert all(0.0 <= r <= 1.0 for r in mean + per)


@pytest.mark.integration
def test_float_frames_score_like_uint8(make_scorer):
    scorer = make_scorer(cache_dir=None)
    frames = _videos(1)[0]
    a = scorer.encode_frames(frames)
    b = scorer.encode_frames([f.astype(np.float32) for f in frames])  # [0, 255] floats: not garbled
    c = scorer.encode_frames([f.astype(np.float32) / 255.0 for f in frames])
    assert np.allclose(a, b, atol=1e-5) and np.allclose(a, c, atol=1e-4)


@pytest.mark.integration
def test_frame_paths_column_cache_keys_follow_file_changes(make_scorer, tmp_path):
    paths = []
    for i, frame in enumerate(_videos(1, frames=3)[0]):
        path = tmp_path / "frames" / f"{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(frame).save(path)
        paths.append(f"frames/{i}.jpg")
    scorer = make_scorer(media_root=tmp_path)
    fn = make_semantic_reward(scorer)
    batch = {
        "completions": [_completion(0)] * 2,
        "solution": ["B"] * 2,
        "problem_type": ["mc"] * 2,
        "frame_paths": [paths, paths],
    }
    fn(**batch)
    fn(**batch)
    assert scorer.stats["videos_encoded"] == 1 and scorer.stats["frames_encoded"] == 3
    # A frame rewritten on disk (new mtime/size) is a different key: recomputed, never stale.
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(tmp_path / paths[0])
    os.utime(tmp_path / paths[0], ns=(1, 1))
    fn(**batch)
    assert scorer.stats["videos_encoded"] == 2


@pytest.mark.integration
def test_video_column_uses_decoder_once_per_video(make_scorer, tmp_path):
    calls = []
    frames = _videos(1, frames=5)[0]

    def decoder(path, num_frames):
        calls.append((path, num_frames))
        return frames[:num_frames]

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not decoded by the fake decoder")
    scorer = make_scorer(video_decoder=decoder, num_frames=5, media_root=tmp_path)
    fn = make_semantic_reward(scorer)
    batch = {
        "completions": [_completion(i) for i in range(4)],
        "solution": ["B"] * 4,
        "problem_type": ["mc"] * 4,
        "video": ["clip.mp4"] * 4,
    }
    rewards = fn(**batch)
    assert calls == [(video, 5)] and len(rewards) == 4


@pytest.mark.integration
def test_real_video_through_curation_decoder(make_scorer, tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(20):
        writer.write(np.full((48, 64, 3), i * 10, np.uint8))
    writer.release()
    scorer = make_scorer(num_frames=4, media_root=tmp_path)
    rewards = make_semantic_reward(scorer)(
        completions=[_completion(0)] * 2,
        solution=["B"] * 2,
        problem_type=["mc"] * 2,
        media_path=["clip.mp4"] * 2,
        data_type=["video"] * 2,
    )
    assert all(r is not None for r in rewards)
    assert scorer.stats["frames_encoded"] == 4


@pytest.mark.integration
def test_bad_media_gives_none_for_that_row_only(make_scorer, tmp_path, caplog):
    scoring.reset_warnings()
    scorer = make_scorer(media_root=tmp_path)
    metrics = {}
    batch = {
        "completions": [_completion(0), _completion(1)],
        "solution": ["B", "B"],
        "problem_type": ["mc", "mc"],
        "frame_paths": [["missing.jpg"], None],
        "frames": [None, _videos(1)[0]],
        "log_metric": lambda name, value: metrics.__setitem__(name, value),
    }
    with caplog.at_level(logging.WARNING, logger="training.scoring"):
        rewards = make_semantic_reward(scorer)(**batch)
    assert rewards[0] is None and isinstance(rewards[1], float)
    assert any("missing.jpg" in r.getMessage() for r in caplog.records)
    assert metrics == {"semantic/media_failures": 1.0}


@pytest.mark.integration
def test_missing_media_columns_raise(make_scorer):
    fn = make_semantic_reward(make_scorer())
    with pytest.raises(KeyError, match="frame_paths"):
        fn(completions=[_completion(0)], solution=["B"], problem_type=["mc"])


@pytest.mark.integration
def test_long_reasoning_is_truncated_to_text_tower(make_scorer):
    scorer = make_scorer()
    assert scorer.max_text_len == 64
    long = "<think>Intro. " + "the ball moves left " * 200 + "</think><answer>B</answer>"
    rewards = make_semantic_reward(scorer)(
        completions=[long], solution=["B"], problem_type=["mc"], frames=[_videos(1)[0]]
    )
    assert 0.0 <= rewards[0] <= 1.0


@pytest.mark.integration
def test_registry_builds_semantic_reward(tiny_siglip_dir, tmp_path):
    from training.rewards import get_reward_funcs

    (fn,) = get_reward_funcs(
        ["semantic"],
        semantic_model=str(tiny_siglip_dir),
        semantic_cache_dir=str(tmp_path),
        semantic_variant="per_frame",
        num_generations=2,
    )
    assert fn.__name__ == "semantic_reward"
    out = fn(**_batch(_videos(1), 2), prompts=["p", "p"], completion_ids=[[1], [1]], trainer_state=None)
    assert len(out) == 2


@pytest.mark.integration
def test_tiny_siglip_is_idempotent_and_small(tiny_siglip_dir):
    import json

    from training.tiny_siglip import build_tiny_siglip

    before = (tiny_siglip_dir / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_siglip(tiny_siglip_dir) == tiny_siglip_dir
    assert (tiny_siglip_dir / "model.safetensors").stat().st_mtime_ns == before
    info = json.loads((tiny_siglip_dir / "tiny_siglip.json").read_text())
    assert 30_000 < info["parameters"] < 80_000


@pytest.mark.integration
def test_empty_reasoning_scores_zero_without_model_work(make_scorer):
    scorer = make_scorer()
    rewards = make_semantic_reward(scorer)(
        completions=["<think></think><answer>B</answer>", "<think>  </think><answer>B</answer>"],
        solution=["B", "B"],
        problem_type=["mc", "mc"],
        frames=[_videos(1)[0]] * 2,
    )
    assert rewards == [0.0, 0.0]
    assert scorer.stats["texts_encoded"] == 0 and scorer.stats["frames_encoded"] == 0
