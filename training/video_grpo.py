"""`VideoGRPOTrainer`: TRL's GRPOTrainer, plus Qwen video tensors in every log-prob forward.

The problem (ENVIRONMENT.md, measured): TRL 1.16 has no video modality. A prompt with a
`{"type": "video"}` part *generates* with the video (the processor expands it), but the log-prob
passes — old policy, reference and the loss forward — only forward image tensors, so the policy is
trained on `<|video_pad|>` embeddings with no pixels behind them. No warning, no error.

The fix, kept as small as the private API allows (pin `trl==1.16.*`; `tests/training/test_grpo.py`
checks it with a forward hook on the vision tower):

1. `_tokenize_prompts`: each *distinct* prompt of the generation batch is encoded once (frames
   decoded through the cached `MediaLoader`, processor called with `video_metadata` so
   `second_per_grid_ts` is right); the G copies of a prompt share the tensors. The encoded media are
   kept as a **per-sample list** (`media_inputs`, one dict per row): TRL shuffles and splits the
   generation batch row-wise (`shuffle_sequence_dict`, `split_tensor_dict`), which permutes lists
   correctly but would scramble a flat `(patches, dim)` tensor whose rows are not samples.
2. `_generate_and_score_completions`: the same media are active while TRL computes the old and
   reference log-probs, and are returned in the batch as `media_inputs`.
3. `_compute_loss`: activates the batch's `media_inputs` for the policy forward.
4. `_get_per_token_logps_and_entropies`: per chunk, concatenates the chunk's media tensors and builds
   `mm_token_type_ids` (Qwen's M-RoPE needs them; zeros over the completion), then calls TRL's own
   implementation with the model bound to those extra inputs — fused LM head, autocast, entropy and
   aux-loss handling stay TRL's.

Image rows (`{"type": "image"}` parts) go through the same path, so a mixed video/image dataset works.

vLLM generation (`use_vllm`, `vllm_mode: colocate`): TRL's bridge sends token ids plus *images* only,
so a video prompt would reach vLLM without its pixels. `_tokenize_prompts` also builds, per row, the
vLLM request of `training.vllm_inputs` (rendered prompt + the same decoded frames and metadata), and
the rollout swaps it in for TRL's token-id row right at `llm.generate` (`_VideoRequestsLLM`): TRL's
sampling parameters, weight sync, sleep mode and log-prob extraction stay its own. Vision placeholder
tokens are banned through `logit_bias`. Not supported, with a clear error: server mode (TRL's
`vllm-serve` takes token ids and image features only) and tensor parallelism > 1 (TRL gathers a TP
group's prompts, not our requests).
"""

from __future__ import annotations

import json
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from trl import GRPOTrainer

from training.video_io import MediaLoader, VideoDecodeConfig
from training.vllm_inputs import banned_tokens_bias, vllm_request

MEDIA_KEY = "media_inputs"
# Tensors a Qwen2/2.5-VL forward takes per sample; concatenated along dim 0 in batch order.
_MEDIA_TENSORS = (
    "pixel_values_videos",
    "video_grid_thw",
    "second_per_grid_ts",
    "pixel_values",
    "image_grid_thw",
)
# Placeholder and delimiter tokens of the vision inputs: never to be sampled.
_VISION_TOKENS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")


def _has_media(prompt: Any) -> bool:
    if not isinstance(prompt, list):
        return False
    for message in prompt:
        content = message.get("content")
        if isinstance(content, list) and any(p.get("type") in ("video", "image") for p in content):
            return True
    return False


def _prompt_key(prompt: list[dict[str, Any]]) -> str:
    """Identity of a prompt for the once-per-batch cache (media parts carry paths, not pixels)."""
    return json.dumps(prompt, sort_keys=True, default=lambda o: f"<{type(o).__name__}@{id(o)}>")


