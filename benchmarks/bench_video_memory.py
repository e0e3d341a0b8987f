"""Peak memory and CPU per reader for 16 frames of a 720p, 1080p and 4K clip.

Makes (once, cached under benchmarks/out/) 30 s H.264 clips at 1280x720, 1920x1080 and 3840x2160
with Debian's ffmpeg (`testsrc2`, 30 fps, 2 s GOPs), then, for each reader, runs
`curation.video.sample_frames` in a fresh process and reports its peak resident memory (ru_maxrss,
minus the same process's peak after the imports), CPU seconds and wall seconds, in two ways:

    full      the decoder returns full-size frames, resized afterwards (large_frame_pixels off)
    scaled    large sources decoded straight to the target size where the reader can (decord's
              width/height, PyAV's scaler); OpenCV cannot, so its two rows measure the same thing

and the default recipe (`VideoConfig()`: which reader it picks first for that size, and its cost).
Frames are VideoRFT's 16 at <= 128*28*28 px (420x224 for 16:9).

    python benchmarks/bench_video_memory.py            # 30 s clips
    python benchmarks/bench_video_memory.py --quick    # 10 s clips
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from benchmarks._common import OUT, figure, print_figures  # noqa: E402

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}
READERS = ("decord", "opencv", "pyav")

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from curation.video import VideoConfig, sample_frames
import decord, cv2, av  # every reader's library loaded before the baseline
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cfg = VideoConfig(**json.loads({cfg!r}))
t0, c0 = time.perf_counter(), time.process_time()
s = sample_frames({path!r}, cfg)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"reader": s.reader, "frames": len(s.frames), "shape": list(s.frames[0].shape),
                  "peak_mb": peak / 1024, "base_mb": base / 1024, "wall_s": wall, "cpu_s": cpu}}))
"""


def ensure_clip(name: str, seconds: int) -> Path:
    width, height = SIZES[name]
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"mem_{name}_{seconds}s.mp4"
    if path.exists():
        return path
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg not found (make setup installs it)")
    tmp = path.with_name(f".tmp-{path.name}")
    src = f"testsrc2=size={width}x{height}:rate=30"
    args = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "60", "-f", "mp4"]
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", src, "-t", str(seconds), *args, str(tmp)],
        check=True,
    )
    tmp.replace(path)
    return path


def measure(path: Path, cfg: dict) -> dict:
    code = CHILD.format(repo=str(REPO), cfg=json.dumps(cfg), path=str(path))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["delta_mb"] = result["peak_mb"] - result["base_mb"]
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 s clips instead of 30 s")
    ap.add_argument("--sizes", nargs="*", choices=sorted(SIZES), default=list(SIZES), help="clips to measure")
    a = ap.parse_args(argv)
    seconds = 10 if a.quick else 30
    rows, figures = [], []
    for name in a.sizes:
        path = ensure_clip(name, seconds)
        for reader in READERS:
            for mode in ("full", "scaled"):
                cfg = {"reader": reader, "fallback_readers": [], "large_frame_reader": None}
                cfg["large_frame_pixels"] = 10**9 if mode == "full" else 1
                rows.append({"clip": name, "reader": reader, "mode": mode, **measure(path, cfg)})
        default = measure(path, {})
        rows.append({"clip": name, "reader": default["reader"], "mode": "default recipe", **default})
    print(
        f"\n{'clip':<6} {'reader':<7} {'mode':<15} {'peak MB':>8} {'+MB':>7} {'CPU s':>6} {'wall s':>7}  frames"
    )
    for r in rows:
        print(
            f"{r['clip']:<6} {r['reader']:<7} {r['mode']:<15} {r['peak_mb']:>8.0f} {r['delta_mb']:>7.0f} "
            f"{r['cpu_s']:>6.2f} {r['wall_s']:>7.2f}  {r['frames']}x{r['shape'][1]}x{r['shape'][0]}"
        )
    for r in rows:
        if r["mode"] == "default recipe":
            goal = "<= 400 MB over the imports" if r["clip"] == "4K" else ""
            holds = r["delta_mb"] <= 400 if r["clip"] == "4K" else None
            figures.append(
                figure(f"{r['clip']} default recipe ({r['reader']}) peak", r["delta_mb"], "MB", goal, holds)
            )
    print_figures("video decode memory", figures, {"clip length": f"{seconds} s", "frames": 16})
    (OUT / "bench_video_memory.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    t0 = time.time()
    code = main()
    print(f"   ({time.time() - t0:.0f} s)")
    raise SystemExit(code)
