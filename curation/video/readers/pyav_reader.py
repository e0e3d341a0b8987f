"""PyAV, sequential: decode frames in presentation order from the start, convert only wanted ones.

FFmpeg hands PyAV a phone clip's frames as stored (sideways) with the display rotation attached:
frames are turned upright here. Large frames are converted straight to the target size by
FFmpeg's scaler (`to_ndarray(width=, height=)`), so no full-size RGB copy is ever made; its frame
threads still hold full-size YUV frames, which is what bounds its memory on 4K.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curation.video.container import StreamHeader, demux_frame_times
from curation.video.errors import UNDECODABLE, VideoError, clean_decoder_message
from curation.video.readers.base import OpenVideo, check_indices, make_info, rotate_upright, truncated_stream


class PyAVVideo(OpenVideo):
    name = "pyav"

    def __init__(self, path: Path, header: StreamHeader) -> None:
        import av

        self._av = av
        self._path = path
        self._container = self._open()
        self._fresh = True  # nothing demuxed or decoded from this container yet
        self._rotation = header.rotation
        # Every packet's timestamp (demux only, no decoding): the frame count also for MKV/WebM,
        # which store none, and true times for variable-frame-rate clips.
        self._times = demux_frame_times(path)
        frame_count = len(self._times) if self._times else header.frame_count
        width, height = header.display_size
        self.info = make_info(frame_count, header.fps, width, height, header.codec)

    def _open(self):  # -> av.container.InputContainer
        try:
            container = self._av.open(str(self._path), metadata_errors="ignore")
        except (self._av.FFmpegError, ValueError) as err:
            raise VideoError(f"cannot decode: {clean_decoder_message(str(err))}", UNDECODABLE) from None
        if not container.streams.video:
            container.close()
            raise VideoError("no video stream", UNDECODABLE)
        # Frame threading decodes several frames at once; output order stays presentation order.
        container.streams.video[0].thread_type = "AUTO"
        return container

    def frame_times(self) -> list[float] | None:
        return list(self._times) if self._times else None

    def read(
        self, indices: Sequence[int], size: tuple[int, int] | None = None, *, scaled: bool = False
    ) -> list[np.ndarray]:
        from curation.video.resize import resize_frame

        wanted = check_indices(indices, self.info.frame_count)
        if not self._fresh:
            # Decoding must start at frame 0: reopen instead of seeking.
            self._container.close()
            self._container = self._open()
        self._fresh = False
        stream = self._container.streams.video[0]
        convert: dict[str, object] = {"format": "rgb24"}
        if scaled and size is not None:
            # The scaler works on the stored (unrotated) frame.
            width, height = size if self._rotation in (0, 180) else (size[1], size[0])
            convert.update(width=width, height=height, interpolation="BICUBIC")
        wanted_set, last = set(wanted), wanted[-1]
        frames: list[np.ndarray] = []
        decoded = 0
        try:
            for index, frame in enumerate(self._container.decode(stream)):
                decoded = index + 1
                if index in wanted_set:
                    rgb = rotate_upright(frame.to_ndarray(**convert), self._rotation)
                    frames.append(resize_frame(rgb, size) if size is not None else rgb)
                if index >= last:
                    break
        except self._av.FFmpegError as err:
            raise VideoError(f"cannot decode: {clean_decoder_message(str(err))}", UNDECODABLE) from None
        if len(frames) < len(wanted):
            raise truncated_stream(decoded, self.info.frame_count)
        return frames

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
