"""Images through the video path, read with Pillow.

- `ImageFile`: a still is a one-frame clip at t = 0.0. The frame is what a viewer shows: EXIF
  orientation applied (a phone photo is stored sideways with a tag saying so), 16-bit and 32-bit
  greyscale scaled to 8 bits (a plain `convert("RGB")` clips them to white), palette and alpha
  flattened onto white, CMYK and every other mode converted to RGB. Animated files give their first
  frame.
- `AnimatedImage`: an animated GIF or WebP annotated as a *video* (TGIF-QA's convention) is a clip:
  every frame in order, frame times from the per-frame durations stored in the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curation.video.errors import UNDECODABLE, ZERO_DURATION, VideoError, clean_decoder_message
from curation.video.info import VideoInfo
from curation.video.readers.base import OpenVideo, check_indices, make_info

# Browsers show GIF frames declared shorter than 20 ms (often 0) for 100 ms; so do we.
_MIN_FRAME_MS = 20
_DEFAULT_FRAME_MS = 100


def _open_error(err: Exception, path: Path) -> VideoError:
    from PIL import Image

    if isinstance(err, Image.DecompressionBombError):
        return VideoError(f"image too large: {err}", UNDECODABLE)
    message = str(err).replace(str(path), "").replace("''", "").strip(" :")
    return VideoError(f"cannot decode image: {clean_decoder_message(message)}", UNDECODABLE)


_PIL_ERRORS: tuple[type[Exception], ...] = (OSError, SyntaxError, ValueError, EOFError)


class ImageFile(OpenVideo):
    """A still image (the first frame of an animated file), upright and in 8-bit RGB."""

    name = "pillow"

    def __init__(self, path: Path) -> None:
        from PIL import Image

        try:
            with Image.open(path) as img:
                img.load()
                codec = (img.format or "").lower()
                self._rgb = to_rgb(upright(img))
        except (Image.DecompressionBombError, *_PIL_ERRORS) as err:
            raise _open_error(err, path) from None
        height, width = self._rgb.shape[:2]
        self.info = VideoInfo(duration=0.0, fps=0.0, frame_count=1, width=width, height=height, codec=codec)

    def read(
        self, indices: Sequence[int], size: tuple[int, int] | None = None, *, scaled: bool = False
    ) -> list[np.ndarray]:
        from curation.video.resize import resize_frame

        check_indices(indices, 1)
        return [resize_frame(self._rgb, size) if size is not None else self._rgb]


class AnimatedImage(OpenVideo):
    """An animated GIF / WebP (or APNG) as a video clip; a single-frame file is a one-frame clip."""

    name = "pillow"

    def __init__(self, path: Path) -> None:
        from PIL import Image

        self._path = path
        try:
            with Image.open(path) as img:
                codec = (img.format or "").lower()
                count = int(getattr(img, "n_frames", 1))
                durations = []
                for i in range(count):
                    img.seek(i)
                    if "duration" not in img.info:
                        img.load()  # WebP sets a frame's duration only when it is decoded
                    durations.append(float(img.info.get("duration") or 0))
                width, height = img.size
        except (Image.DecompressionBombError, *_PIL_ERRORS) as err:
            raise _open_error(err, path) from None
        if count <= 0:
            raise VideoError("zero duration: the animation holds no frames", ZERO_DURATION)
        shown = [d if d >= _MIN_FRAME_MS else _DEFAULT_FRAME_MS for d in durations]
        starts = np.concatenate([[0.0], np.cumsum(shown)[:-1]]) / 1000.0
        self._times = [float(t) for t in starts]
        total_s = sum(shown) / 1000.0
        self.info = make_info(count, count / total_s, width, height, codec)

    def frame_times(self) -> list[float] | None:
        return list(self._times)

    def read(
        self, indices: Sequence[int], size: tuple[int, int] | None = None, *, scaled: bool = False
    ) -> list[np.ndarray]:
        from PIL import Image

        from curation.video.resize import resize_frame

        wanted = check_indices(indices, self.info.frame_count)
        frames = []
        try:
            with Image.open(self._path) as img:
                for index in wanted:  # increasing: Pillow composites GIF frames going forward
                    img.seek(index)
                    rgb = to_rgb(img)
                    frames.append(resize_frame(rgb, size) if size is not None else rgb)
        except (Image.DecompressionBombError, *_PIL_ERRORS) as err:
            raise _open_error(err, self._path) from None
        return frames


def upright(img):  # PIL.Image.Image -> PIL.Image.Image
    """Apply the EXIF orientation tag (1..8) so the pixels are as a viewer shows them."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(img) or img
    except (*_PIL_ERRORS, KeyError, TypeError):  # a malformed EXIF block: keep the stored pixels
        return img


def to_rgb(img) -> np.ndarray:  # img: PIL.Image.Image
    """8-bit RGB pixels of any Pillow mode; transparency is flattened onto white."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _wide_grey_to_rgb(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def _wide_grey_to_rgb(img) -> np.ndarray:
    """16-bit (or 32-bit int / float) greyscale to 8 bits by its bit depth, not by clipping at 255."""
    arr = np.asarray(img)
    if img.mode == "F":
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scaled = np.zeros(arr.shape, np.float64) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
    elif img.mode.startswith("I;16"):
        scaled = arr.astype(np.float64) / 257.0  # 65535 -> 255
    else:  # "I": PNG 16-bit greyscale decodes to it; use the range the values occupy
        top = 65535.0 if arr.size and arr.max() <= 65535 and arr.min() >= 0 else float(max(arr.max(), 1))
        scaled = np.clip(arr.astype(np.float64), 0, None) / top * 255.0
    grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)
