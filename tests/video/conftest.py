"""Real encoded media made on the fly: index-coded clips, H.264 with B-frames, images, bad files.

Frame i of an index-coded clip shows i in binary as six black/white blocks along the bottom (plus
a red square for the colour order), so a test can tell from the pixels which frame a reader
returned, whatever the codec does to exact grey levels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from media_makers import coded_frame, frame_number, write_audio_only  # noqa: F401 - re-exported to tests


def write_mp4v(path: Path, n_frames: int, fps: float = 10, size: tuple[int, int] = (320, 240)) -> Path:
    import cv2

    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for i in range(n_frames):
        writer.write(cv2.cvtColor(coded_frame(i, width, height), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_h264(
    path: Path, n_frames: int, fps: int = 10, size: tuple[int, int] = (320, 240), fmt: str | None = None
) -> Path:
    """H.264 with B-frames and a 12-frame GOP, written with PyAV's bundled libx264.

    `fmt="matroska"` makes an MKV, a container that stores no frame count.
    """
    import av

    width, height = size
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(
            "libx264", rate=fps, options={"g": "12", "bf": "2", "preset": "ultrafast"}
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(coded_frame(i, width, height), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip(media_dir: Path) -> Path:
    """40 frames, 10 fps, 320x240, mp4v (what the synthetic source writes)."""
    return write_mp4v(media_dir / "clip.mp4", 40)


@pytest.fixture(scope="session")
def h264_clip(media_dir: Path) -> Path:
    return write_h264(media_dir / "clip_h264.mp4", 30)


@pytest.fixture(scope="session")
def mkv_clip(media_dir: Path) -> Path:
    return write_h264(media_dir / "clip.mkv", 30, fmt="matroska")


@pytest.fixture(scope="session")
def hd_clip(media_dir: Path) -> Path:
    """1280x720, above the default pixel budget."""
    return write_mp4v(media_dir / "hd.mp4", 6, size=(1280, 720))


@pytest.fixture(scope="session")
def image_file(media_dir: Path) -> Path:
    from PIL import Image

    path = media_dir / "still.png"
    Image.fromarray(coded_frame(5, 200, 150)).save(path)
    return path


@pytest.fixture(scope="session")
def bad_media(media_dir: Path, clip: Path) -> dict[str, Path]:
    """One file per failure kind; "missing" names a file that does not exist."""
    folder = media_dir / "bad"
    folder.mkdir()
    data = clip.read_bytes()
    files = {
        "zero_byte": folder / "zero_byte.mp4",
        "truncated": folder / "truncated.mp4",
        "text": folder / "text.mp4",
        "random_bytes": folder / "random_bytes.mp4",
        "missing": folder / "missing.mp4",
    }
    files["zero_byte"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 2])  # a download cut in half
    files["text"].write_text("<html><body>404 Not Found</body></html>\n")
    files["random_bytes"].write_bytes(
        np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    )
    # Zero duration: OpenCV's writer closed before the first frame leaves an index with no track.
    files["zero_frames"] = write_mp4v(folder / "zero_frames.mp4", 0)
    files["audio_only"] = write_audio_only(folder / "audio_only.mp4")
    return files


@pytest.fixture
def make_clip(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str, n_frames: int, fps: float = 10, size: tuple[int, int] = (320, 240)) -> Path:
        return write_mp4v(tmp_path / name, n_frames, fps, size)

    return make


@pytest.fixture(scope="session")
def frame_no() -> Callable[[np.ndarray], int]:
    """`frame_number` as a fixture: test modules cannot import a conftest reliably."""
    return frame_number


# ---- real-world media made with ffmpeg (tests/video/ffmpeg_media.py) ------------------------------


@pytest.fixture(scope="session")
def qwen_sources(media_dir: Path) -> dict[str, Path]:
    """40 frames at 10 fps, H.264: 16:9 (480x270, above the VideoRFT budget: the issue's 420x224 case),
    4:3 (400x300), portrait (270x480) and a phone clip stored 480x270 with a 90 degree display rotation."""
    from ffmpeg_media import encode, rotate

    folder = media_dir / "qwen"
    folder.mkdir()
    wide = encode(folder / "wide.mp4", 40, (480, 270))
    return {
        "16:9": wide,
        "4:3": encode(folder / "standard.mp4", 40, (400, 300)),
        "portrait": encode(folder / "portrait.mp4", 40, (270, 480)),
        "phone": rotate(wide, folder / "phone.mp4", 90),
    }


@pytest.fixture(scope="session")
def vfr_clip(media_dir: Path) -> Path:
    from ffmpeg_media import variable_rate

    return variable_rate(media_dir / "vfr.mp4")


@pytest.fixture(scope="session")
def tiny_video_processor():
    """A factory of our numpy Qwen2-VL video processor (the one training uses) with a given budget."""
    from training.video_processor import NumpyQwen2VLVideoProcessor

    return lambda **kwargs: NumpyQwen2VLVideoProcessor(**kwargs)
