"""`videorft export-model SRC OUT`: a training output (or a `checkpoint-N`) as a folder stock tools serve.

What `vllm serve OUT`, `AutoProcessor` / `AutoModelForImageTextToText` (transformers 4.5x and 5.x) and
eval harnesses read: `config.json` + safetensors weights (the legacy Qwen2.5-VL key layout every
loader knows), `generation_config.json`, the tokenizer, the chat template (`chat_template.jinja` and
the older `chat_template.json`), and the processor both nested (`processor_config.json`, transformers
5) and flat (`preprocessor_config.json` for the image processor, `video_preprocessor_config.json`),
every `*_type` / `processor_class` naming a stock transformers class. Training-only files (optimizer,
scheduler, RNG, trainer state, `training_args.bin`) are left behind; `videorft_run.json` (provenance)
is kept. The weights are checked to load completely before anything is written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

STOCK_PROCESSOR = "Qwen2_5_VLProcessor"
STOCK_IMAGE_PROCESSOR = "Qwen2VLImageProcessor"
CLASS_KEYS = ("processor_class", "image_processor_type", "video_processor_type", "tokenizer_class")
PROVENANCE = ("videorft_run.json", "videorft_result.json")


def class_names(folder: str | Path) -> dict[str, str]:
    """Every class name the folder's JSON configs carry: `{"file:key": name}` (nested ones included)."""
    found: dict[str, str] = {}

    def walk(prefix: str, data: Any) -> None:
        if isinstance(data, dict):
            for key, value in data.items():
                if key in CLASS_KEYS and isinstance(value, str):
                    found[f"{prefix}:{key}"] = value
                else:
                    walk(f"{prefix}.{key}" if isinstance(value, dict) else prefix, value)

    for path in sorted(Path(folder).glob("*.json")):
        try:
            walk(path.name, json.loads(path.read_text()))
        except json.JSONDecodeError:
            continue
    return found


def non_stock_classes(folder: str | Path) -> dict[str, str]:
    """The class names in the folder's configs that transformers does not export (empty = all stock)."""
    import transformers

    return {where: name for where, name in class_names(folder).items() if not hasattr(transformers, name)}


def export_model(
    src: str | Path, out: str | Path, *, dtype: str | None = None, overwrite: bool = False
) -> Path:
    """Write `out` from the training output or checkpoint `src` (see the module docstring)."""
    import torch
    from transformers import AutoModelForImageTextToText

    from training.video_processor import load_processor

    src, out = Path(src), Path(out)
    if out.exists():
        if not overwrite:
            raise FileExistsError(f"{out} exists (pass overwrite=True / --overwrite)")
        shutil.rmtree(out)
    kwargs: dict[str, Any] = {"output_loading_info": True}
    if dtype:
        kwargs["dtype"] = getattr(torch, dtype)
    model, info = AutoModelForImageTextToText.from_pretrained(str(src), **kwargs)
    missing = [
        k for k in info.get("missing_keys", []) if "lm_head" not in k or not model.config.tie_word_embeddings
    ]
    if missing or info.get("unexpected_keys") or info.get("mismatched_keys"):
        raise RuntimeError(f"{src}: weights do not load cleanly: {info}")
    processor = load_processor(src)

    tmp = out.with_name(out.name + ".tmp-export")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    # Flat per-processor files and the JSON chat template: what loaders before transformers 5 read.
    image = processor.image_processor.to_dict()
    image.update(image_processor_type=STOCK_IMAGE_PROCESSOR, processor_class=STOCK_PROCESSOR)
    (tmp / "preprocessor_config.json").write_text(json.dumps(image, indent=2, sort_keys=True) + "\n")
    video = processor.video_processor.to_dict()
    video["processor_class"] = STOCK_PROCESSOR
    (tmp / "video_preprocessor_config.json").write_text(json.dumps(video, indent=2, sort_keys=True) + "\n")
    if processor.chat_template:
        (tmp / "chat_template.json").write_text(
            json.dumps({"chat_template": processor.chat_template}, indent=2)
        )
    for name in PROVENANCE:
        if (src / name).exists():
            shutil.copy2(src / name, tmp / name)
    odd = non_stock_classes(tmp)
    if odd:
        raise RuntimeError(f"export would name non-stock classes: {odd}")
    tmp.rename(out)
    return out
