"""Index-coded frames and small media files, as plain functions (test modules import them by name;
a conftest cannot be imported reliably).

Frame i of an index-coded clip shows i in binary as six black/white blocks along the bottom (plus
a red square top-left for the colour order and orientation), so a test can tell from the pixels
which frame a reader returned, whatever the codec does to exact grey levels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BITS = 6  # up to 64 distinct frames


def _block(bit: int, width: int, height: int) -> tuple[slice, slice]:
    """Block of bit `bit` in relative coordinates, so a downscaled frame still reads back."""
    x0 = int((0.04 + 0.16 * bit) * width)
    return slice(int(0.70 * height), int(0.90 * height)), slice(x0, x0 + int(0.12 * width))


def coded_frame(index: int, width: int, height: int) -> np.ndarray:
    """RGB frame whose bottom blocks spell `index` in binary; a red square marks the colour order."""
    frame = np.full((height, width, 3), 128, np.uint8)
    frame[: height // 6, : width // 8] = (230, 20, 20)
    for bit in range(BITS):
        rows, cols = _block(bit, width, height)
        frame[rows, cols] = 255 if (index >> bit) & 1 else 0
    return frame


def frame_number(frame: np.ndarray) -> int:
    """Inverse of `coded_frame`, from the centre of each block."""
    height, width = frame.shape[:2]
    index = 0
    for bit in range(BITS):
        rows, cols = _block(bit, width, height)
        core = frame[rows, cols][2:-2, 2:-2]
        if core.mean() > 128:
            index |= 1 << bit
    return index


def write_audio_only(path: Path) -> Path:
    """A valid MP4 holding half a second of AAC silence and no video track."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
