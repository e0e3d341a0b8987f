"""decord: seeks to the keyframe before each wanted frame and decodes forward (`get_batch`).

Decodes only what the sample needs, so on long videos it beats every sequential reader. The
package installed is eva-decord, which provides the same `decord` module. decord turns rotated
clips upright itself, keeps an index with every frame's presentation time, and can decode straight
to a smaller size (`width`/`height`, in displayed orientation): used for large sources, where
full-size 4K frames would cost over a gigabyte for 16 frames (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curation.video.container import StreamHeader
from curation.video.errors import READER_UNAVAILABLE, UNDECODABLE, VideoError, clean_decoder_message
from curation.video.readers.base import OpenVideo, check_indices, make_info


class DecordVideo(OpenVideo):
    name = "decord"

    def __init__(self, path: Path, header: StreamHeader) -> None:
        try:
            import decord
        except ImportError as err:
            raise VideoError(
                f"reader unavailable: decord cannot be imported ({err})", READER_UNAVAILABLE
            ) from None
        self._decord = decord
        self._path = path
        self._vr = self._open()
        try:
            frame_count, fps = len(self._vr), self._vr.get_avg_fps()
        except Exception as err:
            raise VideoError(f"cannot decode: {clean_decoder_message(str(err))}", UNDECODABLE) from None
        # decord exposes no frame size or codec; the container header has both (decord rotates).
        width, height = header.display_size
        self.info = make_info(frame_count, fps, width, height, header.codec)

    def _open(self, size: tuple[int, int] | None = None):  # -> decord.VideoReader
        kwargs = {"width": size[0], "height": size[1]} if size else {}
        try:
            return self._decord.VideoReader(str(self._path), ctx=self._decord.cpu(0), **kwargs)
        except Exception as err:  # decord raises DECORDError, RuntimeError or ValueError by case
            raise VideoError(f"cannot decode: {clean_decoder_message(str(err))}", UNDECODABLE) from None

    def frame_times(self) -> list[float] | None:
        try:
            stamps = self._vr.get_frame_timestamp(np.arange(self.info.frame_count))
        except Exception:  # an index without timestamps: fall back to a constant rate
            return None
        return [float(t) for t in stamps[:, 0]]

    def read(
        self, indices: Sequence[int], size: tuple[int, int] | None = None, *, scaled: bool = False
    ) -> list[np.ndarray]:
        from curation.video.resize import resize_frame

        wanted = check_indices(indices, self.info.frame_count)
        full = (self.info.width, self.info.height)
        scaled = scaled and size is not None and size != full
        reader = self._open(size) if scaled else self._vr
        try:
            batch = reader.get_batch(wanted).asnumpy()
        except Exception as err:
            raise VideoError(f"cannot decode: {clean_decoder_message(str(err))}", UNDECODABLE) from None
        frames = [np.ascontiguousarray(frame) for frame in batch]
        del batch
        return [resize_frame(f, size) for f in frames] if size is not None else frames

    def close(self) -> None:
        self._vr = None