class _BoundModel:
    """`model(**inputs)` with extra keyword inputs; all TRL's log-prob helper does with `model` is call it."""

    def __init__(self, model: Any, extra: dict[str, Any]) -> None:
        self.model = model
        self.extra = extra

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs, **self.extra)


class VideoGRPOTrainer(GRPOTrainer):
    """GRPOTrainer that carries Qwen video (and image) tensors into every log-prob forward."""

    def __init__(self, *args: Any, media_loader: MediaLoader | None = None, **kwargs: Any) -> None:
        _check_vllm_settings(kwargs.get("args"))
        super().__init__(*args, **kwargs)
        video_processor = getattr(self.processing_class, "video_processor", None)
        if media_loader is None:
            media_loader = MediaLoader(
                None,
                VideoDecodeConfig(
                    num_frames=getattr(video_processor, "num_frames", 16),
                    max_pixels=getattr(video_processor, "max_pixels", 128 * 28 * 28),
                    min_pixels=getattr(video_processor, "min_pixels", None),
                ),
            )
        self.media_loader = media_loader
        self._active_media_getter: Any = None
        self._rollout_media: list[dict[str, torch.Tensor]] | None = None
        self._rollout_requests: list[dict[str, Any]] | None = None

        config = self.model.config
        self._image_token_id = getattr(config, "image_token_id", None)
        self._video_token_id = getattr(config, "video_token_id", None)
        # A sampled vision token in a completion would break the feature/token count of the next forward
        # (VideoRFT issue #23: it then silently fell back to text-only). TRL suppresses the image pad;
        # suppress the video pad and the vision delimiters too, in whichever engine generates.
        vision_tokens = [int(t) for t in (getattr(config, n, None) for n in _VISION_TOKENS) if t is not None]
        if getattr(self, "generation_config", None) is not None:
            suppress = sorted(set(self.generation_config.suppress_tokens or []) | set(vision_tokens))
            self.generation_config.suppress_tokens = suppress
            self.generation_kwargs["suppress_tokens"] = suppress
        if self.use_vllm:
            # A copy: the dict may be the caller's `args.generation_kwargs`; the caller's biases win.
            vllm_kwargs = dict(self.vllm_generation.generation_kwargs)
            vllm_kwargs["logit_bias"] = {
                **banned_tokens_bias(vision_tokens),
                **(vllm_kwargs.get("logit_bias") or {}),
            }
            self.vllm_generation.generation_kwargs = vllm_kwargs
            self.vllm_generation.llm = _VideoRequestsLLM(self.vllm_generation.llm)

    # -- 1. rollout: encode each distinct prompt once -------------------------------------------------
    def _tokenize_prompts(self, prompts: list) -> tuple[list[list[int]], None, dict[str, Any]]:
        if not self._is_vlm or not any(_has_media(p) for p in prompts):
            self._rollout_media = None
            self._rollout_requests = None
            return super()._tokenize_prompts(prompts)
        encoded: dict[str, tuple[list[int], dict[str, torch.Tensor], dict[str, Any] | None]] = {}
        prompt_ids: list[list[int]] = []
        media: list[dict[str, torch.Tensor]] = []
        requests: list[dict[str, Any] | None] = []
        for prompt in prompts:
            key = _prompt_key(prompt)
            if key not in encoded:
                encoded[key] = self._encode_prompt(prompt)
            ids, sample_media, request = encoded[key]
            prompt_ids.append(ids)
            media.append(sample_media)
            requests.append(request)
        self._rollout_media = media
        self._rollout_requests = requests if self.use_vllm else None
        # Generation takes the flat tensors (it never reorders rows); mm_token_type_ids per prompt,
        # left-padded by TRL like the prompt ids.
        fields: dict[str, Any] = _concat_media(media)
        fields["mm_token_type_ids"] = [self._mm_token_types(ids) for ids in prompt_ids]
        return prompt_ids, None, fields

    def _encode_prompt(
        self, prompt: list[dict[str, Any]]
    ) -> tuple[list[int], dict[str, torch.Tensor], dict[str, Any] | None]:
        """Prompt ids and media tensors for the transformers forwards, and the same prompt as a vLLM row."""
        videos, metadata, images = [], [], []
        for message in prompt:
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for part in content:
                kind = part.get("type")
                if kind == "video":
                    source = part.get("video", part.get("path", part.get("url")))
                    if isinstance(source, str):
                        clip = self.media_loader.clip(source)
                        videos.append(clip.frames)
                        metadata.append(clip.metadata())
                    else:  # pre-decoded frames; metadata may ride along in the part
                        videos.append(source)
                        metadata.append(part.get("video_metadata") or {"total_num_frames": len(source)})
                elif kind == "image":
                    source = part.get("image", part.get("path", part.get("url")))
                    images.append(self.media_loader.image(source) if isinstance(source, str) else source)
        text = self.processing_class.apply_chat_template(
            prompt,
            chat_template=self.chat_template,
            add_generation_prompt=True,
            tokenize=False,
            **self.chat_template_kwargs,
        )
        kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
        if videos:
            kwargs["videos"] = videos
            kwargs["video_metadata"] = metadata
        if images:
            kwargs["images"] = images
        enc = self.processing_class(**kwargs)
        sample_media = {k: enc[k] for k in _MEDIA_TENSORS if k in enc}
        if "second_per_grid_ts" in sample_media:
            sample_media["second_per_grid_ts"] = torch.as_tensor(
                sample_media["second_per_grid_ts"], dtype=torch.float32
            )
        # The vLLM row only when vLLM generates (transformers generation takes the tensors above).
        request = (
            vllm_request(text, list(zip(videos, metadata, strict=True)), images) if self.use_vllm else None
        )
        return enc["input_ids"][0].tolist(), sample_media, request

    def _mm_token_types(self, ids: list[int] | torch.Tensor) -> Any:
        """0 text, 1 image pad, 2 video pad (what Qwen's processor returns as `mm_token_type_ids`)."""
        t = torch.as_tensor(ids)
        types = torch.zeros_like(t)
        if self._image_token_id is not None:
            types[t == self._image_token_id] = 1
        if self._video_token_id is not None:
            types[t == self._video_token_id] = 2
        return types.tolist() if isinstance(ids, list) else types

    # -- 1b. vLLM rollout: the rows' own requests, pixels included ----------------------------------
    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, **kwargs: Any):
        requests = self._rollout_requests
        with self.vllm_generation.llm.serving(requests) if requests is not None else nullcontext():
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, **kwargs
            )

    # -- 2. old / reference log-probs during scoring --------------------------------------------------
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        self._rollout_media = None
        self._rollout_requests = None
        # `_tokenize_prompts` (called inside) sets `_rollout_media`; it must be active for the old and
        # reference forwards that TRL runs before returning.
        with self._media_active(lambda: self._rollout_media):
            output = super()._generate_and_score_completions(inputs)
        if self._rollout_media is not None:
            output[MEDIA_KEY] = self._rollout_media
        self._rollout_media = None
        self._rollout_requests = None
        return output

    # -- 3. policy forward ----------------------------------------------------------------------------
    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        media = inputs.get(MEDIA_KEY)
        with self._media_active(lambda: media):
            return super()._compute_loss(model, inputs)

    @contextmanager
    def _media_active(self, get_media: Any):
        previous = self._active_media_getter
        self._active_media_getter = get_media
        try:
            yield
        finally:
            self._active_media_getter = previous

    def _current_media(self) -> list[dict[str, torch.Tensor]] | None:
        return self._active_media_getter() if self._active_media_getter is not None else None

    # -- 4. every log-prob forward --------------------------------------------------------------------
    def _get_per_token_logps_and_entropies(
        self,
        model: Any,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        logits_to_keep: int,
        batch_size: int | None = None,
        compute_entropy: bool = False,
        compute_aux_loss: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        media = self._current_media()
        if media is None:
            return super()._get_per_token_logps_and_entropies(
                model,
                input_ids,
                attention_mask,
                logits_to_keep,
                batch_size=batch_size,
                compute_entropy=compute_entropy,
                compute_aux_loss=compute_aux_loss,
                **kwargs,
            )
        if len(media) != input_ids.size(0):
            raise RuntimeError(
                f"{len(media)} media entries for {input_ids.size(0)} sequences: rows out of step"
            )
        if kwargs.get("pixel_values") is not None:
            # TRL's own image path (an `images` column) and ours at once would feed the tower twice.
            raise ValueError("VideoGRPOTrainer owns the media: do not also pass an `images` column")
        batch_size = batch_size or input_ids.size(0)
        device = input_ids.device
        # No-grad passes (old and reference log-probs): the G completions of a prompt share one media
        # dict, so each distinct prompt's video is encoded once for the whole pass and the embeddings are
        # handed to the model (`mm_encoder_outputs`). The policy pass (grad enabled) keeps the pixels, so
        # the vision tower stays in the graph.
        encoded = None
        if not torch.is_grad_enabled():
            vlm = _vlm(model, self.accelerator)
            if _accepts_encoder_outputs(vlm):
                encoded = _encode_distinct_media(vlm, media, device)
        logps, entropies, aux_losses = [], [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            ids = input_ids[start:end]
            extra = {k: v.to(device) for k, v in _concat_media(media[start:end]).items()}
            if encoded is not None:
                extra = _with_encoder_outputs(extra, media[start:end], encoded)
            mm_types = self._mm_token_types(ids)
            mm_types[:, ids.size(1) - logits_to_keep :] = 0  # completion tokens are text
            extra["mm_token_type_ids"] = mm_types
            chunk_logps, chunk_entropies, chunk_aux = super()._get_per_token_logps_and_entropies(
                _BoundModel(model, extra),
                ids,
                attention_mask[start:end],
                logits_to_keep,
                batch_size=end - start,
                compute_entropy=compute_entropy,
                compute_aux_loss=compute_aux_loss,
            )
            logps.append(chunk_logps)
            if chunk_entropies is not None:
                entropies.append(chunk_entropies)
            if chunk_aux is not None:
                aux_losses.append(chunk_aux)
        return (
            torch.cat(logps, dim=0),
            torch.cat(entropies, dim=0) if entropies else None,
            torch.stack(aux_losses).mean() if aux_losses else None,
        )


def _check_vllm_settings(args: Any) -> None:
    """Refuse, before any model is loaded, the vLLM set-ups that cannot carry a video."""
    if args is None or not getattr(args, "use_vllm", False):
        return
    if getattr(args, "vllm_mode", "colocate") != "colocate":
        raise NotImplementedError(
            "video prompts cannot go through TRL's vLLM server (it takes token ids and image features "
            "only): use vllm_mode=colocate, or frames_as_images=true (stock GRPOTrainer, server mode works)"
        )
    if getattr(args, "vllm_tensor_parallel_size", 1) != 1:
        raise NotImplementedError(
            "video prompts with vLLM need vllm_tensor_parallel_size=1 (TRL gathers a tensor-parallel "
            "group's token ids, not the video requests); use data parallelism across GPUs instead"
        )


class _VideoRequestsLLM:
    """The vLLM engine, except that inside `serving(requests)` `generate` sends our rows instead of TRL's.

    TRL's colocate rollout builds one `{"prompt_token_ids": ids}` row per completion (n=1 each, prompts
    repeated G times, TP = 1) and calls `llm.generate(rows, sampling_params=...)`; row i is completion i
    of the batch `_tokenize_prompts` encoded, so its request is `requests[i]`. Everything else (weight
    sync through `llm.llm_engine` / `collective_rpc`, sleep and wake) reaches the engine untouched.
    """

    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self._requests: list[dict[str, Any]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    @contextmanager
    def serving(self, requests: list[dict[str, Any]]):
        self._requests = requests
        try:
            yield
        finally:
            self._requests = None

    def generate(self, prompts: Any, *args: Any, **kwargs: Any) -> Any:
        if self._requests is not None:
            if len(prompts) != len(self._requests):
                raise RuntimeError(
                    f"vLLM rollout: {len(prompts)} rows for {len(self._requests)} encoded prompts; rows out of step"
                )
            prompts = self._requests
        return self._llm.generate(prompts, *args, **kwargs)


def _concat_media(media: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate per-sample media tensors in batch order (the order the model consumes grids)."""
    out: dict[str, torch.Tensor] = {}
    for key in _MEDIA_TENSORS:
        parts = [m[key] for m in media if key in m]
        if parts:
            out[key] = torch.cat([torch.as_tensor(p) for p in parts], dim=0)
    return out


# ---- encoder outputs shared by the G completions of a prompt (no-grad passes) ------------------------

_PIXELS = {"video": ("pixel_values_videos", "video_grid_thw"), "image": ("pixel_values", "image_grid_thw")}


def _vlm(model: Any, accelerator: Any) -> Any:
    """The `...ForConditionalGeneration` under the DDP / DeepSpeed and PEFT wrappers."""
    model = accelerator.unwrap_model(model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _accepts_encoder_outputs(vlm: Any) -> bool:
    """Whether the model takes precomputed vision features (`mm_encoder_outputs`, transformers 5.2x's
    Qwen2/2.5-VL); other models keep the pixel path."""
    import inspect

    forward = getattr(getattr(vlm, "model", None), "forward", None)
    return (
        forward is not None
        and hasattr(vlm, "get_video_features")
        and "mm_encoder_outputs" in inspect.signature(forward).parameters
    )


def _encode_distinct_media(
    model: Any, media: list[dict[str, torch.Tensor]], device: torch.device
) -> dict[tuple[int, str], tuple[torch.Tensor, ...]]:
    """Per distinct media dict (by identity) and modality, the vision tower's per-video (per-image)
    embeddings: one tower call per modality for all distinct samples of the pass."""
    distinct = list({id(m): m for m in media}.values())
    out: dict[tuple[int, str], tuple[torch.Tensor, ...]] = {}
    for modality, (pixels_key, grid_key) in _PIXELS.items():
        owners = [m for m in distinct if pixels_key in m]
        if not owners:
            continue
        pixels = torch.cat([torch.as_tensor(m[pixels_key]) for m in owners]).to(device)
        grids = torch.cat([torch.as_tensor(m[grid_key]) for m in owners]).to(device)
        encode = model.get_video_features if modality == "video" else model.get_image_features
        features = encode(pixels, grids, return_dict=True).pooler_output
        i = 0
        for m in owners:
            n = int(torch.as_tensor(m[grid_key]).shape[0])
            out[(id(m), modality)] = tuple(features[i : i + n])
            i += n
    return out


def _with_encoder_outputs(
    extra: dict[str, Any],
    chunk_media: list[dict[str, torch.Tensor]],
    encoded: dict[tuple[int, str], tuple[torch.Tensor, ...]],
) -> dict[str, Any]:
    """The chunk's forward inputs with the pixels replaced by the shared embeddings (grids, frame times
    and token types stay: Qwen's M-RoPE positions need them)."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    extra = dict(extra)
    outputs: dict[str, Any] = {}
    for modality, (pixels_key, _) in _PIXELS.items():
        features = [f for m in chunk_media for f in encoded.get((id(m), modality), ())]
        if features:
            extra.pop(pixels_key, None)
            outputs[modality] = BaseModelOutputWithPooling(pooler_output=tuple(features))
    if outputs:
        extra["mm_encoder_outputs"] = outputs
    return extra
