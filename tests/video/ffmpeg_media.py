"""Real-world media made with Debian's ffmpeg (a test dependency `make setup` installs).

Frames are index-coded (`media_makers.coded_frame`), piped to ffmpeg as raw RGB, so a test can read
from the pixels which source frame a reader returned, whatever the codec, container, rotation or
frame timing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from media_makers import coded_frame


def ffmpeg() -> str:
    """The ffmpeg binary; missing is a failure in CI (make setup installs it) and a skip elsewhere."""
    found = shutil.which("ffmpeg")
    if found is None:
        message = "ffmpeg not found: `make setup` installs Debian's ffmpeg (apt-get install ffmpeg)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def encode(
    path: Path,
    n_frames: int,
    size: tuple[int, int],
    fps: float = 10,
    args: Sequence[str] = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
    frame: Callable[[int, int, int], np.ndarray] = coded_frame,
) -> Path:
    """Pipe `n_frames` index-coded frames through ffmpeg with the output `args` into `path`."""
    width, height = size
    raw = b"".join(frame(i, width, height).tobytes() for i in range(n_frames))
    cmd = [ffmpeg(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"]
    cmd += ["-r", str(fps), "-i", "-", *args, str(path)]
    subprocess.run(cmd, input=raw, check=True, capture_output=True)
    return path


def rotate(src: Path, dst: Path, degrees: int) -> Path:
    """Copy `src` with a display rotation (what a phone writes for a portrait clip), no re-encode."""
    cmd = [ffmpeg(), "-v", "error", "-y", "-i", str(src), "-c", "copy"]
    subprocess.run([*cmd, "-metadata:s:v:0", f"rotate={degrees}", str(dst)], check=True, capture_output=True)
    return dst


def variable_rate(path: Path, size: tuple[int, int] = (160, 120)) -> Path:
    """3 s at 30 fps then 6 s at 5 fps (90 + 30 frames): a phone clip whose rate drops in the dark."""
    setpts = "setpts='if(lt(N,90),N/30,3+(N-90)/5)/TB'"
    args = ["-vf", setpts, "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "ultrafast"]
    return encode(path, 120, size, fps=30, args=[*args, "-pix_fmt", "yuv420p"])


def ffprobe_times(path: Path) -> list[float]:
    """Presentation time of every video frame, as ffprobe reports it, from the first frame."""
    probe = shutil.which("ffprobe") or "ffprobe"
    out = subprocess.run(
        [
            probe,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    times = sorted(float(f["pts_time"]) for f in json.loads(out)["frames"] if "pts_time" in f)
    return [t - times[0] for t in times]
