"""How long does taking 16 frames out of a long 720p video take, per decoder?

Makes (once, cached under benchmarks/out/) a 5-minute 1280x720 30 fps video with OpenCV's mp4v
writer (the codec of our synthetic data; 12-frame GOPs) and, for contrast, the same content as
H.264 with 250-frame GOPs (libx264 through PyAV, like most real datasets). Then times 16-frame
uniform sampling with:

    decord            our reader: keyframe seek + forward decode (`get_batch`)
    opencv            our reader: sequential grab(), retrieve() only the wanted frames
    pyav              our reader: sequential decode, convert only the wanted frames
    opencv-naive      read() and convert every frame, keep 16 (what scripts often do)
    opencv-seek       CAP_PROP_POS_FRAMES before each frame (what we never do)

Our readers go through `sample_frames` (file checks, header, decode, resize to the pixel budget),
the path the extract stage takes. Every frame shows its own index in binary, so the table also
says whether each method returned the frames it was asked for.

    python benchmarks/bench_video_sampling.py            # 5 min videos
    python benchmarks/bench_video_sampling.py --quick    # 30 s videos
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curation.video import VideoConfig, sample_frames, uniform_indices  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
WIDTH, HEIGHT, FPS = 1280, 720, 30
BITS = 14  # frame index in binary: up to 16384 frames
N_FRAMES = 16


# --------------------------------------------------------------------------- the test video


def _bit_box(bit: int) -> tuple[slice, slice]:
    x0 = 40 + bit * 85
    return slice(600, 680), slice(x0, x0 + 60)


def coded_frame(index: int, background: np.ndarray) -> np.ndarray:
    """Cheap content (a sliding bar + index bits) so writing 9000 frames stays quick."""
    frame = background.copy()
    x = (index * 7) % (WIDTH - 120)
    frame[200:400, x : x + 120] = (40, 40, 220)
    for bit in range(BITS):
        rows, cols = _bit_box(bit)
        frame[rows, cols] = 255 if (index >> bit) & 1 else 0
    return frame


def frame_number(frame: np.ndarray) -> int:
    """Inverse of `coded_frame`, for frames at the original size."""
    index = 0
    for bit in range(BITS):
        rows, cols = _bit_box(bit)
        if frame[rows, cols][10:-10, 10:-10].mean() > 128:
            index |= 1 << bit
    return index


def write_mp4v(path: Path, n_frames: int) -> None:
    import cv2

    tmp = path.with_name(f".tmp-{path.name}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write mp4v here")
    background = np.full((HEIGHT, WIDTH, 3), 110, np.uint8)
    for i in range(n_frames):
        writer.write(coded_frame(i, background))  # BGR is fine: the content is symmetric enough
    writer.release()
    os.replace(tmp, path)


def write_h264(path: Path, n_frames: int) -> None:
    import av

    tmp = path.with_name(f".tmp-{path.name}")
    background = np.full((HEIGHT, WIDTH, 3), 110, np.uint8)
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"g": "250", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(coded_frame(i, background), format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def ensure_video(codec: str, seconds: int) -> tuple[Path, float | None]:
    """The cached test video and how long writing it took (None when it was already there)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"bench_{WIDTH}x{HEIGHT}_{FPS}fps_{seconds}s_{codec}.mp4"
    if path.exists():
        return path, None
    start = time.perf_counter()
    (write_mp4v if codec == "mp4v" else write_h264)(path, seconds * FPS)
    return path, time.perf_counter() - start


# --------------------------------------------------------------------------- the methods


def via_pipeline(reader: str) -> Callable[[Path], tuple[list[int], list[np.ndarray]]]:
    # size_factor 1: frames stay 1280x720 (no resize), so frame_number reads their boxes.
    cfg = VideoConfig(
        reader=reader, fallback_readers=[], num_frames=N_FRAMES, max_pixels=WIDTH * HEIGHT, size_factor=1
    )

    def run(path: Path) -> tuple[list[int], list[np.ndarray]]:
        sampled = sample_frames(path, cfg)
        return sampled.indices, sampled.frames

    return run


