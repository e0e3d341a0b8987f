"""Frames for training and evaluation, decoded by `curation.video` (one sampling implementation).

Curation extracts frames with `curation.video.sample_frames` (qwen-vl-utils' frame count and
linspace positions on presentation timestamps, `smart_resize` once from the source, decoder
fallbacks); training, evaluation and the semantic reward must see the *same* frames, so this module
is a thin adapter over it. It adds no sampling or resizing rule of its own, only

- `VideoClip`: frames (T, H, W, 3) uint8 + the facts a Qwen processor needs (`video_metadata`:
  source fps, frame count, sampled indices, from which `second_per_grid_ts` follows);
- `load_clip(path, cfg)` / `load_image(path, cfg)`;
- `MediaLoader`: resolves `media_path` against a media root (never outside it) and keeps a small LRU
  cache, because GRPO asks for the same video G times per step.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from curation.video.config import VideoConfig
from curation.video.qwen_rules import VIDEO_MIN_PIXELS

__all__ = [
    "MediaLoader",
    "VideoClip",
    "VideoConfig",
    "VideoDecodeConfig",
    "decode_config_from_args",
    "load_clip",
    "load_image",
    "resolve_media_path",
]


def VideoDecodeConfig(  # noqa: N802 - a config constructor, named like the class it returns
    num_frames: int = 16, max_pixels: int = 128 * 28 * 28, reader: str | None = None, **kwargs: Any
) -> VideoConfig:
    """`curation.video.VideoConfig` with the training knobs by name (frames, pixel budget, reader).

    `min_pixels` is the smart_resize minimum (default: Qwen's video minimum, or `max_pixels` when
    that is lower). Training never rejects a sample for being small (`min_source_pixels` is
    curation's quality filter), so that threshold is 1 here.
    """
    values: dict[str, Any] = {
        "num_frames": num_frames,
        "max_pixels": max_pixels,
        "min_pixels": kwargs.pop("min_pixels", None) or min(VIDEO_MIN_PIXELS, max_pixels),
        "min_source_pixels": kwargs.pop("min_source_pixels", 1),
        "sampling": kwargs.pop("sampling", "uniform"),
    }
    if reader is not None:
        values["reader"] = reader
    values.update(kwargs)
    return VideoConfig(**values)


@dataclass
class VideoClip:
    """Sampled frames of one video plus what the processor needs to place them in time."""

    frames: np.ndarray  # (T, H, W, 3) uint8, RGB
    indices: list[int]  # indices into the decoder's stream
    timestamps: list[float]  # seconds
    fps: float  # source frame rate
    frame_count: int  # frames in the source stream
    reader: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def metadata(self) -> dict[str, Any]:
        """`video_metadata` for transformers' processors (→ sampled fps → `second_per_grid_ts`)."""
        return {
            "total_num_frames": int(self.frame_count),
            "fps": float(self.fps) if self.fps else None,
            "frames_indices": [int(i) for i in self.indices],
            "duration": float(self.frame_count / self.fps) if self.fps else None,
            "height": int(self.frames.shape[1]),
            "width": int(self.frames.shape[2]),
            "video_backend": self.reader or None,
        }

    def as_images(self) -> list[Image.Image]:
        """The frames as PIL images (the `frames_as_images` mode feeds them to the image processor)."""
        return [Image.fromarray(f) for f in self.frames]


def decode_config_from_args(args: Any) -> VideoConfig:
    """The frame recipe of a training / evaluation run (`VideoScriptArguments`' `video_*` keys)."""
    return VideoDecodeConfig(
        num_frames=args.video_num_frames,
        max_pixels=args.video_max_pixels,
        min_pixels=args.video_min_pixels,
        reader=args.video_reader,
        sampling=getattr(args, "video_sampling", "uniform"),
        fps=getattr(args, "video_fps", 2.0),
        min_frames=getattr(args, "video_min_frames", 4),
        max_frames=getattr(args, "video_max_frames", 768),
        image_min_pixels=args.image_min_pixels,
        image_max_pixels=args.image_max_pixels,
    )


def load_clip(path: str | Path, cfg: VideoConfig | None = None) -> VideoClip:
    """Decode the configured frames of `path` with `curation.video.sample_frames` (its reader fallbacks,
    Qwen's frame count, positions and smart_resize). Bad media raise `curation.video.VideoError`."""
    from curation.video import sample_frames

    sampled = sample_frames(Path(path), cfg or VideoDecodeConfig(), image=False)
    return VideoClip(
        frames=np.stack(sampled.frames).astype(np.uint8, copy=False),
        indices=list(sampled.indices),
        timestamps=list(sampled.timestamps),
        fps=float(sampled.info.fps),
        frame_count=int(sampled.info.frame_count),
        reader=sampled.reader,
    )


def load_image(path: str | Path, cfg: VideoConfig | None = None) -> Image.Image:
    """An upright 8-bit RGB image through the same loader, smart_resized to the config's image budget."""
    from curation.video import sample_frames

    sampled = sample_frames(Path(path), cfg or VideoDecodeConfig(), image=True)
    return Image.fromarray(sampled.frames[0])


def resolve_media_path(media_root: str | Path | None, media_path: str) -> Path:
    """`media_root / media_path`, refusing absolute paths and `..` escapes (rows are data, not code)."""
    rel = Path(str(media_path).removeprefix("./"))
    if media_root is None:
        return rel
    root = Path(media_root).resolve()
    if rel.is_absolute():
        raise ValueError(f"media_path must be relative to the media root, got {media_path!r}")
    full = (root / rel).resolve()
    if root != full and root not in full.parents:
        raise ValueError(f"media_path {media_path!r} escapes the media root {root}")
    return full


class MediaLoader:
    """Load a row's media (video clip or image) from a media root, with a small thread-safe LRU cache.

    The cache is keyed by the resolved path: the decode settings are fixed per loader. `maxsize`
    bounds memory (16 frames at 128·28·28 px ≈ 4.8 MB per clip).
    """

    def __init__(
        self,
        media_root: str | Path | None,
        video: VideoConfig | None = None,
        image_max_pixels: int | None = None,
        maxsize: int = 64,
    ) -> None:
        self.media_root = Path(media_root) if media_root is not None else None
        self.video = video or VideoDecodeConfig()
        self.image_max_pixels = image_max_pixels or self.video.image_max_pixels
        # Images: same loader, their own pixel budget (Qwen allows more pixels for a still image).
        self._image_cfg = self.video.model_copy(
            update={
                "image_max_pixels": self.image_max_pixels,
                "image_min_pixels": min(self.video.image_min_pixels, self.image_max_pixels),
                "min_source_pixels": 1,
            }
        )
        self.maxsize = maxsize
        self._cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @classmethod
    def from_args(cls, args: Any) -> MediaLoader:
        """The loader of a training / evaluation run: media root, frame recipe, image budget, cache size."""
        return cls(args.media_root, decode_config_from_args(args), maxsize=args.media_cache_size)

    def __getstate__(self) -> dict[str, Any]:
        # Dataloader workers started with "spawn" pickle the collator: ship settings, not the cache/lock.
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def path(self, media_path: str) -> Path:
        return resolve_media_path(self.media_root, media_path)

    def _cached(self, kind: str, path: Path, load: Any) -> Any:
        key = (kind, str(path))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                self.hits += 1
                return self._cache[key]
        value = load()
        with self._lock:
            self.misses += 1
            self._cache[key] = value
            while len(self._cache) > self.maxsize:
                self._cache.popitem(last=False)
        return value

    def clip(self, media_path: str | Path) -> VideoClip:
        path = Path(media_path) if Path(media_path).is_absolute() else self.path(str(media_path))
        return self._cached("video", path, lambda: load_clip(path, self.video))

    def image(self, media_path: str | Path) -> Image.Image:
        path = Path(media_path) if Path(media_path).is_absolute() else self.path(str(media_path))
        return self._cached("image", path, lambda: load_image(path, self._image_cfg))
