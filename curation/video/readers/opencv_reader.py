"""OpenCV, sequential only: grab() through the file, retrieve() only the wanted frames.

Never seek: CAP_PROP_POS_FRAMES on H.264 re-decodes from the previous keyframe for every frame
(about 5x slower for 16 frames of a 10 s clip here), and on some files lands on the wrong frame.
grab() decodes without the colour conversion, so skipped frames cost only the decode. OpenCV's
FFmpeg backend turns rotated clips upright (CAP_PROP_ORIENTATION_AUTO) and reports the displayed
size. It keeps no index, so the frame count and times come from the container's packet timestamps
(its own CAP_PROP_FRAME_COUNT is an estimate from duration x fps on MKV and on VFR clips).
OpenCV cannot decode to a smaller size: large frames are resized after each retrieve, one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curation.video.container import StreamHeader, demux_frame_times
from curation.video.errors import UNDECODABLE, VideoError
from curation.video.readers.base import OpenVideo, check_indices, make_info, truncated_stream


class OpenCVVideo(OpenVideo):
    name = "opencv"

    def __init__(self, path: Path, header: StreamHeader) -> None:
        import cv2

        self._path = path
        self._cap = self._open()
        self._position = 0  # index of the frame the next grab() decodes
        self._times = demux_frame_times(path)
        count = len(self._times) if self._times else int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.info = make_info(
            count,
            float(self._cap.get(cv2.CAP_PROP_FPS)),
            int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            header.codec,
        )

    def _open(self):  # -> cv2.VideoCapture
        import cv2

        cap = cv2.VideoCapture(str(self._path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise VideoError("cannot decode: OpenCV could not open the file", UNDECODABLE)
        return cap

    def frame_times(self) -> list[float] | None:
        return list(self._times) if self._times else None

    def read(
        self, indices: Sequence[int], size: tuple[int, int] | None = None, *, scaled: bool = False
    ) -> list[np.ndarray]:
        import cv2

        from curation.video.resize import resize_frame

        wanted = check_indices(indices, self.info.frame_count)
        if wanted[0] < self._position:
            # A second read further back: start over rather than seek.
            self._cap.release()
            self._cap, self._position = self._open(), 0
        frames: list[np.ndarray] = []
        for target in wanted:
            while self._position <= target:
                if not self._cap.grab():
                    raise truncated_stream(self._position, self.info.frame_count)
                self._position += 1
            ok, bgr = self._cap.retrieve()
            if not ok or bgr is None:
                raise VideoError(f"cannot decode: OpenCV could not decode frame {target}", UNDECODABLE)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            frames.append(resize_frame(rgb, size) if size is not None else rgb)
        return frames

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
