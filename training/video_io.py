"""Frames for training and evaluation, decoded by `curation.video` (one sampling implementation).

Curation extracts frames with `curation.video` (uniform centre sampling, decoder fallbacks, resize to
a pixel budget on Qwen's 28 px grid); training and evaluation must see the *same* frames, so this
module is a thin adapter over it: it adds no sampling rule of its own, only

- `VideoClip`: frames (T, H, W, 3) uint8 + the facts a Qwen processor needs (`video_metadata`:
  source fps, frame count, sampled indices, from which `second_per_grid_ts` follows);
- `load_clip(path, cfg)` / `load_image(path, cfg)`;
- `MediaLoader`: resolves `media_path` against a media root (never outside it) and keeps a small LRU
  cache, because GRPO asks for the same video G times per step and the semantic reward asks again.
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

__all__ = [
    "MediaLoader",
    "VideoClip",
    "VideoConfig",
    "VideoDecodeConfig",
    "load_clip",
    "load_image",
    "resolve_media_path",
]


def VideoDecodeConfig(  # noqa: N802 - a config constructor, named like the class it returns
    num_frames: int = 16, max_pixels: int = 128 * 28 * 28, reader: str | None = None, **kwargs: Any
) -> VideoConfig:
    """`curation.video.VideoConfig` with the training knobs by name (frames, pixel budget, reader).

    Training never rejects a sample for being small (`min_pixels` is curation's quality filter, and
    the Qwen processor upsamples to its own minimum), so `min_pixels` defaults to 1 here.
    """
    values: dict[str, Any] = {
        "num_frames": num_frames,
        "max_frames": max(num_frames, kwargs.pop("max_frames", num_frames)),
        "max_pixels": max_pixels,
        "min_pixels": kwargs.pop("min_pixels", 1),
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


def _curation_loader() -> Any | None:
    """`curation.video`'s own high-level loader when it exposes one (preferred: same fallbacks)."""
    try:
        from curation.video import loader  # type: ignore[attr-defined]
    except ImportError:
        return None
    return loader


def load_clip(path: str | Path, cfg: VideoConfig | None = None) -> VideoClip:
    """Decode the configured frames of `path` with curation's readers, indices and resize rule.

    Readers are tried in `cfg.readers_to_try()` order; only decoder-specific failures move on to the
    next reader (a truncated or missing file fails the same way everywhere). Raises
    `curation.video.errors.VideoError` with the last reason.
    """
    from curation.video.errors import DECODER_SPECIFIC_KINDS, READER_UNAVAILABLE, VideoError
    from curation.video.readers import open_video
    from curation.video.resize import fit_to_budget, resize_frame
    from curation.video.sampling import frame_indices, timestamps

    cfg = cfg or VideoDecodeConfig()
    path = Path(path)
    last: VideoError | None = None
    for reader in cfg.readers_to_try():
        try:
            video = open_video(path, reader)
        except ImportError as exc:  # decoder not installed here
            last = VideoError(f"reader unavailable: {reader}: {exc}", READER_UNAVAILABLE)
            continue
        except VideoError as exc:
            last = exc
            if exc.kind in DECODER_SPECIFIC_KINDS:
                continue
            raise
        try:
            with video:
                info = video.info
                indices = frame_indices(info, cfg)
                frames = video.read(indices)
        except VideoError as exc:
            last = exc
            if exc.kind in DECODER_SPECIFIC_KINDS:
                continue
            raise
        size = fit_to_budget(info.width, info.height, cfg.max_pixels, cfg.size_factor)
        frames = [resize_frame(f, size) for f in frames]
        return VideoClip(
            frames=np.stack(frames).astype(np.uint8, copy=False),
            indices=list(indices),
            timestamps=timestamps(list(indices), info.fps),
            fps=float(info.fps),
            frame_count=int(info.frame_count),
            reader=reader,
        )
    assert last is not None
    raise last


def load_image(path: str | Path, max_pixels: int | None = None, size_factor: int = 28) -> Image.Image:
    """An RGB image, downscaled to `max_pixels` with the curation rule when given."""
    from curation.video.resize import fit_to_budget

    with Image.open(path) as img:
        image = img.convert("RGB")
    if max_pixels is not None:
        size = fit_to_budget(image.width, image.height, max_pixels, size_factor)
        if size != image.size:
            image = image.resize(size, Image.BICUBIC)
    return image


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
        self.image_max_pixels = image_max_pixels
        self.maxsize = maxsize
        self._cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

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
        return self._cached("image", path, lambda: load_image(path, self.image_max_pixels))
