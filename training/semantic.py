"""VideoRFT's semantic-consistency reward R_s (shared/reference/videorft.md §3.3), with cached frames.

R_s = min(1, w · max(cos(t, v), 0)), w = 2, where t is the SigLIP text embedding of the reasoning's
video-describing span and v the SigLIP image embedding of the sample's frames. Two variants:

* `mean_of_frames` (the paper): cosine with the L2-normalised mean of the L2-normalised frame embeddings;
* `per_frame` (the released code): mean over frames of min(1, w · max(cos_f, 0)).

Gated (paper Eq. 7, code's trainer): R_s = 0 wherever the accuracy reward is not > 0, so semantically
plausible but wrong reasoning earns nothing. The accuracy is recomputed here with `training.scoring` on
the same row, so the reward does not depend on the order of reward functions.

Differences from the released code, on purpose:
* frames are uint8 RGB (the reference fed float frames through ToPILImage, which garbles them);
* frame embeddings are computed once per video and cached (in memory, LRU, and on disk as .npy), keyed by
  sha256 of (media identity: path + mtime + size, frame spec, model id); a group of G completions costs
  one image-tower pass per frame, not G, and later epochs or other ranks cost none;
* gated rows skip the text tower, and a batch with no correct answer never touches the image tower;
* a media failure is logged and gives None for that row (TRL ignores it for this reward only), instead
  of a silent 0 for the whole group.

Media come from the dataset columns TRL passes to reward functions, first match wins per row:
`frames` (arrays / PIL images), `frame_paths` (JPEGs, e.g. the extract stage's), `images` / `image`
(PIL or path, TRL's image column), `video` / `media_path` (a file; decoded with `video_decoder`).
Relative paths are resolved against `media_root`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial, update_wrapper
from pathlib import Path
from typing import Any

import numpy as np

from training.rewards import RewardFunc, completion_text
from training.scoring import score_completion, warn_once

logger = logging.getLogger(__name__)

DEFAULT_SIGLIP = "google/siglip-so400m-patch14-384"
VARIANTS = ("mean_of_frames", "per_frame")
CACHE_FORMAT = "semantic-frames/v1"  # bump when the cached array's meaning changes
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}

THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)

# (path, num_frames) -> uint8 RGB frames (H, W, 3). Plug `curation.video` or any decoder in here.
VideoDecoder = Callable[[Path, int], Sequence[np.ndarray]]


# ---- text ------------------------------------------------------------------------------------------


def reasoning_span(completion: str) -> str:
    """The video-describing part of the reasoning: the think block minus its first sentence.

    Everything up to and including the first "." is dropped (the paper's "question parsing" sentence),
    then the rest is stripped. No "." (or nothing after it): the whole think text. No think block: the
    whole completion.
    """
    match = THINK_RE.search(completion)
    if match is None:
        return completion.strip()
    think = match.group(1)
    _, dot, rest = think.partition(".")
    rest = rest.strip()
    return rest if dot and rest else think.strip()


# ---- frames ----------------------------------------------------------------------------------------


def to_uint8_rgb(frame: Any) -> np.ndarray:
    """One frame as a (H, W, 3) uint8 array.

    Accepts PIL images, numpy arrays and torch tensors, HWC or CHW, uint8 or float. Floats in [0, 1] are
    scaled by 255; floats above 1 are taken as already in [0, 255] and only clipped (the reference code
    multiplied those by 255 again, which wraps around and garbles the frame).
    """
    if hasattr(frame, "convert") and hasattr(frame, "size"):  # PIL.Image
        return np.asarray(frame.convert("RGB"), dtype=np.uint8)
    if hasattr(frame, "detach"):  # torch.Tensor
        frame = frame.detach().cpu().numpy()
    array = np.asarray(frame)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3:
        raise ValueError(f"a frame must be 2-D or 3-D, got shape {array.shape}")
    if array.shape[-1] not in (1, 3, 4) and array.shape[0] in (1, 3, 4):
        array = np.transpose(array, (1, 2, 0))  # CHW -> HWC
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    array = array[..., :3]
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    array = array.astype(np.float32)
    if array.size and float(array.max()) <= 1.0:
        array = array * 255.0
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


def _load_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return to_uint8_rgb(image)


def _file_identity(path: Path) -> list[Any]:
    stat = path.stat()  # raises FileNotFoundError for a missing file: the row fails, loudly
    return [str(path.resolve()), stat.st_mtime_ns, stat.st_size]


class MediaError(Exception):
    """A row's frames could not be read or decoded (the reward for that row becomes None)."""


@dataclass(frozen=True)
class Media:
    """What one row's frames come from. `kind`: "paths" (image files), "video" (one file), "arrays"."""

    kind: str
    paths: tuple[Path, ...] = ()
    arrays: tuple[Any, ...] = ()

    def identity(self, video_spec: Any) -> list[Any]:
        """JSON-able content identity (cache key material), without decoding anything.

        `video_spec` (frame count, decoder and its settings) only matters for a video file: given
        frames are taken as they are.
        """
        if self.kind == "arrays":
            digest = hashlib.sha256()
            for frame in self.arrays:
                array = to_uint8_rgb(frame)
                digest.update(str(array.shape).encode())
                digest.update(array.tobytes())
            return ["arrays", digest.hexdigest()]
        files = [_file_identity(p) for p in self.paths]
        if self.kind == "video":
            return ["video", files, video_spec]
        return ["paths", files]

    def load(self, num_frames: int, video_decoder: VideoDecoder | None) -> list[np.ndarray]:
        if self.kind == "arrays":
            return [to_uint8_rgb(f) for f in self.arrays]
        if self.kind == "paths":
            return [_load_image(p) for p in self.paths]
        if video_decoder is None:
            raise RuntimeError(f"{self.paths[0]} is a video file and no video decoder is configured")
        return [to_uint8_rgb(f) for f in video_decoder(self.paths[0], num_frames)]


MEDIA_COLUMNS = ("frames", "frame_paths", "images", "image", "video", "media_path")


def media_from_row(row: dict[str, Any], media_root: Path | None) -> Media | None:
    """The row's frames source from its columns (first of `MEDIA_COLUMNS` that is set), None if none."""

    def resolve(value: Any) -> Path:
        path = Path(os.fspath(value)).expanduser()
        return path if path.is_absolute() or media_root is None else media_root / path

    def from_items(items: Sequence[Any]) -> Media:
        if all(isinstance(x, str | os.PathLike) for x in items):
            return Media("paths", paths=tuple(resolve(x) for x in items))
        return Media("arrays", arrays=tuple(items))

    for column in MEDIA_COLUMNS:
        value = row.get(column)
        if value is None or (isinstance(value, list | tuple) and not value):
            continue
        if column in ("frames", "frame_paths", "images"):
            items = list(value) if isinstance(value, list | tuple) else [value]
            return from_items(items)
        if column == "image":
            return from_items([value])
        # video / media_path: one file; an image file is one frame, anything else is a video.
        path = resolve(value)
        is_image = row.get("data_type") == "image" or path.suffix.lower() in IMAGE_SUFFIXES
        return Media("paths", paths=(path,)) if is_image else Media("video", paths=(path,))
    return None


# Frames for SigLIP come at the training pixel budget (what the reference re-decoded with); SigLIP resizes
# them to its own input size anyway, so a bigger budget would only cost decode time.
SEMANTIC_MAX_PIXELS = 128 * 28 * 28


def curation_video_decoder(max_pixels: int = SEMANTIC_MAX_PIXELS) -> VideoDecoder:
    """`curation.video.sample_frames` (Qwen's frame rules, decoder fallbacks, pixel budget) as a
    VideoDecoder, so the reward sees the frames curation and training see. Bad media raise VideoError.
    """
    from curation.video import VideoConfig, sample_frames

    def decode(path: Path, num_frames: int) -> Sequence[np.ndarray]:
        cfg = VideoConfig(
            num_frames=num_frames,
            max_frames=max(num_frames, 16),
            max_pixels=max_pixels,
            min_pixels=min(max_pixels, 128 * 28 * 28),
            min_source_pixels=1,  # curation's quality threshold; a reward never rejects a training sample
        )
        return sample_frames(path, cfg).frames

    decode.spec = {"decoder": "curation.video.sample_frames", "max_pixels": max_pixels}  # type: ignore[attr-defined]
    return decode


def decoder_spec(decoder: VideoDecoder | None) -> Any:
    """What identifies a decoder's output in cache keys: its `spec` attribute, else its qualified name."""
    if decoder is None:
        return None
    spec = getattr(decoder, "spec", None)
    return spec if spec is not None else getattr(decoder, "__qualname__", type(decoder).__qualname__)


# ---- the scorer -------------------------------------------------------------------------------------


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def similarity_reward(
    text_embedding: np.ndarray, frame_embeddings: np.ndarray, variant: str, weight: float
) -> float:
    """R_s from one L2-normalised text embedding (D,) and L2-normalised frame embeddings (F, D)."""
    if variant == "mean_of_frames":
        video = _normalise(frame_embeddings.mean(axis=0))
        return float(min(1.0, weight * max(float(video @ text_embedding), 0.0)))
    if variant == "per_frame":
        per_frame = np.minimum(1.0, weight * np.maximum(frame_embeddings @ text_embedding, 0.0))
        return float(per_frame.mean())
    raise ValueError(f"unknown semantic variant {variant!r}; expected one of {VARIANTS}")


class SemanticScorer:
    """SigLIP text/image embeddings with a two-level frame-embedding cache.

    Loads `SiglipModel`, its tokenizer and image processor by hub name or local folder, the same way for
    the production model and for `training.tiny_siglip`. `stats` counts frames encoded, cache hits and
    misses (the benchmark and the tests read it).

    model_name_or_path: hub id or folder (production: `DEFAULT_SIGLIP`, the encoder VideoRFT used).
    device, dtype: where SigLIP runs; under accelerate give each rank its own device (`accelerator.device`),
        bf16 on GPU as the reference did. dtype is part of the cache key.
    cache_dir: folder for `<key[:2]>/<key>.npy` frame embeddings, shareable between ranks and runs;
        None keeps the in-memory cache only.
    variant / weight: `mean_of_frames` (paper) or `per_frame` (released code); w = 2.
    max_text_len: token budget of the reasoning span, capped at the text tower's positions (64 for SigLIP).
    num_frames: frames sampled from a video file (VideoRFT trains on 16); given frames are used as given.
    media_root: base of relative paths in the media columns.
    video_decoder: (path, num_frames) -> uint8 frames; default `curation.video` (`curation_video_decoder`).
    memory_cache_size: videos kept in the in-memory LRU (16 x 1152 float32 = 74 KB each for so400m).
    """

    def __init__(
        self,
        model_name_or_path: str | Path = DEFAULT_SIGLIP,
        device: str = "cpu",
        dtype: str | Any = "float32",
        cache_dir: str | Path | None = None,
        variant: str = "mean_of_frames",
        weight: float = 2.0,
        max_text_len: int = 64,
        num_frames: int = 16,
        media_root: str | Path | None = None,
        video_decoder: VideoDecoder | None = None,
        memory_cache_size: int = 1024,
        batch_size: int = 32,
    ) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoTokenizer, SiglipModel

        if variant not in VARIANTS:
            raise ValueError(f"unknown semantic variant {variant!r}; expected one of {VARIANTS}")
        self.model_name_or_path = str(model_name_or_path)
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.variant = variant
        self.weight = float(weight)
        self.num_frames = num_frames
        self.media_root = Path(media_root) if media_root is not None else None
        self.video_decoder = video_decoder if video_decoder is not None else curation_video_decoder()
        self.video_spec = {"num_frames": num_frames, "decoder": decoder_spec(self.video_decoder)}
        self.memory_cache_size = memory_cache_size
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None

        self.model = (
            SiglipModel.from_pretrained(self.model_name_or_path, dtype=self.dtype).to(self.device).eval()
        )
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_name_or_path)
        # PIL backend: the default one needs torchvision, which must not be installed next to transformers.
        self.image_processor = AutoImageProcessor.from_pretrained(self.model_name_or_path, backend="pil")
        self.max_text_len = min(max_text_len, self.model.config.text_config.max_position_embeddings)
        self.model_id = self._model_id()

        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self.stats = {
            "frames_encoded": 0,
            "videos_encoded": 0,
            "memory_hits": 0,
            "disk_hits": 0,
            "texts_encoded": 0,
        }

    def _model_id(self) -> str:
        """Identity of the weights and preprocessing, part of every cache key."""
        local = Path(self.model_name_or_path)
        if local.is_dir():
            weights = sorted(local.glob("*.safetensors")) or sorted(local.glob("*.bin"))
            fingerprint: Any = [[p.name, p.stat().st_mtime_ns, p.stat().st_size] for p in weights]
        else:
            fingerprint = getattr(self.model.config, "_commit_hash", None)
        processor = json.loads(self.image_processor.to_json_string())
        return json.dumps(
            [self.model_name_or_path, fingerprint, str(self.dtype), processor], sort_keys=True, default=str
        )

    # -- embeddings ------------------------------------------------------------------------------------

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text embeddings (N, D).

        Padded to max length and fed without an attention mask: that is how SigLIP was trained (its
        pooled output is the last position, padding included) and how the reference code calls it.
        """
        import torch

        out = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            ids = self.tokenizer(
                chunk,
                padding="max_length",
                truncation=True,
                max_length=self.max_text_len,
                return_tensors="pt",
            )["input_ids"].to(self.device)
            with torch.inference_mode():
                pooled = self.model.text_model(input_ids=ids).pooler_output
            out.append(pooled.float().cpu().numpy())
            self.stats["texts_encoded"] += len(chunk)
        return _normalise(np.concatenate(out)) if out else np.zeros((0, 0), np.float32)

    def encode_frames(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalised image embeddings (F, D) of uint8 RGB frames; always runs the image tower."""
        import torch

        out = []
        for start in range(0, len(frames), self.batch_size):
            chunk = [to_uint8_rgb(f) for f in frames[start : start + self.batch_size]]
            pixels = self.image_processor(images=chunk, return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                pooled = self.model.vision_model(
                    pixel_values=pixels.to(self.device, self.dtype)
                ).pooler_output
            out.append(pooled.float().cpu().numpy())
            self.stats["frames_encoded"] += len(chunk)
        return _normalise(np.concatenate(out))

    def cache_key(self, media: Media) -> str:
        material = [CACHE_FORMAT, media.identity(self.video_spec), self.model_id]
        return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()

    def frame_embeddings(self, media: Media, key: str | None = None) -> np.ndarray:
        """Frame embeddings for one media item: memory cache, then disk cache, then the image tower."""
        key = key or self.cache_key(media)
        cached = self._memory.get(key)
        if cached is not None:
            self._memory.move_to_end(key)
            self.stats["memory_hits"] += 1
            return cached
        embeddings = self._read_disk(key)
        if embeddings is not None:
            self.stats["disk_hits"] += 1
        else:
            try:
                frames = media.load(self.num_frames, self.video_decoder)
            except Exception as exc:  # decoders raise many types (VideoError, OSError, PIL errors...)
                raise MediaError(str(exc)) from exc
            if not frames:
                raise MediaError("no frames")
            embeddings = self.encode_frames(frames)
            self.stats["videos_encoded"] += 1
            self._write_disk(key, embeddings)
        self._remember(key, embeddings)
        return embeddings

    def _remember(self, key: str, embeddings: np.ndarray) -> None:
        if self.memory_cache_size <= 0:
            return
        self._memory[key] = embeddings
        while len(self._memory) > self.memory_cache_size:
            self._memory.popitem(last=False)

    def _disk_path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / key[:2] / f"{key}.npy"

    def _read_disk(self, key: str) -> np.ndarray | None:
        path = self._disk_path(key)
        if path is None or not path.exists():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:  # a torn or corrupt file: recompute and overwrite it
            warn_once(
                f"semantic-cache-corrupt:{path}",
                f"unreadable semantic cache file {path} ({exc}); recomputing",
            )
            return None

    def _write_disk(self, key: str, embeddings: np.ndarray) -> None:
        path = self._disk_path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename: several ranks may score the same video at once; readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, embeddings.astype(np.float32))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- scoring ---------------------------------------------------------------------------------------

    def score(self, texts: Sequence[str], media: Sequence[Media]) -> list[float | None]:
        """Ungated R_s for (reasoning text, media) pairs; None where the media could not be read.

        Media are grouped by cache key first, so G completions of one video cost one lookup and, on a
        miss, one image-tower pass per frame.
        """
        keys: list[str | None] = []
        # The G rows of a group name the same files: stat and hash them once per call, not once per row
        # (file identities cannot change meaningfully within one reward call). In-memory frames are
        # unhashable and keyed per row.
        by_source: dict[Media, str | None] = {}
        for item in media:
            if item.kind != "arrays" and item in by_source:
                keys.append(by_source[item])
                continue
            try:
                key: str | None = self.cache_key(item)
            except (OSError, ValueError) as exc:  # a missing file or a malformed frame fails this row only
                self._media_failed(item, exc)
                key = None
            if item.kind != "arrays":
                by_source[item] = key
            keys.append(key)
        embeddings: dict[str, np.ndarray | None] = {}
        for key, item in zip(keys, media, strict=True):
            if key is None or key in embeddings:
                continue
            try:
                embeddings[key] = self.frame_embeddings(item, key)
            except MediaError as exc:  # bad media fails its rows only; a model error still raises
                self._media_failed(item, exc.__cause__ or exc)
                embeddings[key] = None
        rows = [i for i, key in enumerate(keys) if key is not None and embeddings[key] is not None]
        text_embeddings = self.encode_texts([texts[i] for i in rows])
        rewards: list[float | None] = [None] * len(texts)
        for row, text_embedding in zip(rows, text_embeddings, strict=True):
            frames = embeddings[keys[row]]
            rewards[row] = similarity_reward(text_embedding, frames, self.variant, self.weight)
        return rewards

    def _media_failed(self, media: Media, exc: Exception) -> None:
        where = str(media.paths[0]) if media.paths else "in-memory frames"
        warn_once(
            f"semantic-media:{where}:{type(exc).__name__}",
            f"semantic reward: cannot read frames from {where} ({type(exc).__name__}: {exc}); reward is None",
        )


