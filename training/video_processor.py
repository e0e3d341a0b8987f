"""A numpy/Pillow video processor with Qwen2-VL's layout, and processor assembly without torchvision.

Why this exists: transformers' `Qwen2VLVideoProcessor` is built on the torchvision backend, and
torchvision cannot be installed here (the only wheel is a CUDA build that breaks transformers'
image code). `Qwen2_5_VLProcessor` type-checks each sub-processor against `VideoProcessorMixin`,
so `NumpyQwen2VLVideoProcessor` subclasses that mixin and reproduces what the stock processor
computes, in numpy:

- smart resize (both sides multiples of patch·merge = 28, pixel count within [min, max]),
- rescale to [0, 1] and CLIP normalisation,
- an even frame count (the last frame is repeated, like the stock `patchify`),
- Qwen's patch layout: rows of `C·temporal_patch·patch·patch` values, ordered so the 2×2 merge
  window is contiguous,
- `video_metadata` passed through so the processor computes `second_per_grid_ts`
  (= temporal_patch_size / sampled fps) for Qwen2.5-VL's temporal M-RoPE.

Frames are *not* sampled here (`do_sample_frames` is ignored): they come from `training.video_io`,
the adapter over `curation.video`, so curation and training share one sampling implementation.
The same processor is used on every machine (CPU CI, GPU training), so a run does not change its
visual tokens depending on whether torchvision happens to be installed.

Gotcha (ENVIRONMENT.md): without torchvision, `transformers.VideoProcessorMixin` is not exported
and `VIDEO_PROCESSOR_MAPPING` is a dummy, so `ProcessorMixin.check_argument_for_proper_class`
fails with `'_extra_content'`. `ensure_video_processor_mixin_exported()` sets the attribute.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import VideoProcessorMixin
from transformers.video_utils import VideoMetadata, make_batched_metadata, make_batched_videos

# Qwen2.5-VL's own numbers (qwen-vl-utils / VideoRFT vision_process.py).
PATCH_SIZE = 14
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
FACTOR = PATCH_SIZE * MERGE_SIZE  # 28
VIDEO_MIN_PIXELS = 128 * 28 * 28  # VideoRFT training: min = max = 128·28·28 per frame
VIDEO_MAX_PIXELS = 128 * 28 * 28
IMAGE_MIN_PIXELS = 4 * 28 * 28
IMAGE_MAX_PIXELS = 256 * 28 * 28

VIDEO_PROCESSOR_FILE = "video_preprocessor_config.json"
# The class name saved configs carry: the stock transformers class (torchvision backend) that this
# numpy processor reproduces, so stock tools load our outputs.
STOCK_VIDEO_PROCESSOR = "Qwen2VLVideoProcessor"


def ensure_video_processor_mixin_exported() -> None:
    """Expose `VideoProcessorMixin` on the `transformers` module (absent without torchvision).

    `ProcessorMixin.get_possibly_dynamic_module("VideoProcessorMixin")` first looks the name up on
    the top-level module; when it is missing it falls back to `VIDEO_PROCESSOR_MAPPING._extra_content`,
    which does not exist on the dummy mapping, hence the `'_extra_content'` error.
    """
    import transformers

    if not hasattr(transformers, "VideoProcessorMixin"):
        transformers.VideoProcessorMixin = VideoProcessorMixin


ensure_video_processor_mixin_exported()


def smart_resize(
    height: int, width: int, factor: int = FACTOR, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280
) -> tuple[int, int]:
    """Qwen2-VL's resize rule: sides multiples of `factor`, pixel count within [min, max], aspect kept."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(
            f"absolute aspect ratio must be smaller than 200, got {max(height, width) / min(height, width)}"
        )
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def already_sized(height: int, width: int, factor: int, max_pixels: int) -> bool:
    """True for frames `smart_resize` already sized from their source (sides on the `factor` grid,
    within `max_pixels`): resizing them again would resample twice and could change the token count
    (a 1280x720 source is 420x224 at min = max = 128*28*28, below the minimum; resizing that again
    gives 448x252). The processor keeps them, as qwen-vl-utils' frames pass the stock processor."""
    return height % factor == 0 and width % factor == 0 and height * width <= max_pixels


