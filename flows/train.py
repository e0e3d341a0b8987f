"""Training flows: `train_sft`, `train_grpo`, `evaluate`.

Each runs one training entry point (training/sft.py, training/grpo.py, training/evaluate.py) from a
recipe, either in-process on one device or as an `accelerate launch` subprocess whose output is
streamed line by line into the flow run's logs. The dataset version and the input checkpoint are
flow parameters, so they are visible on every flow run in the UI.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.curate import _artifact_key


def overrides_to_flags(overrides: dict[str, Any] | None) -> list[str]:
    """{"output_dir": "x", "max_steps": 3} -> ["--output_dir", "x", "--max_steps", "3"] (TrlParser)."""
    flags: list[str] = []
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, (list, dict)):
            value = json.dumps(value)
        flags += [f"--{key}", str(value)]
    return flags


def _stream(cmd: list[str], logger: Any, cwd: Path | None = None) -> int:
    """Run a subprocess, forwarding each output line to the flow's logger as it arrives."""
    logger.info("launching: %s", " ".join(cmd))
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            logger.info(line.rstrip())
        return proc.wait()


def _run_training(stage: str, recipe: str, overrides: dict[str, Any] | None, accelerate_config: str | None) -> dict[str, Any]:
    from training.launch import accelerate_command, run_in_process

    logger = get_run_logger()
    flags = overrides_to_flags(overrides)
    if accelerate_config:
        cmd = accelerate_command(stage, recipe, accelerate_config, flags)
        rc = _stream(cmd, logger)
        if rc != 0:
            raise RuntimeError(f"{stage} exited with status {rc}")
        result = _read_result(stage, recipe, overrides)
    else:
        result = run_in_process(stage, recipe, flags)
    try:
        from prefect.artifacts import create_markdown_artifact

        body = "\n".join(f"- **{k}**: `{v}`" for k, v in result.items() if not isinstance(v, (dict, list)))
        create_markdown_artifact(key=_artifact_key(stage, "result"), markdown=f"# {stage}\n\n{body}")
    except Exception as err:  # noqa: BLE001 - artifacts are a convenience
        logger.warning("could not post the %s artifact: %s", stage, err)
    return result


def _read_result(stage: str, recipe: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """A subprocess run leaves `<output_dir>/videorft_result.json`; read it back."""
    from training.launch import output_dir_of

    out = Path(output_dir_of(recipe, overrides_to_flags(overrides)))
    path = out / "videorft_result.json"
    return json.loads(path.read_text()) if path.exists() else {"output_dir": str(out)}


@flow(name="train_sft", flow_run_name="sft-{dataset_version}", log_prints=True)
def train_sft(recipe: str, dataset: str | None = None, dataset_version: str = "unversioned",
              model: str | None = None, output_dir: str | None = None,
              overrides: dict[str, Any] | None = None, accelerate_config: str | None = None) -> dict[str, Any]:
    """Supervised fine-tuning on a published CoT set."""
    ov = {"dataset_path": dataset, "model_name_or_path": model, "output_dir": output_dir, **(overrides or {})}
    return _run_training("sft", recipe, ov, accelerate_config)


@flow(name="train_grpo", flow_run_name="grpo-{dataset_version}", log_prints=True)
def train_grpo(recipe: str, dataset: str | None = None, dataset_version: str = "unversioned",
               checkpoint: str | None = None, output_dir: str | None = None,
               overrides: dict[str, Any] | None = None, accelerate_config: str | None = None) -> dict[str, Any]:
    """GRPO on a published RL set, starting from `checkpoint` (usually the SFT output)."""
    ov = {"dataset_path": dataset, "model_name_or_path": checkpoint, "output_dir": output_dir, **(overrides or {})}
    return _run_training("grpo", recipe, ov, accelerate_config)


@flow(name="evaluate", flow_run_name="eval-{dataset_version}", log_prints=True)
def evaluate(recipe: str, dataset: str | None = None, dataset_version: str = "unversioned",
             checkpoint: str | None = None, output_dir: str | None = None,
             overrides: dict[str, Any] | None = None, accelerate_config: str | None = None) -> dict[str, Any]:
    """Generate on a held-out set and score with the same scorers as the rewards."""
    ov = {"dataset_path": dataset, "model_name_or_path": checkpoint, "output_dir": output_dir, **(overrides or {})}
    return _run_training("eval", recipe, ov, accelerate_config)