def opencv_naive(path: Path) -> tuple[list[int], list[np.ndarray]]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    wanted = set(uniform_indices(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), N_FRAMES))
    frames, index = [], 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if index in wanted:
            frames.append(rgb)
        index += 1
    cap.release()
    return sorted(wanted), frames


def opencv_seek(path: Path) -> tuple[list[int], list[np.ndarray]]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    wanted = uniform_indices(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), N_FRAMES)
    frames = []
    for index in wanted:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = cap.read()
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    cap.release()
    return wanted, frames


METHODS: dict[str, Callable[[Path], tuple[list[int], list[np.ndarray]]]] = {
    "decord": via_pipeline("decord"),
    "opencv": via_pipeline("opencv"),
    "pyav": via_pipeline("pyav"),
    "opencv-naive": opencv_naive,
    "opencv-seek": opencv_seek,
}


def time_method(name: str, path: Path) -> dict:
    start, cpu_start = time.perf_counter(), time.process_time()
    indices, frames = METHODS[name](path)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    correct = sum(frame_number(f) == i for i, f in zip(indices, frames, strict=False))
    return {
        "method": name,
        "seconds": round(seconds, 3),
        # CPU time of all threads: steadier than wall time on a shared machine.
        "cpu_seconds": round(cpu, 3),
        "output_fps": round(len(frames) / seconds, 2),
        "frames_correct": f"{correct}/{len(indices)}",
    }


# --------------------------------------------------------------------------- entry point


def warm_up() -> None:
    """Import the decoders and run every method once on a 1 s clip: one-off costs (decord's
    import alone is ~0.3 s) are not what a long-running extract worker pays per video."""
    path, _ = ensure_video("mp4v", 1)
    for method in METHODS.values():
        method(path)


def run(quick: bool = False, codecs: tuple[str, ...] = ("mp4v", "h264"), repeat: int = 1) -> dict:
    seconds = 30 if quick else 300
    warm_up()
    report: dict = {
        "benchmark": "bench_video_sampling",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, CPU only, Python {platform.python_version()}",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "frames_sampled": N_FRAMES,
        "repeat": repeat,
        "videos": {},
        "results": [],
    }
    for codec in codecs:
        path, write_s = ensure_video(codec, seconds)
        report["videos"][codec] = {
            "file": str(path.relative_to(ROOT)),
            "resolution": f"{WIDTH}x{HEIGHT}",
            "fps": FPS,
            "seconds": seconds,
            "frames": seconds * FPS,
            "size_mb": round(path.stat().st_size / 1e6, 1),
            "write_s": round(write_s, 1) if write_s is not None else "cached",
        }
        for name in METHODS:
            runs = [time_method(name, path) for _ in range(repeat)]
            report["results"].append({"codec": codec, **min(runs, key=lambda r: r["seconds"])})
    return report


def print_table(report: dict) -> None:
    load = ", ".join(str(x) for x in report["load_average_at_start"])
    print(f"16-frame sampling, {report['machine']}, {report['date']}, load average {load}")
    for codec, video in report["videos"].items():
        print(
            f"  {codec}: {video['resolution']} {video['fps']} fps, {video['seconds']} s, {video['size_mb']} MB"
        )
    print(f"{'codec':6} {'method':13} {'seconds':>8} {'cpu s':>7} {'frames/s':>9} {'correct':>8}")
    for r in report["results"]:
        print(
            f"{r['codec']:6} {r['method']:13} {r['seconds']:8.2f} {r['cpu_seconds']:7.2f} "
            f"{r['output_fps']:9.2f} {r['frames_correct']:>8}"
        )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 s videos instead of 5 min")
    parser.add_argument("--codec", choices=["mp4v", "h264"], action="append", help="default: both")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; the fastest is kept")
    args = parser.parse_args(argv)
    report = run(quick=args.quick, codecs=tuple(args.codec or ("mp4v", "h264")), repeat=args.repeat)
    print_table(report)
    (OUT / "bench_video_sampling.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
