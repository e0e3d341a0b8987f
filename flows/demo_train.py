"""`videorft demo --train`: tiny SFT → GRPO → evaluation on CPU, on the datasets the demo published.

The model is the tiny random-weight Qwen2.5-VL (built offline), so the numbers mean nothing; what the
demo shows is the path: the published sets feed TRL, video reaches the model, the rewards and the
evaluation use the same scorers as the curation filters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_demo_training(workdir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    from flows.pipeline import train_chain
    from training.tiny_qwen import build_tiny_qwen25vl

    model = build_tiny_qwen25vl(workdir / "tiny-model")
    media_root = str(Path(manifest["recipe"]["source"]["media_root"]).resolve())
    print(f"[train] tiny random Qwen2.5-VL at {model}: SFT → GRPO → eval (CPU, a few steps)")
    recipes = Path(__file__).resolve().parents[1] / "recipes" / "tiny"
    result = train_chain(
        manifest["publish"],
        run_name=manifest["run_name"],
        media_root=media_root,
        base_model=str(model),
        sft_recipe=str(recipes / "sft.yaml"),
        grpo_recipe=str(recipes / "grpo.yaml"),
        eval_recipe=str(recipes / "eval.yaml"),
        output_root=str(workdir / "train"),
        launcher="inprocess",
        use_deployments=False,
    )
    print(f"  SFT checkpoint:  {result['sft'].get('checkpoint')}")
    print(f"  GRPO checkpoint: {result['grpo'].get('checkpoint')}")
    print(f"  evaluation:      {result['eval'].get('output_dir')}")
    return result
