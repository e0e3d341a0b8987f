"""Write tiny SFT and GRPO outputs and an export for scripts/check_stock_load.py (`make test-stock`).

    .venv/bin/python scripts/make_stock_outputs.py OUT     # OUT/sft, OUT/grpo, OUT/export
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "training")]


def main(out: Path) -> None:
    import datasets
    import torch
    from conftest import TEST_VIDEO, published_rows, write_video

    from training.export import export_model
    from training.grpo import run_grpo
    from training.sft import run_sft
    from training.tiny_qwen import build_tiny_qwen25vl

    torch.set_num_threads(1)
    shutil.rmtree(out, ignore_errors=True)
    media = out / "media" / "videos"
    media.mkdir(parents=True)
    for i, (w, h) in enumerate([(64, 64), (128, 96), (64, 64), (96, 64)]):
        write_video(media / f"clip{i}.mp4", w, h, 8.0, 1.5, seed=i)
    rows = [r for r in published_rows() if r["data_type"] == "video"]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows * 2)}).save_to_disk(str(out / "data"))
    common = {"media_root": str(out / "media"), "max_steps": 1, "report_to": "none", **TEST_VIDEO}
    model = build_tiny_qwen25vl(out / "model")
    recipes = REPO / "recipes" / "tiny"
    run_sft(recipes / "sft.yaml", model_name_or_path=str(model), dataset_name=str(out / "data"),
            output_dir=str(out / "sft"), **common)  # fmt: skip
    run_grpo(recipes / "grpo.yaml", model_name_or_path=str(out / "sft"), dataset_name=str(out / "data"),
             output_dir=str(out / "grpo"), reward_funcs=["completion_length"], reward_weights=[1.0],
             gradient_accumulation_steps=1, **common)  # fmt: skip
    export_model(out / "grpo", out / "export")
    print(f"wrote {out}/sft {out}/grpo {out}/export")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/stock-check"))
