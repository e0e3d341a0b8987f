"""Extract stage: one sample -> probe facts + sampled frames stored as JPEG files under the run dir.

Pure apart from writing frame files: the row it returns depends only on the media file and the
`VideoConfig`. Bad media never raise; they become a `failed` row whose reason says what is wrong
(the run's report groups failures by that reason). Errors writing the run dir itself (disk full,
permissions) do raise: they are not a property of the sample and would fail every row alike.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from collections import OrderedDict
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
# Sample ids are hex hashes; anything else could name a path outside frames/ ("../x") or collide.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def extract_sample(sample: Sample, media_root: Path, run_dir: Path, cfg: VideoConfig) -> dict[str, Any]:
    """Decode `media_root / sample.media_path` and write its frames to run_dir/frames/<id>/<config hash>/NNN.jpg.

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
    variant = _variant(cfg)
    # Many questions on one video (Video-R1-style sources): decode each (file, config) once.
    media_key = _media_key(path, variant, sample.data_type)
    reused = _reuse_frames(media_key, Path(run_dir), sample.id, variant)
    if reused is not None:
        return {**row, **reused}
    with _DECODE_LOCKS[hash(media_key) % len(_DECODE_LOCKS)]:
        reused = _reuse_frames(media_key, Path(run_dir), sample.id, variant)  # decoded meanwhile?
        if reused is not None:
            return {**row, **reused}
        try:
            sampled = sample_frames(path, cfg, image=True if sample.data_type == "image" else None)
        except VideoError as err:
            log.debug("extract failed for %s (%s): %s", sample.id, sample.media_path, err.reason)
            return {**row, "status": FAILED, "reason": err.reason}
        except Exception as err:  # a decoder bug on one odd file must not take the shard down
            log.warning("unexpected error extracting %s (%s)", sample.id, sample.media_path, exc_info=True)
            return {**row, "status": FAILED, "reason": f"cannot decode: {type(err).__name__}: {err}"}
        frame_paths = _write_frames(Path(run_dir), sample.id, variant, sampled, cfg.jpeg_quality)
        facts = _facts(sampled, frame_paths)
        _remember(media_key, Path(run_dir), facts)
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


# (resolved path, size, mtime_ns, inode, config variant, data type) -> (run dir, facts with the
# first sample's frame paths). Bounded: one entry per recent distinct media file, not per sample.
_RECENT_MEDIA: OrderedDict[tuple[Any, ...], tuple[Path, dict[str, Any]]] = OrderedDict()
_RECENT_MEDIA_MAX = 4096
_RECENT_LOCK = threading.Lock()
# Striped: threads decoding different files rarely wait on each other; the same file, once.
_DECODE_LOCKS = tuple(threading.Lock() for _ in range(64))


def _media_key(path: Path, variant: str, data_type: str) -> tuple[Any, ...] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino, variant, data_type)


def _remember(media_key: tuple[Any, ...] | None, run_dir: Path, facts: dict[str, Any]) -> None:
    if media_key is None:
        return
    with _RECENT_LOCK:
        _RECENT_MEDIA[media_key] = (run_dir, facts)
        _RECENT_MEDIA.move_to_end(media_key)
        while len(_RECENT_MEDIA) > _RECENT_MEDIA_MAX:
            _RECENT_MEDIA.popitem(last=False)


def _reuse_frames(
    media_key: tuple[Any, ...] | None, run_dir: Path, sample_id: str, variant: str
) -> dict[str, Any] | None:
    """The facts of a file already decoded under this config, its frames hard-linked (or copied)
    into this sample's folder; None when it was not, or its frames are gone."""
    if media_key is None:
        return None
    with _RECENT_LOCK:
        known = _RECENT_MEDIA.get(media_key)
    if known is None or known[0] != run_dir:
        return None
    facts = known[1]
    folder = run_dir / FRAMES_DIR / sample_id / variant
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        for src in facts["frame_paths"]:
            name = src.rsplit("/", 1)[-1]
            dst = folder / name
            if src != f"{FRAMES_DIR}/{sample_id}/{variant}/{name}":
                _link_atomic(run_dir / src, dst)
            paths.append(f"{FRAMES_DIR}/{sample_id}/{variant}/{name}")
    except OSError:
        return None  # the first sample's frames are gone: decode again
    return {**{k: list(v) if isinstance(v, list) else v for k, v in facts.items()}, "frame_paths": paths}


def _link_atomic(src: Path, dst: Path) -> None:
    """Hard-link `src` as `dst` (a link appears whole or not at all); replace an older `dst`."""
    try:
        os.link(src, dst)
        return
    except FileExistsError:  # frames of an earlier extraction: replace them atomically
        tmp = dst.with_name(f".{dst.name}.{threading.get_ident()}.link.tmp")
        try:
            os.link(src, tmp)
            os.replace(tmp, dst)
            return
        except OSError:
            tmp.unlink(missing_ok=True)
    except OSError:  # no hard links here (another filesystem): copy the bytes
        pass
    _write_atomic(dst, src.read_bytes())


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


def _write_frames(
    run_dir: Path, sample_id: str, variant: str, sampled: SampledFrames, quality: int
) -> list[str]:
    folder = run_dir / FRAMES_DIR / sample_id / variant
    folder.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(len(sampled.frames) - 1)))
    rel_paths = []
    for number, frame in enumerate(sampled.frames):
        name = f"{number:0{width}d}.jpg"
        _write_atomic(folder / name, encode_jpeg(frame, quality))
        rel_paths.append(f"{FRAMES_DIR}/{sample_id}/{variant}/{name}")
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
