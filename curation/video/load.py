"""From a media path and the config to sampled, budget-sized RGB frames, trying fallback decoders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation.video.config import VideoConfig
from curation.video.container import inspect_container
from curation.video.errors import DECODER_SPECIFIC_KINDS, TOO_SMALL, UNDECODABLE, VideoError
from curation.video.file_checks import check_file, is_image_path
from curation.video.info import VideoInfo
from curation.video.readers import OpenVideo, open_image, open_video
from curation.video.resize import fit_to_budget, resize_frame
from curation.video.sampling import frame_indices, timestamps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampledFrames:
    """Frames taken from one media file; `frames` are RGB uint8, already within the pixel budget."""

    info: VideoInfo
    reader: str
    indices: list[int]
    timestamps: list[float]
    frames: list[np.ndarray]


def sample_frames(path: Path | str, cfg: VideoConfig, *, image: bool | None = None) -> SampledFrames:
    """Probe, pick frame indices, decode and resize; raise VideoError with the reason on bad media.

    `image` forces the still-image path (default: decided by the file extension). Decoders are
    tried in `cfg.readers_to_try()` order, moving on only for decoder-specific failures: a file
    that is missing, truncated or frameless fails once, with that reason.
    """
    path = Path(path)
    size = check_file(path)
    if image is None:
        image = is_image_path(path)
    if image:
        with open_image(path) as media:
            return _take(media, cfg, still=True)

    header = inspect_container(path, size)
    failures: list[tuple[str, VideoError]] = []
    for name in cfg.readers_to_try():
        try:
            with open_video(path, name, header) as media:
                return _take(media, cfg, still=False)
        except VideoError as err:
            if err.kind not in DECODER_SPECIFIC_KINDS:
                raise
            failures.append((name, err))
        except Exception as err:  # a decoder library bug must not end the shard; keep the trace
            log.warning("reader %s crashed on %s", name, path, exc_info=True)
            failures.append((name, VideoError(f"cannot decode: {type(err).__name__}: {err}", UNDECODABLE)))
        log.debug("reader %s failed on %s: %s", name, path, failures[-1][1].reason)
    # Report the most informative failure: a decoder's message beats "reader unavailable".
    best = next((err for _, err in failures if err.kind == UNDECODABLE), failures[0][1])
    tried = ", ".join(name for name, _ in failures)
    raise VideoError(f"{best.reason} (tried {tried})", best.kind)


def _take(media: OpenVideo, cfg: VideoConfig, *, still: bool) -> SampledFrames:
    info = media.info
    if info.width * info.height < cfg.min_pixels:
        raise VideoError(
            f"frame too small: {info.width}x{info.height} is below min_pixels={cfg.min_pixels}", TOO_SMALL
        )
    indices = [0] if still else frame_indices(info, cfg)
    frames = []
    for frame in media.read(indices):
        # The decoded size, not the header's: they differ for rotated or non-square-pixel streams.
        size = fit_to_budget(frame.shape[1], frame.shape[0], cfg.max_pixels, cfg.size_factor)
        frames.append(resize_frame(frame, size))
    return SampledFrames(
        info=info,
        reader=media.name,
        indices=indices,
        timestamps=timestamps(indices, info.fps),
        frames=frames,
    )
