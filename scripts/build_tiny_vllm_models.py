"""Build the tiny random-weight models `make test-vllm` serves with vLLM on CPU, offline.

Run with the vLLM venv's Python (it has transformers and tokenizers):

    .venv-vllm/bin/python scripts/build_tiny_vllm_models.py OUT

writes OUT/qwen2-tiny (a text Qwen2 for the reasoner; its tokenizer knows <think> / </think>, so
vLLM's deepseek_r1 reasoning parser works) and OUT/idefics3-tiny (a small Idefics3 VLM for the
captioner and reviser: vLLM's CPU build loads it without torchvision, and it takes frames as JPEG
`image_url` parts). Random weights: the answers are noise, which is the point: the tests check the
plumbing (requests, structured outputs, reasoning fields, errors), not the model.

The tokenizer is a byte-level BPE trained here on a few lines of text, so every string (JSON, any
Unicode) can be encoded and no hub download is needed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for p in m['content'] %}{% if p['type'] == 'text' %}{{ p['text'] }}"
    "{% elif p['type'] in ('image', 'image_url') %}<image>{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
IDEFICS_SPECIALS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]
CORPUS = [
    "The video shows a red circle moving left to right while a blue square stays still.",
    '{"caption": "a scene", "events": [{"t": 1.0, "what": "moves"}], "answer": "B"}',
    "Question: which option is right? A. left B. right C. up D. down. Let me think step by step.",
    "<think>first the circle, then the square</think> <answer>B</answer>",
] * 50


def tokenizer(out: Path, extra_specials: list[str]):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=600, min_frequency=1, special_tokens=SPECIALS + extra_specials)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=[t for t in SPECIALS + extra_specials if t not in ("<|im_end|>", "<|endoftext|>")],
    )
    tok.chat_template = CHATML
    tok.save_pretrained(out)
    return tok


def build_qwen2(out: Path) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tok = tokenizer(out, [])
    # <think> / </think> must stay ordinary (non-special) in decoding for the reasoning parser,
    # which looks for them in the generated text.
    cfg = Qwen2Config(
        vocab_size=len(tok),
        # head_dim 64: vLLM's CPU attention supports only some head sizes (16 is refused).
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).save_pretrained(out, safe_serialization=True)
    (out / "generation_config.json").write_text(json.dumps({"eos_token_id": cfg.eos_token_id}))


def build_idefics3(out: Path) -> None:
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )

    out.mkdir(parents=True, exist_ok=True)
    tok = tokenizer(out, IDEFICS_SPECIALS)
    image_size, patch, scale = 64, 16, 2
    seq_len = (image_size // patch) ** 2 // scale**2
    cfg = Idefics3Config(
        text_config={
            "model_type": "llama",
            "vocab_size": len(tok),
            "hidden_size": 128,  # head_dim 64, as above
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 8192,
            "eos_token_id": tok.convert_tokens_to_ids("<|im_end|>"),
            "pad_token_id": tok.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": patch,
        },
        scale_factor=scale,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(0)
    Idefics3ForConditionalGeneration(cfg).save_pretrained(out, safe_serialization=True)
    images = Idefics3ImageProcessor(
        do_image_splitting=False,
        size={"longest_edge": image_size},
        max_image_size={"longest_edge": image_size},
    )
    processor = Idefics3Processor(image_processor=images, tokenizer=tok, image_seq_len=seq_len, chat_template=CHATML)
    processor.save_pretrained(out)
    (out / "generation_config.json").write_text(json.dumps({"eos_token_id": cfg.text_config.eos_token_id}))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    out = Path(argv[0])
    build_qwen2(out / "qwen2-tiny")
    build_idefics3(out / "idefics3-tiny")
    print(f"built {out / 'qwen2-tiny'} and {out / 'idefics3-tiny'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
