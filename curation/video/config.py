"""The `video:` slice of a curation recipe: which decoder, how many frames, how big.

`extra="forbid"` so a typo (`num_frame: 8`) fails at load time naming the key, instead of silently
sampling the default 16 frames.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ReaderName = Literal["decord", "opencv", "pyav"]
SamplingMode = Literal["uniform", "fps"]

# Qwen2-VL/2.5-VL see frames in 14 px patches merged 2x2, so 28 px is the unit of its grid.
QWEN_PATCH_FACTOR = 28


class VideoConfig(BaseModel):
    """How frames are taken out of a video and stored.

    reader: decoder tried first. decord decodes only what it needs (keyframe seek + forward decode),
        the fastest on long videos; opencv and pyav decode sequentially from the start.
    fallback_readers: tried in order when `reader` cannot open or decode a file (or is not
        installed). File-level problems (missing, zero-byte, truncated, no video stream, zero
        duration) are the same for every decoder and are never retried.
    sampling: "uniform" takes `num_frames` frames at the centres of equal segments (VideoRFT trains
        on 16); "fps" takes duration*fps frames clamped to [min_frames, max_frames].
    max_pixels: frames above this budget are downscaled (aspect kept, sides floored to multiples
        of `size_factor`); frames below it are stored as decoded, never upscaled.
    min_pixels: videos whose native resolution is below this fail ("frame too small"); they carry
        too little detail for a caption and Qwen's processor would upscale them anyway.
    size_factor: side multiple used when downscaling (28 = Qwen's patch grid, so the processor
        does not resample again at training time); 1 keeps the exact aspect ratio.
    workers: threads per shard in the extract stage (decoders release the GIL).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    reader: ReaderName = "decord"
    fallback_readers: list[ReaderName] = Field(default_factory=lambda: ["opencv", "pyav"])
    sampling: SamplingMode = "uniform"
    num_frames: int = Field(16, ge=1, le=1024)
    fps: float = Field(2.0, gt=0)
    min_frames: int = Field(4, ge=1)
    max_frames: int = Field(16, ge=1, le=1024)
    max_pixels: int = Field(128 * 28 * 28, ge=1)
    min_pixels: int = Field(4 * 28 * 28, ge=1)
    size_factor: int = Field(QWEN_PATCH_FACTOR, ge=1)
    jpeg_quality: int = Field(90, ge=1, le=100)
    workers: int = Field(2, ge=1, le=64)

    @model_validator(mode="after")
    def _check_ranges(self) -> VideoConfig:
        if self.min_frames > self.max_frames:
            raise ValueError(f"min_frames ({self.min_frames}) is larger than max_frames ({self.max_frames})")
        if self.min_pixels > self.max_pixels:
            raise ValueError(f"min_pixels ({self.min_pixels}) is larger than max_pixels ({self.max_pixels})")
        if self.max_pixels < self.size_factor**2:
            raise ValueError(
                f"max_pixels ({self.max_pixels}) is below one {self.size_factor}x{self.size_factor} cell"
            )
        return self

    def readers_to_try(self) -> list[str]:
        """`reader` first, then the fallbacks in order, without repeats."""
        seen: list[str] = []
        for name in [self.reader, *self.fallback_readers]:
            if name not in seen:
                seen.append(name)
        return seen

    def content_slice(self) -> dict[str, Any]:
        """The fields that change extracted frames, for the stage's content key.

        `workers` only changes speed, so a rerun with more threads reuses every frame.
        """
        return self.model_dump(exclude={"workers"})
