"""Load videorft outputs with *stock* transformers (torchvision present) and generate on a video.

Run with a separate environment that has the stock video processor (`make test-stock` builds
`.venv-stock`: torch 2.14.1 + torchvision 0.29.1 + transformers 5.23.0), never the project's venv:

    .venv-stock/bin/python scripts/check_stock_load.py FOLDER [FOLDER ...]

For each folder: `AutoProcessor.from_pretrained` must give `Qwen2_5_VLProcessor` with the stock
`Qwen2VLVideoProcessor`, `AutoModelForImageTextToText.from_pretrained` must load every weight, and the
model must generate from a 16-frame video. Prints one line per folder; exit status 1 on any failure.
"""

from __future__ import annotations

import sys


def check(folder: str) -> str:
    import numpy as np
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor, Qwen2VLVideoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    assert type(processor).__name__ == "Qwen2_5_VLProcessor", type(processor)
    assert isinstance(processor.video_processor, Qwen2VLVideoProcessor), type(processor.video_processor)
    model, info = AutoModelForImageTextToText.from_pretrained(folder, output_loading_info=True)
    assert not info["unexpected_keys"] and not [k for k in info["missing_keys"] if "lm_head" not in k], info
    frames = np.random.default_rng(0).integers(0, 255, size=(16, 64, 64, 3), dtype=np.uint8)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=[text], videos=[frames], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    grid = inputs["video_grid_thw"].tolist()
    return f"ok {folder}: {type(processor.video_processor).__name__}, video grid {grid}, generated {out.shape[1] - inputs['input_ids'].shape[1]} tokens"


def main(folders: list[str]) -> int:
    failed = 0
    for folder in folders:
        try:
            print(check(folder), flush=True)
        except Exception as err:  # noqa: BLE001 - report every folder
            failed += 1
            print(f"FAILED {folder}: {type(err).__name__}: {err}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
