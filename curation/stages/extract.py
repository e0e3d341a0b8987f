"""Extract stage: one sample -> probe facts + sampled frames stored as JPEG files under the run dir.

Pure apart from writing frame files: the row it returns depends only on the media file and the
`VideoConfig`. Bad media never raise; they become a `failed` row whose reason says what is wrong
(the run's report groups failures by that reason). Errors writing the run dir itself (disk full,
permissions) do raise: they are not a property of the sample and would fail every row alike.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from curation.records import FAILED, OK, Sample, stable_hash
from curation.video.config import VideoConfig
from curation.video.encode import encode_jpeg
from curation.video.errors import UNSAFE_PATH, VideoError
from curation.video.load import SampledFrames, sample_frames

log = logging.getLogger(__name__)

FRAMES_DIR = "frames"
FACTS_FILE = "facts.json"  # written last: a frame folder with it is complete
# Sample ids are hex hashes (`sample_id`); anything else was not built by a source reader and could
# name a path ("../x") wherever a tool files things by id: refused here, before any work.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def extract_sample(sample: Sample, media_root: Path, run_dir: Path, cfg: VideoConfig) -> dict[str, Any]:
    """Decode `media_root / sample.media_path` and store its frames as JPEG files under `run_dir`.

    Frames live in run_dir/frames/<media key>/<config hash>/NNN.jpg, one folder per media file
    (path, size, mtime) and video config, shared by every question on that file: a file is decoded
    once per run and config, even across reruns, and 100,000 questions on 20 videos make 20 frame
    folders, not 100,000. A `facts.json` written after the frames marks a folder complete.

    Returns a row with `id`, `status` ("ok" | "failed"), `reason`, the probe facts (`duration`,
    `fps`, `frame_count`, `width`, `height`, `codec`), the decoder used (`reader`), and per frame
    `frame_paths` (relative to `run_dir`, POSIX separators), `timestamps` (seconds) and
    `frame_indices`, plus the stored `frame_width`/`frame_height`. Failed rows carry the same
    columns with empty values so every shard has one schema.
    """
    row = _empty_row(sample.id)
    try:
        path = _media_file(sample, Path(media_root))
    except VideoError as err:
        return {**row, "status": FAILED, "reason": err.reason}
    folder = _frames_folder(path, Path(media_root), _variant(cfg), sample.data_type)
    stored = _stored_facts(Path(run_dir), folder)
    if stored is not None:
        return {**row, **stored}
    with _DECODE_LOCKS[hash(folder) % len(_DECODE_LOCKS)]:
        stored = _stored_facts(Path(run_dir), folder)  # decoded meanwhile by another thread?
        if stored is not None:
            return {**row, **stored}
        try:
            # The annotation decides still vs clip: an animated GIF annotated as video is a clip.
            sampled = sample_frames(path, cfg, image=sample.data_type == "image")
        except VideoError as err:
            log.debug("extract failed for %s (%s): %s", sample.id, sample.media_path, err.reason)
            return {**row, "status": FAILED, "reason": err.reason}
        except Exception as err:  # a decoder bug on one odd file must not take the shard down
            log.warning("unexpected error extracting %s (%s)", sample.id, sample.media_path, exc_info=True)
            return {**row, "status": FAILED, "reason": f"cannot decode: {type(err).__name__}: {err}"}
        frame_paths = _write_frames(Path(run_dir), folder, sampled, cfg.jpeg_quality)
        facts = _facts(sampled, frame_paths)
        _write_atomic(Path(run_dir) / folder / FACTS_FILE, json.dumps(facts).encode("utf-8"))
    return {**row, **facts}


def _facts(sampled: SampledFrames, frame_paths: list[str]) -> dict[str, Any]:
    info = sampled.info
    height, width = sampled.frames[0].shape[:2]
    return {
        "duration": info.duration,
        "fps": info.fps,
        "frame_count": info.frame_count,
        "width": info.width,
        "height": info.height,
        "codec": info.codec,
        "reader": sampled.reader,
        "frame_paths": frame_paths,
        "timestamps": sampled.timestamps,
        "frame_indices": sampled.indices,
        "frame_width": width,
        "frame_height": height,
    }


# Striped: threads decoding different files rarely wait on each other; the same file, once.
_DECODE_LOCKS = tuple(threading.Lock() for _ in range(64))


def _frames_folder(path: Path, media_root: Path, variant: str, data_type: str) -> str:
    """frames/<media key>/<variant>, relative to the run dir: the key names the file's content as
    the filesystem sees it (path under the media root, size, mtime), so an edited file gets new frames."""
    try:
        st = path.stat()
        stamp: list[int] = [st.st_size, st.st_mtime_ns]
    except OSError:  # missing: decoding will fail with the reason
        stamp = []
    rel = path.relative_to(media_root.resolve()).as_posix()
    key = stable_hash({"media": rel, "stamp": stamp, "data_type": data_type}, length=16)
    return f"{FRAMES_DIR}/{key}/{variant}"


def _stored_facts(run_dir: Path, folder: str) -> dict[str, Any] | None:
    """The facts of a complete frame folder (its frames all present), else None (decode again)."""
    try:
        facts = json.loads((run_dir / folder / FACTS_FILE).read_bytes())
        complete = all((run_dir / p).is_file() for p in facts["frame_paths"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return facts if complete else None


def extract_shard(
    samples: Sequence[Sample], media_root: Path, run_dir: Path, cfg: VideoConfig
) -> list[dict[str, Any]]:
    """`extract_sample` over a shard with `cfg.workers` threads; rows come back in input order.

    Threads, not processes: decord, OpenCV and FFmpeg release the GIL while decoding, and the
    frames never need to cross a process boundary.
    """
    if cfg.workers <= 1 or len(samples) <= 1:
        return [extract_sample(s, media_root, run_dir, cfg) for s in samples]
    with ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="extract") as pool:
        return list(pool.map(lambda s: extract_sample(s, media_root, run_dir, cfg), samples))


def _empty_row(sample_id: str) -> dict[str, Any]:
    return {
        "id": sample_id,
        "status": OK,
        "reason": "",
        "duration": 0.0,
        "fps": 0.0,
        "frame_count": 0,
        "width": 0,
        "height": 0,
        "codec": "",
        "reader": "",
        "frame_paths": [],
        "timestamps": [],
        "frame_indices": [],
        "frame_width": 0,
        "frame_height": 0,
    }


def _media_file(sample: Sample, media_root: Path) -> Path:
    """The sample's file, refusing ids and paths that would reach outside their folders.

    Source readers already reject unsafe media paths; this is the last line before a file is
    opened, in case a row was built some other way (a hand-written table, a future reader).
    """
    if not _SAFE_ID.match(sample.id or "") or sample.id in (".", ".."):
        raise VideoError(f"unsafe sample id: {sample.id!r}", UNSAFE_PATH)
    if not sample.media_path or "\x00" in sample.media_path:
        raise VideoError("empty or invalid media path", UNSAFE_PATH)
    root = media_root.resolve()
    path = (root / sample.media_path).resolve()
    if not path.is_relative_to(root):
        raise VideoError("media path escapes the media root", UNSAFE_PATH)
    return path


def _variant(cfg: VideoConfig) -> str:
    """Frames of one sample under another video config live in their own folder, so rows computed
    under the old config (kept by content key) never point at the new config's frames."""
    return stable_hash(cfg.content_slice(), length=8)


def _write_frames(run_dir: Path, folder: str, sampled: SampledFrames, quality: int) -> list[str]:
    (run_dir / folder).mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(len(sampled.frames) - 1)))
    rel_paths = []
    for number, frame in enumerate(sampled.frames):
        rel = f"{folder}/{number:0{width}d}.jpg"
        _write_atomic(run_dir / rel, encode_jpeg(frame, quality))
        rel_paths.append(rel)
    return rel_paths


def _write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same folder, then rename: a killed run never leaves half a JPEG.

    No fsync: frames are cheap to recompute, and 16 fsyncs per sample would dominate the stage.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes owner-only files; frames are read by report servers and trainers too.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


__all__ = ["FRAMES_DIR", "extract_sample", "extract_shard"]
