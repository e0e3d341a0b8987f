"""A tiny random Qwen2.5-VL saved like a real checkpoint, and one loader for real and tiny models.

`build_tiny_qwen25vl(out_dir)` writes a folder that `load_model_and_processor(out_dir)` loads through
the same code path as `Qwen/Qwen2.5-VL-7B-Instruct` (tests, the demo and the CPU benchmark use it):

- tokenizer: byte-level BPE trained with `tokenizers` on synthetic sentences, wrapped as transformers
  v5 `Qwen2Tokenizer(vocab=..., merges=...)`; Qwen's special tokens; `<think> </think> <answer>
  </answer>` as *normal* added tokens so they survive `skip_special_tokens=True` (the format and
  accuracy rewards read them from decoded completions);
- chat template: TRL's copy of the official Qwen2.5-VL template (TRL recognises it and maps it to its
  training variant with generation markers, used for assistant-only masks);
- model: `Qwen2_5_VLConfig` with a 64-wide, 2-layer text model and a 2-block vision tower, token ids
  taken from *this* tokenizer (image/video pad, vision start/end, eos, pad);
- processors: `Qwen2VLImageProcessorPil` and our numpy video processor (no torchvision).

The weights are random: the model only checks plumbing (shapes, masks, which tensors reach which
forward), never quality. Building is idempotent: a folder carrying the same spec hash is reused.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

TINY_QWEN_VERSION = "tiny-qwen2.5-vl/v1"
SPEC_FILE = "tiny_spec.json"

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Normal (non-special) added tokens: decoded even with skip_special_tokens=True.
REASONING_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]

TEXT_CONFIG = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
    "tie_word_embeddings": True,
}
VISION_CONFIG = {
    "depth": 2,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_heads": 4,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 56,
    "fullatt_block_indexes": [1],
    "out_hidden_size": 64,
    "tokens_per_second": 2,
}
BPE_VOCAB_SIZE = 600

_SUBJECTS = ["a red ball", "the blue cube", "a small car", "the person", "a green box", "the dog", "two cats"]
_VERBS = ["moves left", "moves right", "jumps", "stops", "turns around", "appears", "disappears", "rolls"]
_PLACES = ["near the wall", "on the table", "in the corner", "behind the door", "at the start", "at the end"]
_QUESTIONS = [
    "What happens in the video?",
    "Which object moves first?",
    "How many objects appear in the video?",
    "What color is the ball?",
    "Please think about this question as if you were a human pondering deeply.",
    "Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags.",
    "Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
]


def _synthetic_corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        obs = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_PLACES)}."
        lines.append(obs)
        lines.append(
            f"<think>The question asks about the video. {obs} So the answer is {rng.choice('ABCD')}.</think>"
        )
        lines.append(f"<answer>{rng.choice(['A', 'B', 'C', 'D', str(rng.randint(0, 99)), '3.14'])}</answer>")
    lines += _QUESTIONS + [
        "A. left\nB. right\nC. up\nD. down",
        "system user assistant You are a helpful assistant.",
    ]
    return lines


def build_tiny_tokenizer(seed: int = 0) -> Any:
    """Byte-level BPE in a `Qwen2Tokenizer`, Qwen special tokens appended after the BPE vocab."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(_synthetic_corpus(seed=seed), trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = dict(model["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    # Like Qwen: special tokens sit right after the BPE vocabulary, in this order.
    for token in SPECIAL_TOKENS:
        vocab.setdefault(token, len(vocab))
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",  # Qwen2.5-VL-Instruct ends turns (and generation) with <|im_end|>
        pad_token="<|endoftext|>",
        model_max_length=32768,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})
    tokenizer.add_tokens(REASONING_TOKENS)  # special=False on purpose
    return tokenizer


def qwen25vl_chat_template() -> str:
    """TRL's copy of the official Qwen2.5-VL chat template (byte-identical to the model's)."""
    import importlib.resources as resources

    return resources.files("trl").joinpath("chat_templates/qwen2_5_vl.jinja").read_text()