class NumpyQwen2VLVideoProcessorKwargs(VideosKwargs, total=False):
    """Extra keys this processor understands (validated by the processor's kwargs merging)."""

    min_pixels: int
    max_pixels: int
    patch_size: int
    temporal_patch_size: int
    merge_size: int
    min_frames: int
    max_frames: int


class NumpyQwen2VLVideoProcessor(VideoProcessorMixin):
    """Qwen2-VL / Qwen2.5-VL video preprocessing in numpy + Pillow (no torchvision).

    Input: one or more videos as `(T, H, W, C)` (or `(T, C, H, W)`) uint8 arrays, lists of PIL frames,
    or file paths (decoded with `training.video_io`). Output: `pixel_values_videos`
    `(sum_i T_i/2·H_i/14·W_i/14, 3·2·14·14)` float32, `video_grid_thw` `(n, 3)`, and
    `video_metadata` (a list of `VideoMetadata`) when `return_metadata` is set.
    """

    model_input_names = ["pixel_values_videos", "video_grid_thw"]
    valid_kwargs = NumpyQwen2VLVideoProcessorKwargs

    def __init__(
        self,
        size: dict[str, int] | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        patch_size: int = PATCH_SIZE,
        temporal_patch_size: int = TEMPORAL_PATCH_SIZE,
        merge_size: int = MERGE_SIZE,
        image_mean: Sequence[float] = tuple(OPENAI_CLIP_MEAN),
        image_std: Sequence[float] = tuple(OPENAI_CLIP_STD),
        do_resize: bool = True,
        do_rescale: bool = True,
        rescale_factor: float = 1 / 255,
        do_normalize: bool = True,
        num_frames: int = 16,
        min_frames: int = 4,
        max_frames: int = 768,
        fps: float | None = None,
        **kwargs: Any,
    ) -> None:
        # `size` uses transformers' pixel-area convention: shortest_edge = min pixels, longest_edge = max.
        size = dict(size) if size else {"shortest_edge": VIDEO_MIN_PIXELS, "longest_edge": VIDEO_MAX_PIXELS}
        if min_pixels is not None:
            size["shortest_edge"] = int(min_pixels)
        if max_pixels is not None:
            size["longest_edge"] = int(max_pixels)
        for key in ("video_processor_type", "processor_class", "image_processor_type"):
            kwargs.pop(key, None)
        # Keys the stock processor writes but we do not use (do_sample_frames, resample, ...) are ignored.
        kwargs = {k: v for k, v in kwargs.items() if k in ("return_metadata",)}
        super().__init__(**kwargs)
        self.size = size
        self.patch_size = int(patch_size)
        self.temporal_patch_size = int(temporal_patch_size)
        self.merge_size = int(merge_size)
        self.image_mean = [float(x) for x in image_mean]
        self.image_std = [float(x) for x in image_std]
        self.do_resize = bool(do_resize)
        self.do_rescale = bool(do_rescale)
        self.rescale_factor = float(rescale_factor)
        self.do_normalize = bool(do_normalize)
        self.num_frames = int(num_frames)
        self.min_frames = int(min_frames)
        self.max_frames = int(max_frames)
        self.fps = fps
        self.do_sample_frames = False  # frames arrive sampled (training.video_io)

    # -- pixel budget --------------------------------------------------------------------------
    @property
    def min_pixels(self) -> int:
        return int(self.size["shortest_edge"])

    @property
    def max_pixels(self) -> int:
        return int(self.size["longest_edge"])

    # -- preprocessing -------------------------------------------------------------------------
    def preprocess(self, videos: Any, **kwargs: Any) -> BatchFeature:  # type: ignore[override]
        """Turn videos into Qwen patches. Unknown or `None` kwargs fall back to the instance values."""
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        video_metadata = kwargs.pop("video_metadata", None)
        return_metadata = kwargs.pop("return_metadata", False)
        return_tensors = kwargs.pop("return_tensors", None)
        size = dict(kwargs.pop("size", self.size))
        if "min_pixels" in kwargs:
            size["shortest_edge"] = int(kwargs.pop("min_pixels"))
        if "max_pixels" in kwargs:
            size["longest_edge"] = int(kwargs.pop("max_pixels"))
        patch_size = int(kwargs.pop("patch_size", self.patch_size))
        merge_size = int(kwargs.pop("merge_size", self.merge_size))
        temporal_patch_size = int(kwargs.pop("temporal_patch_size", self.temporal_patch_size))
        do_resize = kwargs.pop("do_resize", self.do_resize)
        do_rescale = kwargs.pop("do_rescale", self.do_rescale)
        rescale_factor = kwargs.pop("rescale_factor", self.rescale_factor)
        do_normalize = kwargs.pop("do_normalize", self.do_normalize)
        image_mean = np.asarray(kwargs.pop("image_mean", self.image_mean), dtype=np.float32)
        image_std = np.asarray(kwargs.pop("image_std", self.image_std), dtype=np.float32)

        videos, video_metadata = self._load_videos(videos, video_metadata)

        all_patches: list[np.ndarray] = []
        grids: list[list[int]] = []
        for video in videos:
            frames = _to_thwc_uint8(video)
            # Even frame count: repeat the last frame, as the stock processor does in `patchify`.
            if pad := -frames.shape[0] % temporal_patch_size:
                frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)], axis=0)
            height, width = frames.shape[1:3]
            if do_resize and not already_sized(height, width, patch_size * merge_size, size["longest_edge"]):
                new_h, new_w = smart_resize(
                    height,
                    width,
                    factor=patch_size * merge_size,
                    min_pixels=size["shortest_edge"],
                    max_pixels=size["longest_edge"],
                )
                if (new_h, new_w) != (height, width):
                    frames = np.stack(
                        [np.asarray(Image.fromarray(f).resize((new_w, new_h), Image.BICUBIC)) for f in frames]
                    )
            pixels = frames.astype(np.float32)
            if do_rescale:
                pixels = pixels * np.float32(rescale_factor)
            if do_normalize:
                pixels = (pixels - image_mean) / image_std
            pixels = pixels.transpose(0, 3, 1, 2)  # (T, C, H, W)
            patches, grid = patchify(pixels, patch_size, merge_size, temporal_patch_size)
            all_patches.append(patches)
            grids.append(grid)

        data: dict[str, Any] = {
            "pixel_values_videos": np.concatenate(all_patches, axis=0).astype(np.float32),
            "video_grid_thw": np.asarray(grids, dtype=np.int64),
        }
        out = BatchFeature(data=data, tensor_type=return_tensors)
        if return_metadata:
            # Added after tensor conversion: metadata objects are not tensors.
            out["video_metadata"] = video_metadata
        return out

    def _load_videos(self, videos: Any, video_metadata: Any) -> tuple[list[Any], list[VideoMetadata]]:
        """Accept arrays / PIL frame lists / paths; decode paths with the shared sampler."""
        if isinstance(videos, Path):
            videos = str(videos)
        videos = make_batched_videos(videos)
        if any(isinstance(v, (str, Path)) for v in videos):
            # Paths (e.g. from a `{"type": "video", "video": path}` part): decode with the shared sampler;
            # the clip's own metadata wins for those, given metadata (by position) for arrays.
            from training.video_io import VideoDecodeConfig, load_clip

            cfg = VideoDecodeConfig(
                num_frames=self.num_frames,
                max_pixels=self.max_pixels,
                min_pixels=min(self.min_pixels, self.max_pixels),
            )
            given = list(video_metadata) if isinstance(video_metadata, (list, tuple)) else None
            decoded, metas = [], []
            for i, video in enumerate(videos):
                if isinstance(video, (str, Path)):
                    clip = load_clip(video, cfg)
                    decoded.append(clip.frames)
                    metas.append(clip.metadata())
                else:
                    decoded.append(video)
                    metas.append(given[i] if given and i < len(given) else None)
            videos = decoded
            video_metadata = [
                m if m is not None else {"total_num_frames": len(v), "frames_indices": list(range(len(v)))}
                for m, v in zip(metas, videos, strict=True)
            ]
        metadata = make_batched_metadata(videos, video_metadata=video_metadata)
        for meta in metadata:
            # Without a source fps, transformers falls back to 24 fps, which would make every clip
            # look 10x denser in time than it is; prefer an explicit default when configured.
            if meta.fps is None and self.fps is not None:
                meta.fps = float(self.fps)
        return videos, metadata

    # -- token accounting (used by processors and by vLLM-style planners) -----------------------
    def get_num_of_video_patches(
        self, num_frames: int, height: int, width: int, videos_kwargs: dict | None = None
    ) -> int:
        videos_kwargs = videos_kwargs or {}
        size = videos_kwargs.get("size") or self.size
        patch_size = videos_kwargs.get("patch_size") or self.patch_size
        merge_size = videos_kwargs.get("merge_size") or self.merge_size
        tps = videos_kwargs.get("temporal_patch_size") or self.temporal_patch_size
        h, w = smart_resize(
            height, width, patch_size * merge_size, size["shortest_edge"], size["longest_edge"]
        )
        grid_t = (num_frames + (-num_frames % tps)) // tps
        return grid_t * (h // patch_size) * (w // patch_size)

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """What the stock `Qwen2VLVideoProcessor` saves for the same settings, key for key (and its class
        name), so `AutoProcessor`, vLLM and eval tools with torchvision load our outputs as stock ones
        (training/stock_processor.py; tests/training/test_stock_processor.py)."""
        stock = {
            "video_processor_type": STOCK_VIDEO_PROCESSOR,
            "do_convert_rgb": True,
            "do_sample_frames": False,  # frames come pre-sampled (training.video_io)
            "max_video_tokens": 128000,
            "resample": 3,  # PIL bicubic
            "return_metadata": bool(getattr(self, "return_metadata", False)),
        }
        own = {
            "size": dict(self.size),
            "patch_size": self.patch_size,
            "temporal_patch_size": self.temporal_patch_size,
            "merge_size": self.merge_size,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "do_resize": self.do_resize,
            "do_rescale": self.do_rescale,
            "rescale_factor": self.rescale_factor,
            "do_normalize": self.do_normalize,
            "num_frames": self.num_frames,
            "min_frames": self.min_frames,
            "max_frames": self.max_frames,
            "fps": self.fps,
        }
        return {**stock, **{k: v for k, v in own.items() if v is not None}}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs: Any):  # type: ignore[override]
        """Read `video_preprocessor_config.json` (or, for real Qwen checkpoints, the image one).

        For a hub id the file is resolved with `cached_file` (honours HF_HUB_OFFLINE). The stock
        Qwen config keys (`min_pixels`, `max_pixels`, `size`, patch sizes, mean/std) map 1:1.
        """
        from transformers.utils import cached_file

        config: dict[str, Any] | None = None
        # processor_config.json (nested, written by `processor.save_pretrained`, e.g. a trainer checkpoint)
        # first, then the flat per-processor files.
        for name, key in (
            ("processor_config.json", "video_processor"),
            (VIDEO_PROCESSOR_FILE, None),
            ("preprocessor_config.json", None),
        ):
            path = cached_file(
                str(pretrained_model_name_or_path), name, _raise_exceptions_for_missing_entries=False
            )
            if path is None:
                continue
            loaded = json.loads(Path(path).read_text())
            if key is not None:
                loaded = loaded.get(key)
            if loaded:
                config = loaded
                break
        if config is None:
            raise OSError(f"no video or image preprocessor config in {pretrained_model_name_or_path}")
        config.update(kwargs)
        return cls(**config)

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> list[str]:  # type: ignore[override]
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        path = out / VIDEO_PROCESSOR_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return [str(path)]


