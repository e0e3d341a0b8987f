"""Qwen2.5-VL's own frame rules (qwen-vl-utils 0.0.14, `vision_process.py`), as pure functions.

Extract, SFT, GRPO and evaluation all take frames through these, so the frames a model trains on
are the ones Qwen's reference preprocessing gives for the same settings:

- how many frames: `smart_nframes` (`nframes` rounded to an even count; fps mode
  `duration * fps` clamped to [min_frames, max_frames] with `FPS_MAX_FRAMES` as the default cap,
  floored to an even count);
- which frames: `linspace_indices`, `linspace(0, N-1, n).round()` over the whole clip, first and
  last frame included;
- how big: `smart_resize` once from the source frame (sides multiples of 28, pixel count within
  the budget), with `video_frame_max_pixels` applying qwen-vl-utils' per-frame ceiling and its
  total-pixel cap for long frame lists.

Nothing here decodes; `tests/video/test_qwen_rules.py` compares every rule with qwen-vl-utils'
own functions.
"""

from __future__ import annotations

import math

import numpy as np

# qwen-vl-utils 0.0.14 constants (its `*_TOKEN_NUM` values times factor**2 give the pixel budgets).
IMAGE_FACTOR = 28  # patch 14 x spatial merge 2
FRAME_FACTOR = 2  # temporal patch: frame counts are even
FPS = 2.0
FPS_MIN_FRAMES = 4
FPS_MAX_FRAMES = 768
MAX_RATIO = 200
VIDEO_MIN_PIXELS = 128 * IMAGE_FACTOR * IMAGE_FACTOR
VIDEO_FRAME_MAX_PIXELS = 768 * IMAGE_FACTOR * IMAGE_FACTOR  # per-frame ceiling whatever max_pixels says
# MODEL_SEQ_LEN (128000) * 28 * 28 * 0.9: the whole clip's pixel budget (`total_pixels`).
VIDEO_TOTAL_PIXELS = int(128000 * IMAGE_FACTOR * IMAGE_FACTOR * 0.9)
IMAGE_MIN_PIXELS = 4 * IMAGE_FACTOR * IMAGE_FACTOR
IMAGE_MAX_PIXELS = 16384 * IMAGE_FACTOR * IMAGE_FACTOR

# VideoRFT's training budgets (its vision_process.py): videos min = max = 128*28*28 per frame,
# images 4*28*28 .. 256*28*28.
VIDEORFT_VIDEO_PIXELS = 128 * IMAGE_FACTOR * IMAGE_FACTOR
VIDEORFT_IMAGE_MIN_PIXELS = 4 * IMAGE_FACTOR * IMAGE_FACTOR
VIDEORFT_IMAGE_MAX_PIXELS = 256 * IMAGE_FACTOR * IMAGE_FACTOR


def round_by_factor(number: float, factor: int) -> int:
    return round(number / factor) * factor


def ceil_by_factor(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def floor_by_factor(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor


def smart_resize(
    height: int,
    width: int,
    factor: int = IMAGE_FACTOR,
    min_pixels: float | None = None,
    max_pixels: float | None = None,
) -> tuple[int, int]:
    """(height, width) with both sides multiples of `factor` and the pixel count within the budget.

    Exactly qwen-vl-utils' rule, including its quirk: a frame scaled *down* to `max_pixels` may end
    below `min_pixels` (1280x720 at min = max = 128*28*28 gives 420x224, 94,080 px); the minimum
    only scales small frames up.
    """
    max_pixels = max_pixels if max_pixels is not None else IMAGE_MAX_PIXELS
    min_pixels = min_pixels if min_pixels is not None else IMAGE_MIN_PIXELS
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels ({max_pixels}) must be at least min_pixels ({min_pixels})")
    if min(height, width) <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(
            f"absolute aspect ratio must be smaller than {MAX_RATIO}, got {max(height, width) / min(height, width)}"
        )
    h_bar = max(factor, round_by_factor(height, factor))
    w_bar = max(factor, round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = floor_by_factor(height / beta, factor)
        w_bar = floor_by_factor(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = ceil_by_factor(height * beta, factor)
        w_bar = ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


def smart_nframes(
    total_frames: int,
    video_fps: float,
    *,
    nframes: int | None = None,
    fps: float | None = None,
    min_frames: int | None = None,
    max_frames: int | None = None,
) -> int:
    """qwen-vl-utils' frame count: `nframes` mode when given, else fps mode. Raises ValueError when the
    result is outside [2, total_frames] (a clip shorter than the request), as qwen-vl-utils does."""
    if nframes is not None:
        count = round_by_factor(nframes, FRAME_FACTOR)
    else:
        rate = FPS if fps is None else fps
        low = ceil_by_factor(FPS_MIN_FRAMES if min_frames is None else min_frames, FRAME_FACTOR)
        cap = min(FPS_MAX_FRAMES, total_frames) if max_frames is None else max_frames
        high = floor_by_factor(cap, FRAME_FACTOR)
        wanted = total_frames / video_fps * rate
        count = floor_by_factor(min(min(max(wanted, low), high), total_frames), FRAME_FACTOR)
    if not (FRAME_FACTOR <= count <= total_frames):
        raise ValueError(f"nframes should in interval [{FRAME_FACTOR}, {total_frames}], but got {count}.")
    return count


def frame_count_to_sample(total_frames: int, video_fps: float, **rule: float | None) -> int:
    """`smart_nframes` (same keywords), except that a clip too short for the request gives what it
    has instead of failing.

    qwen-vl-utils raises for a 5-frame clip asked for 16 frames; a curation run should not lose the
    question for it. The count is then the clip's frame count floored to an even number (the same
    clamp fps mode applies), and a one-frame clip gives its one frame.
    """
    try:
        return smart_nframes(total_frames, video_fps, **rule)
    except ValueError:
        if total_frames <= 0:
            raise
        nframes = rule.get("nframes")
        wanted = round_by_factor(nframes, FRAME_FACTOR) if nframes is not None else total_frames
        return max(1, floor_by_factor(min(max(wanted, FRAME_FACTOR), total_frames), FRAME_FACTOR))


def linspace_indices(total_frames: int, n: int) -> list[int]:
    """`linspace(0, total_frames - 1, n).round()`: n frames over the whole clip, first and last included.

    numpy's float64 linspace; qwen-vl-utils uses torch's float32 one. They agree for every clip
    shorter than 60,000 frames at 16, 32 and 64 frames (checked exhaustively); on hour-long clips at
    hundreds of frames torch's float32 rounding can move an index by one frame.
    """
    if total_frames <= 0:
        raise ValueError(f"frame count must be positive, got {total_frames}")
    if not 1 <= n <= total_frames:
        raise ValueError(f"cannot take {n} frames from a {total_frames}-frame clip")
    if n == 1:
        return [0]
    return [int(i) for i in np.round(np.linspace(0, total_frames - 1, n))]


def video_frame_max_pixels(
    nframes: int,
    min_pixels: float,
    max_pixels: float,
    total_pixels: float = VIDEO_TOTAL_PIXELS,
) -> float:
    """The per-frame pixel ceiling qwen-vl-utils' `fetch_video` applies before `smart_resize`.

    min(max_pixels, max(min(768*28*28, total_pixels / nframes * 2), 1.05 * min_pixels)): the
    ceiling never exceeds 768 patches a frame, shrinks when many frames share the total budget, and
    never drops below the minimum.
    """
    ceiling = max(min(VIDEO_FRAME_MAX_PIXELS, total_pixels / nframes * FRAME_FACTOR), int(min_pixels * 1.05))
    return min(max_pixels, ceiling)
