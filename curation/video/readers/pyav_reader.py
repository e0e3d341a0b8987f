"""PyAV, sequential: decode frames in presentation order from the start, convert only wanted ones."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curation.video.container import StreamHeader
from curation.video.errors import UNDECODABLE, VideoError, clean_decoder_message
from curation.video.readers.base import OpenVideo, check_indices, make_info, truncated_stream


class PyAVVideo(OpenVideo):
    name = "pyav"

    def __init__(self, path: Path, header: StreamHeader) -> None:
        import av

        self._av = av
        self._path = path
        self._container = self._open()
        self._fresh = True  # nothing demuxed or decoded from this container yet
        stream = self._container.streams.video[0]
        frame_count = header.frame_count
        if frame_count <= 0:
            # MKV/WebM do not store a count: count packets (demux only, no decoding).
            frame_count = self._count_packets()
        self.info = make_info(
            frame_count, header.fps, stream.codec_context.width, stream.codec_context.height, header.codec
        )

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

    def _count_packets(self) -> int:
        stream = self._container.streams.video[0]
        try:
            count = sum(1 for packet in self._container.demux(stream) if packet.size)
        except self._av.FFmpegError as err:
            raise VideoError(f"cannot decode: {clean_decoder_message(str(err))}", UNDECODABLE) from None
        self._container.close()
        self._container = self._open()
        return count

    def read(self, indices: Sequence[int]) -> list[np.ndarray]:
        wanted = check_indices(indices, self.info.frame_count)
        if not self._fresh:
            # Decoding must start at frame 0: reopen instead of seeking.
            self._container.close()
            self._container = self._open()
        self._fresh = False
        stream = self._container.streams.video[0]
        wanted_set, last = set(wanted), wanted[-1]
        frames: list[np.ndarray] = []
        decoded = 0
        try:
            for index, frame in enumerate(self._container.decode(stream)):
                decoded = index + 1
                if index in wanted_set:
                    frames.append(frame.to_ndarray(format="rgb24"))
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
