"""Shared helpers of the scale, peers and fault-campaign benchmarks.

- `prefect_env()`: the offline Prefect settings of the tests (own PREFECT_HOME, no analytics, long
  ephemeral start-up timeout), set before anything imports prefect;
- `figure()` / `print_figures()`: every benchmark returns `list[dict(name, value, unit, goal, holds)]`;
- `RssSampler`: peak resident memory of this process (and optionally its children), sampled;
- `scale_corpus()`: N annotation rows over a few real synthetic videos (distinct questions, the
  originals' ground truth), so the simulated endpoint answers every row correctly;
- `du_bytes()`: bytes on disk under a folder.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
OUT = BENCH / "out"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def prefect_env(home: str | Path | None = None) -> str:
    """Offline Prefect settings (as tests/conftest.py sets them). Call before importing prefect."""
    if home is not None:
        os.environ["PREFECT_HOME"] = str(home)
    elif "PREFECT_HOME" not in os.environ:
        os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="videorft-bench-prefect-")
    os.environ.pop("PREFECT_API_URL", None)
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "300"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ["DO_NOT_TRACK"] = "1"
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[var] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    return os.environ["PREFECT_HOME"]


# ---- figures ----------------------------------------------------------------------------------


def figure(
    name: str, value: Any, unit: str = "", goal: str = "", holds: bool | None = None
) -> dict[str, Any]:
    """One measured figure. `holds` is None for figures without a goal (context only)."""
    if isinstance(value, float):
        value = round(value, 4)
    return {"name": name, "value": value, "unit": unit, "goal": goal, "holds": holds}


def machine() -> str:
    import psutil

    mem = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores, {mem:.0f} GiB, {platform.machine()}, Python {platform.python_version()}, CPU only"


def print_figures(title: str, figures: list[dict[str, Any]], context: dict[str, Any] | None = None) -> None:
    print(f"\n== {title} ({time.strftime('%Y-%m-%d')}; {machine()})")
    for k, v in (context or {}).items():
        print(f"   {k}: {v}")
    width = max((len(f["name"]) for f in figures), default=10)
    for f in figures:
        verdict = "" if f["holds"] is None else ("  HOLDS" if f["holds"] else "  MISSES")
        goal = f"   goal {f['goal']}" if f["goal"] else ""
        print(f"   {f['name']:<{width}}  {f['value']} {f['unit']}{goal}{verdict}")


def write_json(name: str, payload: Any) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


# ---- resources --------------------------------------------------------------------------------


class RssSampler:
    """Samples resident memory every `interval_s` in a daemon thread (process, and its children
    separately: the Prefect ephemeral server and the simulated endpoint are children)."""

    def __init__(self, interval_s: float = 0.25, pid: int | None = None) -> None:
        import psutil

        self._proc = psutil.Process(pid or os.getpid())
        self.interval_s = interval_s
        self.peak_self = 0
        self.peak_children = 0
        self.peak_at_s = 0.0  # seconds after start when this process peaked
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        import psutil

        t0 = time.time()
        while not self._stop.is_set():
            try:
                rss = self._proc.memory_info().rss
                kids = 0
                for c in self._proc.children(recursive=True):
                    try:
                        kids += c.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            if rss > self.peak_self:
                self.peak_self, self.peak_at_s = rss, round(time.time() - t0, 1)
            self.peak_children = max(self.peak_children, kids)
            if not self.samples or time.time() - self.samples[-1][0] - t0 >= 5:
                self.samples.append((round(time.time() - t0, 1), rss))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def peak_self_mib(self) -> float:
        return self.peak_self / 2**20

    @property
    def peak_children_mib(self) -> float:
        return self.peak_children / 2**20


def du_bytes(path: Path) -> int:
    """Bytes on disk (allocated blocks, like `du -s`) under `path`."""
    try:
        out = subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True, check=True)
        return int(out.stdout.split()[0])
    except (OSError, subprocess.CalledProcessError, ValueError):
        total = 0
        for root, _dirs, files in os.walk(path):
            for f in files:
                try:
                    total += os.lstat(os.path.join(root, f)).st_blocks * 512
                except OSError:
                    pass
        return total


def count_files(path: Path, suffix: str = "") -> int:
    """Files under `path` (only those whose name ends with `suffix`, if given)."""
    return sum(sum(f.endswith(suffix) for f in files) for _r, _d, files in os.walk(path))


# ---- data -------------------------------------------------------------------------------------


def base_videos(out_dir: Path, n_videos: int = 20, seed: int = 0) -> Path:
    """`n_videos` real synthetic videos + their annotations (cached: same seed, same bytes)."""
    from curation.sources.synthetic import generate

    out_dir = Path(out_dir)
    ann = out_dir / "annotations.jsonl"
    stamp = out_dir / f".generated-{n_videos}-{seed}"
    if not stamp.exists() or not ann.exists():
        generate(out_dir, n_videos, seed=seed)
        stamp.write_text("ok\n")
    return ann


def scale_corpus(out_dir: Path, n: int, n_videos: int = 20, seed: int = 0) -> tuple[Path, Path]:
    """Write `out_dir/media/annotations.jsonl` with `n` rows reusing `n_videos` real videos.

    Row i is a copy of video (i mod n_videos)'s original row with the question made unique
    (" [variant i]" appended: the sample id hashes the problem text, and dedup compares the
    normalised text, so every row is a distinct, non-duplicate sample) and the same ground truth.
    The simulated endpoint loads this file, so it knows every id. Streams: no list of n rows.
    Returns (annotations path, media root).
    """
    media = Path(out_dir) / "media"
    base_ann = base_videos(media, n_videos, seed)
    originals = [json.loads(line) for line in base_ann.read_text().splitlines() if line.strip()]
    ann = Path(out_dir) / f"annotations-{n}.jsonl"
    if ann.exists() and sum(1 for _ in open(ann, "rb")) == n:
        return ann, media
    tmp = ann.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for i in range(n):
            row = dict(originals[i % len(originals)])
            row["problem"] = f"{row['problem']} [variant {i}]"
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, ann)
    return ann, media


def draft_messages_corpus(n: int, work: Path, seed: int = 0) -> list[list[dict[str, Any]]]:
    """`n` realistic draft requests (the draft stage's own prompt, a simulated caption of a real
    synthetic video, a unique question): text-only chat messages, ~3-5 KB each."""
    import yaml

    from curation.config import recipe_from_dict
    from curation.prompts import load_prompt
    from curation.records import Sample, sample_id
    from curation.stages.draft import draft_messages
    from sim_endpoint import answers as sim_answers
    from sim_endpoint.scene import scene_from_meta

    ann = base_videos(Path(work) / "media", 20, seed)
    originals = [json.loads(line) for line in ann.read_text().splitlines() if line.strip()]
    data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    data["source"]["path"] = str(ann)
    recipe = recipe_from_dict(data, origin="bench")
    prompt = load_prompt(Path(recipe.draft.prompt_dir))
    captions = []
    for row in originals:
        scene = scene_from_meta(row["meta"])
        times = [round(scene.duration * (k + 0.5) / 8, 3) for k in range(8)]
        captions.append(sim_answers.caption_json(scene, times))
    out = []
    rng = random.Random(seed)
    for i in range(n):
        k = rng.randrange(len(originals))
        row = dict(originals[k])
        row["problem"] = f"{row['problem']} [variant {i}]"
        sid = sample_id(row["data_source"], row["media_path"], row["problem"])
        sample = Sample.from_row({**row, "id": sid, "meta": json.dumps(row["meta"])})
        out.append(draft_messages(sample, captions[k], recipe.draft, prompt))
    return out


@contextmanager
def temp_dir(prefix: str, keep: bool = False, base: Path | None = None) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=str(base) if base else None))
    try:
        yield d
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)
