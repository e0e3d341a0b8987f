"""The `video:` slice of a curation recipe: which decoder, how many frames, how big.

`extra="forbid"` so a typo (`num_frame: 8`) fails at load time naming the key, instead of silently
sampling the default 16 frames.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from curation.video.qwen_rules import (
    FPS,
    FPS_MAX_FRAMES,
    FPS_MIN_FRAMES,
    IMAGE_FACTOR,
    VIDEO_TOTAL_PIXELS,
    VIDEORFT_IMAGE_MAX_PIXELS,
    VIDEORFT_IMAGE_MIN_PIXELS,
    VIDEORFT_VIDEO_PIXELS,
)

ReaderName = Literal["decord", "opencv", "pyav"]
SamplingMode = Literal["uniform", "fps"]

# Qwen2-VL/2.5-VL see frames in 14 px patches merged 2x2, so 28 px is the unit of its grid.
QWEN_PATCH_FACTOR = IMAGE_FACTOR


class VideoConfig(BaseModel):
    """How frames are taken out of a video (or an image) and stored: Qwen2.5-VL's own rules
    (`curation.video.qwen_rules`), so extract, SFT, GRPO and evaluation see the same frames.

    reader: decoder tried first. decord decodes only what it needs (keyframe seek + forward decode),
        the fastest on long videos; opencv and pyav decode sequentially from the start.
    fallback_readers: tried in order when `reader` cannot open or decode a file (or is not
        installed). File-level problems (missing, zero-byte, truncated, no video stream, zero
        duration) are the same for every decoder and are never retried.
    sampling: "uniform" takes `num_frames` frames (rounded to an even count) at qwen-vl-utils'
        `linspace(0, N-1, n)` positions, first and last frame included (VideoRFT trains on 16);
        "fps" takes duration*fps frames clamped to [min_frames, max_frames], floored to an even
        count, as qwen-vl-utils' fps mode (its `FPS_MAX_FRAMES` = 768 is the default cap). On a
        variable-frame-rate clip the positions are spread evenly in time (presentation timestamps).
    min_pixels / max_pixels: the per-frame budget of Qwen's `smart_resize`, applied once to the
        decoded frame: sides become multiples of `size_factor`, large frames shrink to max_pixels,
        small ones grow to min_pixels (VideoRFT: min = max = 128*28*28).
    total_pixels: qwen-vl-utils' budget for the whole clip; with many frames it lowers the
        per-frame ceiling (total_pixels / frames * 2). The default is qwen-vl-utils' own.
    image_min_pixels / image_max_pixels: the same budget for images (VideoRFT: 4*28*28 to
        256*28*28): a still is worth more pixels than one of sixteen frames, and charts, OCR and
        diagrams need them.
    min_source_pixels: videos and images whose native resolution is below this fail ("frame too
        small"): they carry too little detail for a caption.
    large_frame_pixels: sources above this many pixels per frame count as large: decord and PyAV
        decode them straight to the target size (not full frames then a resize), and
        `large_frame_reader` is tried first. Measured on 16 frames of a 30 s 4K clip
        (benchmarks/RESULTS.md): decord decoding to size is the cheapest in CPU (8.6 s) with a
        bounded 223 MB (1.1 GB at full size); PyAV to size takes the least memory (109 MB) but
        decodes every frame, so its CPU grows with the clip's length: "pyav" for memory-tight
        workers on short clips.
    size_factor: side multiple (28 = Qwen's patch grid, so the training processor keeps the stored
        size instead of resampling again).
    workers: threads per shard in the extract stage (decoders release the GIL).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    reader: ReaderName = "decord"
    fallback_readers: list[ReaderName] = Field(default_factory=lambda: ["opencv", "pyav"])
    sampling: SamplingMode = "uniform"
    num_frames: int = Field(16, ge=1, le=FPS_MAX_FRAMES)
    fps: float = Field(FPS, gt=0)
    min_frames: int = Field(FPS_MIN_FRAMES, ge=1)
    max_frames: int = Field(FPS_MAX_FRAMES, ge=1, le=4 * FPS_MAX_FRAMES)
    min_pixels: int = Field(VIDEORFT_VIDEO_PIXELS, ge=1)
    max_pixels: int = Field(VIDEORFT_VIDEO_PIXELS, ge=1)
    total_pixels: int = Field(VIDEO_TOTAL_PIXELS, ge=1)
    image_min_pixels: int = Field(VIDEORFT_IMAGE_MIN_PIXELS, ge=1)
    image_max_pixels: int = Field(VIDEORFT_IMAGE_MAX_PIXELS, ge=1)
    min_source_pixels: int = Field(4 * QWEN_PATCH_FACTOR * QWEN_PATCH_FACTOR, ge=1)
    large_frame_pixels: int = Field(1920 * 1080, ge=1)
    large_frame_reader: ReaderName | None = "decord"
    size_factor: int = Field(QWEN_PATCH_FACTOR, ge=1)
    jpeg_quality: int = Field(90, ge=1, le=100)
    workers: int = Field(2, ge=1, le=64)

    @model_validator(mode="after")
    def _check_ranges(self) -> VideoConfig:
        if self.min_frames > self.max_frames:
            raise ValueError(f"min_frames ({self.min_frames}) is larger than max_frames ({self.max_frames})")
        if self.min_pixels > self.max_pixels:
            raise ValueError(f"min_pixels ({self.min_pixels}) is larger than max_pixels ({self.max_pixels})")
        if self.image_min_pixels > self.image_max_pixels:
            raise ValueError(
                f"image_min_pixels ({self.image_min_pixels}) is larger than image_max_pixels "
                f"({self.image_max_pixels})"
            )
        if self.max_pixels < self.size_factor**2:
            raise ValueError(
                f"max_pixels ({self.max_pixels}) is below one {self.size_factor}x{self.size_factor} cell"
            )
        return self

    def readers_to_try(self, source_pixels: int = 0) -> list[str]:
        """`reader` first, then the fallbacks in order, without repeats; for a large source
        (`large_frame_pixels`), `large_frame_reader` goes first."""
        seen: list[str] = []
        large = self.large_frame_reader is not None and source_pixels > self.large_frame_pixels
        first = [self.large_frame_reader] if large else []
        for name in [*first, self.reader, *self.fallback_readers]:
            if name not in seen:
                seen.append(name)
        return seen

    def content_slice(self) -> dict[str, Any]:
        """The fields that change extracted frames, for the stage's content key.

        `workers` only changes speed, so a rerun with more threads reuses every frame.
        """
        return self.model_dump(exclude={"workers"})
