"""From a media path and the config to sampled, budget-sized RGB frames, trying fallback decoders.

The frames are Qwen's: its frame count and linspace positions (on true presentation times), its
`smart_resize` target computed once from the source size, one resampling (`curation.video.resize`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation.video.config import VideoConfig
from curation.video.container import inspect_container
from curation.video.errors import DECODER_SPECIFIC_KINDS, TOO_SMALL, UNDECODABLE, VideoError
from curation.video.file_checks import check_file, is_image_path, sniff_media_kind
from curation.video.info import VideoInfo
from curation.video.readers import OpenVideo, open_animated, open_image, open_video
from curation.video.resize import frame_size, image_size, resize_frame
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

    `image` forces the still-image path (True) or the video path (False); by default the file's
    content decides (its first bytes, not its extension). An image file read as a video (an
    animated GIF or WebP annotated as video) is decoded frame by frame with its own frame times.
    Decoders are tried in `cfg.readers_to_try()` order, moving on only for decoder-specific
    failures: a file that is missing, truncated or frameless fails once, with that reason.
    """
    path = Path(path)
    size = check_file(path)
    kind = sniff_media_kind(path)
    image_content = kind == "image"
    if image is None:
        # Unrecognised content goes by the extension (the decoders then name what is wrong).
        image = image_content or (kind is None and is_image_path(path))
    if image:
        with open_image(path) as media:
            return _take_still(media, cfg)
    if image_content:
        with open_animated(path) as media:
            return _take_video(media, cfg)

    header = inspect_container(path, size)
    failures: list[tuple[str, VideoError]] = []
    for name in cfg.readers_to_try(header.width * header.height):
        try:
            with open_video(path, name, header) as media:
                return _take_video(media, cfg)
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


def _check_source(info: VideoInfo, cfg: VideoConfig) -> None:
    if info.width * info.height < cfg.min_source_pixels:
        raise VideoError(
            f"frame too small: {info.width}x{info.height} is below min_source_pixels={cfg.min_source_pixels}",
            TOO_SMALL,
        )


def _take_still(media: OpenVideo, cfg: VideoConfig) -> SampledFrames:
    info = media.info
    _check_source(info, cfg)
    target = image_size(info.width, info.height, cfg)
    frames = media.read([0], target)
    return SampledFrames(info=info, reader=media.name, indices=[0], timestamps=[0.0], frames=frames)


def _take_video(media: OpenVideo, cfg: VideoConfig) -> SampledFrames:
    info = media.info
    _check_source(info, cfg)
    times = media.frame_times()
    if times is not None and len(times) != info.frame_count:
        times = None  # an index that disagrees with the count: assume a constant rate
    indices = frame_indices(info, cfg, times)
    target = frame_size(info.width, info.height, len(indices), cfg)
    large = info.width * info.height > cfg.large_frame_pixels
    frames = [resize_frame(f, target) for f in media.read(indices, target, scaled=large)]
    return SampledFrames(
        info=info,
        reader=media.name,
        indices=indices,
        timestamps=timestamps(indices, info.fps, times),
        frames=frames,
    )