def tiny_config(tokenizer: Any) -> Any:
    from transformers import Qwen2_5_VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab_size = len(tokenizer)
    vocab_size += -vocab_size % 64  # pad like real checkpoints do; ids beyond len(tokenizer) stay unused
    text = dict(TEXT_CONFIG)
    text.update(
        vocab_size=vocab_size,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=dict(VISION_CONFIG),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def _spec(seed: int) -> dict[str, Any]:
    return {
        "version": TINY_QWEN_VERSION,
        "seed": seed,
        "text": TEXT_CONFIG,
        "vision": VISION_CONFIG,
        "bpe_vocab_size": BPE_VOCAB_SIZE,
    }


def build_tiny_qwen25vl(out_dir: str | Path, *, seed: int = 0, overwrite: bool = False) -> Path:
    """Write (or reuse) a tiny random Qwen2.5-VL checkpoint folder; returns its path.

    Idempotent: when `out_dir` already holds a build with the same spec, nothing is rebuilt (session
    fixtures and the demo call this freely). The folder is written to a sibling temp dir and renamed,
    so a crash never leaves a half-written model that a later call would reuse.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    from training.video_processor import (
        IMAGE_MAX_PIXELS,
        IMAGE_MIN_PIXELS,
        VIDEO_MAX_PIXELS,
        VIDEO_MIN_PIXELS,
        NumpyQwen2VLVideoProcessor,
    )

    out = Path(out_dir)
    spec = _spec(seed)
    spec_path = out / SPEC_FILE
    if not overwrite and spec_path.exists():
        try:
            if json.loads(spec_path.read_text()) == json.loads(json.dumps(spec)):
                return out
        except json.JSONDecodeError:
            pass

    tmp = out.with_name(out.name + ".tmp-build")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    tokenizer = build_tiny_tokenizer(seed=seed)
    chat_template = qwen25vl_chat_template()
    tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(tmp)
    (tmp / "chat_template.jinja").write_text(chat_template)

    from transformers import Qwen2VLImageProcessorPil

    Qwen2VLImageProcessorPil(min_pixels=IMAGE_MIN_PIXELS, max_pixels=IMAGE_MAX_PIXELS).save_pretrained(tmp)
    NumpyQwen2VLVideoProcessor(min_pixels=VIDEO_MIN_PIXELS, max_pixels=VIDEO_MAX_PIXELS).save_pretrained(tmp)

    config = tiny_config(tokenizer)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id,
        eos_token_id=[
            tokenizer.convert_tokens_to_ids("<|im_end|>"),
            tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        ],
        pad_token_id=config.text_config.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(tmp)
    spec_path_tmp = tmp / SPEC_FILE
    spec_path_tmp.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")

    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def is_tiny_checkpoint(name_or_path: str | Path) -> bool:
    return (Path(name_or_path) / SPEC_FILE).exists()


def load_model_and_processor(
    name_or_path: str | Path,
    *,
    dtype: str | Any = "auto",
    attn_implementation: str | None = None,
    device_map: str | dict | None = None,
    video_min_pixels: int | None = None,
    video_max_pixels: int | None = None,
    image_min_pixels: int | None = None,
    image_max_pixels: int | None = None,
    num_frames: int | None = None,
    padding_side: str | None = None,
    load_model: bool = True,
    **model_kwargs: Any,
) -> tuple[Any, Any]:
    """Load `(model, processor)` for a hub id ("Qwen/Qwen2.5-VL-7B-Instruct"), a checkpoint folder
    (an SFT output) or the tiny folder, through the same path.

    The processor is always assembled from its parts (`training.video_processor.load_processor`):
    AutoProcessor refuses the tiny folder and the stock video processor needs torchvision.
    `load_model=False` returns `(None, processor)` (evaluation with vLLM, data checks).
    """
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    from training.video_processor import load_processor

    processor = load_processor(
        name_or_path,
        video_min_pixels=video_min_pixels,
        video_max_pixels=video_max_pixels,
        image_min_pixels=image_min_pixels,
        image_max_pixels=image_max_pixels,
        num_frames=num_frames,
        padding_side=padding_side,
    )
    if not load_model:
        return None, processor
    if isinstance(dtype, str) and dtype not in ("auto",):
        dtype = getattr(torch, dtype)
    kwargs: dict[str, Any] = dict(model_kwargs)
    kwargs["dtype"] = dtype
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if device_map is not None:
        kwargs["device_map"] = device_map
    config = AutoConfig.from_pretrained(str(name_or_path))
    model = AutoModelForImageTextToText.from_pretrained(str(name_or_path), config=config, **kwargs)
    return model, processor