def semantic_reward(
    completions: Sequence[Any],
    solution: Sequence[str],
    problem_type: Sequence[str],
    *,
    semantic_scorer: SemanticScorer,
    gated: bool = True,
    **kwargs: Any,
) -> list[float | None]:
    """R_s per completion with `semantic_scorer`; 0 where the row's accuracy is not > 0 (if `gated`).

    None (TRL: ignored for this reward only) where the row's media cannot be read; 0 for an empty
    reasoning span (nothing to compare with the frames). Bind the scorer with `make_semantic_reward`.
    """
    present = [c for c in MEDIA_COLUMNS if c in kwargs]
    if not present:
        raise KeyError(f"semantic reward needs one of the columns {MEDIA_COLUMNS}; got {sorted(kwargs)}")
    texts = [completion_text(c) for c in completions]
    rewards: list[float | None] = [0.0] * len(texts)
    todo: list[int] = []
    media: list[Media] = []
    # The G rows of a group carry the same media columns: build their Media once (path resolution
    # per row and frame is most of the reward's per-row cost). In-memory frames are not memoised.
    built: dict[Any, Media | None] = {}
    for i, text in enumerate(texts):
        if gated and not score_completion(text, solution[i], problem_type[i]) > 0:
            continue  # gated: no text or image pass for a wrong answer
        if not reasoning_span(text):
            continue  # no description to compare with the frames: 0, not SigLIP's opinion of ""
        row = {c: kwargs[c][i] for c in present}
        if "data_type" in kwargs:
            row["data_type"] = kwargs["data_type"][i]
        memo = _paths_only(row)
        if memo is not None and memo in built:
            item = built[memo]
        else:
            item = media_from_row(row, semantic_scorer.media_root)
            if memo is not None:
                built[memo] = item
        if item is None:
            warn_once(
                "semantic-no-media",
                "semantic reward: a row has no frames in any media column; reward is None",
            )
            rewards[i] = None
            continue
        todo.append(i)
        media.append(item)
    scored = semantic_scorer.score([reasoning_span(texts[i]) for i in todo], media)
    for i, value in zip(todo, scored, strict=True):
        rewards[i] = value
    log_metric = kwargs.get("log_metric")
    if callable(log_metric) and todo:
        log_metric("semantic/media_failures", float(sum(v is None for v in scored)))
    return rewards


def _paths_only(row: dict[str, Any]) -> tuple[Any, ...] | None:
    """A hashable copy of a row whose media columns hold only strings (paths), else None."""
    key = []
    for column, value in sorted(row.items()):
        items = value if isinstance(value, list | tuple) else [value]
        if not all(v is None or isinstance(v, str) for v in items):
            return None
        key.append((column, tuple(items)))
    return tuple(key)


def make_semantic_reward(scorer: SemanticScorer, gated: bool = True) -> RewardFunc:
    """`semantic_reward` bound to `scorer` (a named partial, like the registry's other factories)."""
    wrapped = partial(semantic_reward, semantic_scorer=scorer, gated=gated)
    update_wrapper(wrapped, semantic_reward)
    return wrapped