def patchify(
    pixels: np.ndarray, patch_size: int, merge_size: int, temporal_patch_size: int
) -> tuple[np.ndarray, list[int]]:
    """(T, C, H, W) float32 → (grid_t·grid_h·grid_w, C·tps·p·p), the stock Qwen2-VL order.

    Rows go time-major, then merge windows row by row, then the 2×2 positions inside a window, so
    the vision tower's patch merger finds its 4 neighbours contiguous. Within a row: channel, time,
    patch row, patch column (matches `Qwen2VLVideoProcessor.patchify`).
    """
    t, c, h, w = pixels.shape
    grid_t, grid_h, grid_w = t // temporal_patch_size, h // patch_size, w // patch_size
    x = pixels.reshape(
        grid_t,
        temporal_patch_size,
        c,
        grid_h // merge_size,
        merge_size,
        patch_size,
        grid_w // merge_size,
        merge_size,
        patch_size,
    )
    # (gt, gh/m, gw/m, m_h, m_w, C, tps, p, p)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    flat = x.reshape(grid_t * grid_h * grid_w, c * temporal_patch_size * patch_size * patch_size)
    return np.ascontiguousarray(flat), [grid_t, grid_h, grid_w]


def _to_thwc_uint8(video: Any) -> np.ndarray:
    """Normalise one video to (T, H, W, 3) uint8."""
    if isinstance(video, (list, tuple)):
        video = np.stack([np.asarray(f.convert("RGB") if isinstance(f, Image.Image) else f) for f in video])
    arr = np.asarray(video)
    if hasattr(video, "detach"):  # torch tensor
        arr = video.detach().cpu().numpy()
    if arr.ndim != 4:
        raise ValueError(f"expected a 4-D video (T, H, W, C), got shape {arr.shape}")
    if arr.shape[-1] not in (1, 3, 4) and arr.shape[1] in (1, 3, 4):
        arr = arr.transpose(0, 2, 3, 1)  # (T, C, H, W) -> (T, H, W, C)
    if arr.dtype != np.uint8:
        # Float frames in [0, 1] are scaled; float frames in [0, 255] are clipped (never wrapped:
        # the VideoRFT semantic-reward bug came from a float->uint8 cast that overflowed).
        scale = 255.0 if arr.size and float(arr.max()) <= 1.0 else 1.0
        arr = np.clip(np.rint(arr.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 4:
        arr = arr[..., :3]
    return arr


# -- processor assembly ----------------------------------------------------------------------------
def build_processor(
    tokenizer: Any,
    *,
    chat_template: str | None = None,
    image_processor: Any | None = None,
    video_processor: NumpyQwen2VLVideoProcessor | None = None,
) -> Any:
    """A `Qwen2_5_VLProcessor` from parts: PIL image processor + numpy video processor."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessorPil

    ensure_video_processor_mixin_exported()
    image_processor = image_processor or Qwen2VLImageProcessorPil(
        min_pixels=IMAGE_MIN_PIXELS, max_pixels=IMAGE_MAX_PIXELS
    )
    video_processor = video_processor or NumpyQwen2VLVideoProcessor()
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=chat_template
        if chat_template is not None
        else getattr(tokenizer, "chat_template", None),
    )


def load_processor(
    name_or_path: str | Path,
    *,
    video_min_pixels: int | None = None,
    video_max_pixels: int | None = None,
    image_min_pixels: int | None = None,
    image_max_pixels: int | None = None,
    num_frames: int | None = None,
    padding_side: str | None = None,
) -> Any:
    """Load a Qwen2-VL/2.5-VL processor from its parts (works for the tiny folder and real checkpoints).

    `AutoProcessor.from_pretrained` refuses folders whose video processor is not a registered class, and
    the stock video processor needs torchvision; assembling from parts avoids both, and keeps one video
    preprocessing implementation on every machine. Pixel budgets override the saved ones when given
    (VideoRFT trains videos at ≤128·28·28 px per frame and evaluates at 256·28·28).
    """
    from transformers import AutoTokenizer, Qwen2VLImageProcessorPil
    from transformers.utils import cached_file

    name_or_path = str(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    image_kwargs: dict[str, Any] = {}
    if image_min_pixels is not None:
        image_kwargs["min_pixels"] = image_min_pixels
    if image_max_pixels is not None:
        image_kwargs["max_pixels"] = image_max_pixels
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(name_or_path, **image_kwargs)
    video_kwargs: dict[str, Any] = {}
    if video_min_pixels is not None:
        video_kwargs["min_pixels"] = video_min_pixels
    if video_max_pixels is not None:
        video_kwargs["max_pixels"] = video_max_pixels
    if num_frames is not None:
        video_kwargs["num_frames"] = num_frames
    video_processor = NumpyQwen2VLVideoProcessor.from_pretrained(name_or_path, **video_kwargs)
    chat_template = None
    template_file = cached_file(
        name_or_path, "chat_template.jinja", _raise_exceptions_for_missing_entries=False
    )
    if template_file is not None:
        chat_template = Path(template_file).read_text()
    else:
        legacy = cached_file(name_or_path, "chat_template.json", _raise_exceptions_for_missing_entries=False)
        if legacy is not None:
            chat_template = json.loads(Path(legacy).read_text()).get("chat_template")
    return build_processor(
        tokenizer,
        chat_template=chat_template,
        image_processor=image_processor,
        video_processor=video_processor,
    )
