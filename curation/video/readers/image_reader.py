"""Still images pass through the video path as a one-frame clip at t = 0.0 (read with Pillow)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curation.video.errors import UNDECODABLE, VideoError, clean_decoder_message
from curation.video.info import VideoInfo
from curation.video.readers.base import OpenVideo, check_indices


class ImageFile(OpenVideo):
    """The first frame of animated GIF/WebP files; transparency is flattened onto white."""

    name = "pillow"

    def __init__(self, path: Path) -> None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                img.load()
                codec = (img.format or "").lower()
                self._rgb = _to_rgb(img)
        except Image.DecompressionBombError as err:
            raise VideoError(f"image too large: {err}", UNDECODABLE) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            message = str(err).replace(str(path), "").replace("''", "").strip(" :")
            raise VideoError(f"cannot decode image: {clean_decoder_message(message)}", UNDECODABLE) from None
        height, width = self._rgb.shape[:2]
        self.info = VideoInfo(duration=0.0, fps=0.0, frame_count=1, width=width, height=height, codec=codec)

    def read(self, indices: Sequence[int]) -> list[np.ndarray]:
        check_indices(indices, 1)
        return [self._rgb]


def _to_rgb(img) -> np.ndarray:  # img: PIL.Image.Image
    from PIL import Image

    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
