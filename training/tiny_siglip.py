"""A tiny random SigLIP saved like a real checkpoint, for offline tests and benchmarks.

`build_tiny_siglip(out_dir)` writes a folder that `SemanticScorer(out_dir)` loads through exactly the
code path used for `google/siglip-so400m-patch14-384` (`SiglipModel.from_pretrained`,
`AutoTokenizer.from_pretrained`, `AutoImageProcessor.from_pretrained(backend="pil")`). The weights are
random, so similarities mean nothing; what the tests check is plumbing, caching and arithmetic.

The real SigLIP tokenizer is a sentencepiece model; here a small Unigram model trained with `tokenizers`
on synthetic sentences (Metaspace pre-tokenizer like sentencepiece, lower-cased like SigLIP, `</s>`
appended and used as pad, max length 64) stands in as a fast tokenizer. The image processor is the PIL
backend of `SiglipImageProcessor`: the default backend needs torchvision, which must not be installed here.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

TINY_SIGLIP_VERSION = "tiny-siglip/v1"
TEXT_MAX_LENGTH = 64
IMAGE_SIZE = 56
PATCH_SIZE = 14
VOCAB_SIZE = 256

_SUBJECTS = ["a red ball", "the blue cube", "a small car", "the person", "a green box", "the dog", "two cats"]
_VERBS = ["moves left", "moves right", "jumps", "stops", "turns around", "appears", "disappears", "rolls"]
_PLACES = ["near the wall", "on the table", "in the corner", "behind the door", "at the start", "at the end"]
_WORDS = (
    "video frame scene object question answer option reason think first then after before left right top "
    "bottom color shape count number time second moment start end moving static camera person hand table "
    "because therefore so which what where when how many appears happens describes shows red blue green"
).split()
_EXTRA = [
    "The video shows a scene with several objects.",
    "First the question asks about the order of events.",
    "Then the answer is option A, B, C or D.",
    "There are 3 objects and 12 frames in 4.5 seconds.",
]


def _synthetic_corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = [f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_PLACES)}." for _ in range(n)]
    lines += [" ".join(rng.choices(_WORDS, k=rng.randint(4, 12))) + "." for _ in range(n)]
    return lines + _EXTRA


def _build_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from tokenizers.trainers import UnigramTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(Unigram())
    # SigLIP lower-cases and strips punctuation-ish noise; a Metaspace split mimics sentencepiece.
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(Regex(r"\s+"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = UnigramTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        shrinking_factor=0.75,
    )
    tok.train_from_iterator(_synthetic_corpus(), trainer=trainer)
    eos_id = tok.token_to_id("</s>")
    # Like SiglipTokenizer: every text ends with </s>.
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", eos_id)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="</s>",
        pad_token="</s>",  # SigLIP pads with </s>
        unk_token="<unk>",
        model_max_length=TEXT_MAX_LENGTH,
        model_input_names=["input_ids"],  # SigLIP is used without an attention mask
    )


def _build_model(vocab_size: int, pad_id: int, eos_id: int, seed: int):
    import torch
    from transformers import SiglipConfig, SiglipModel, SiglipTextConfig, SiglipVisionConfig

    # Config objects, not dicts: a dict is first merged into a default text config whose CLIP token ids
    # (49406/49407) trigger vocabulary warnings.
    text_config = SiglipTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=TEXT_MAX_LENGTH,
        projection_size=32,
        pad_token_id=pad_id,
        bos_token_id=eos_id,  # SigLIP has no BOS; the default (CLIP's 49406) is outside our vocab
        eos_token_id=eos_id,
    )
    vision_config = SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
    )
    config = SiglipConfig(text_config=text_config, vision_config=vision_config)
    torch.manual_seed(seed)
    return SiglipModel(config).eval()


def _save_quietly(model, out: Path) -> None:
    # save_pretrained diffs the config against a default SiglipConfig, whose CLIP token ids make
    # transformers warn about *its own* default; silence that one call, not our config.
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model.save_pretrained(out)
    finally:
        hf_logging.set_verbosity(previous)


def build_tiny_siglip(out_dir: str | Path, seed: int = 0) -> Path:
    """Build (or reuse) a tiny random SigLIP checkpoint folder and return its path.

    Idempotent: a folder already holding a complete build of this version is returned untouched, so
    embeddings cached on disk for it stay valid.
    """
    from transformers import SiglipImageProcessorPil, SiglipProcessor

    out = Path(out_dir)
    stamp = out / "tiny_siglip.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("version") == TINY_SIGLIP_VERSION:
        return out
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = _build_tokenizer()
    image_processor = SiglipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    model = _build_model(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, seed)
    _save_quietly(model, out)
    n_params = sum(p.numel() for p in model.parameters())
    # Written last: its presence means the folder is complete.
    stamp.write_text(json.dumps({"version": TINY_SIGLIP_VERSION, "seed": seed, "parameters": n_params}))
    return out
