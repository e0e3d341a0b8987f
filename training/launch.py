"""Run a training stage in-process or as an `accelerate launch` subprocess (what the CLI wires).

    videorft train sft RECIPE            -> run_stage("sft", RECIPE)            (in-process)
    videorft train grpo RECIPE --accelerate-config recipes/accelerate/zero3.yaml --num-processes 8
                                         -> accelerate launch --config_file ... -m training.grpo --config RECIPE
    videorft eval RECIPE                 -> run_stage("eval", RECIPE)
    videorft bench-eval RECIPE --eval-dir DIR -> run_stage("bench", RECIPE, eval_dir=DIR)

In-process is right for the tiny model, tests and single-GPU runs; multi-GPU runs need one process
per GPU, which only a launcher can give, so `accelerate_command` builds that command line (open-r1's
`accelerate launch --config_file recipes/accelerate_configs/zero3.yaml src/open_r1/grpo.py --config ...`).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

STAGE_MODULES = {
    "sft": "training.sft",
    "grpo": "training.grpo",
    "eval": "training.evaluate",
    "bench": "training.bench_eval",
}
REPO_ROOT = Path(__file__).resolve().parents[1]
ACCELERATE_CONFIGS = REPO_ROOT / "recipes" / "accelerate"


def _module(stage: str) -> str:
    try:
        return STAGE_MODULES[stage]
    except KeyError:
        raise ValueError(f"unknown stage {stage!r}; one of {sorted(STAGE_MODULES)}") from None


def override_args(overrides: Mapping[str, Any] | None) -> list[str]:
    """`{"max_steps": 3, "bf16": False}` -> `["--max_steps", "3", "--bf16", "False"]` (HfArgumentParser syntax).

    Lists become repeated values (`--reward_funcs format accuracy`); dicts are not expressible as flags
    and raise (put them in the recipe).
    """
    args: list[str] = []
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping):
            raise ValueError(f"override {key!r} is a mapping: set it in the recipe YAML instead")
        if isinstance(value, (list, tuple)):
            args += [f"--{key}", *[str(v) for v in value]]
        elif value is None:
            args += [f"--{key}", "None"]
        else:
            args += [f"--{key}", str(value)]
    return args


def resolve_accelerate_config(config: str | Path) -> Path:
    """A path, or a short name from recipes/accelerate/ ("ddp", "zero2", "zero3")."""
    path = Path(config)
    if path.exists():
        return path
    named = ACCELERATE_CONFIGS / f"{config}.yaml"
    if named.exists():
        return named
    raise FileNotFoundError(f"accelerate config {config!r} not found (nor {named})")


def accelerate_command(
    stage: str,
    recipe: str | Path,
    *,
    accelerate_config: str | Path | None = None,
    num_processes: int | None = None,
    main_process_port: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    python: str | None = None,
) -> list[str]:
    """The `accelerate launch` argv for a stage (no shell: pass it to `subprocess.run` as a list)."""
    cmd = [python or sys.executable, "-m", "accelerate.commands.launch"]
    if accelerate_config is not None:
        cmd += ["--config_file", str(resolve_accelerate_config(accelerate_config))]
    if num_processes is not None:
        cmd += ["--num_processes", str(num_processes)]
    if main_process_port is not None:
        cmd += ["--main_process_port", str(main_process_port)]
    cmd += ["-m", _module(stage), "--config", str(recipe)]
    return cmd + override_args(overrides)


def launch(
    stage: str,
    recipe: str | Path,
    *,
    accelerate_config: str | Path | None = None,
    num_processes: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    cwd: str | Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run `accelerate launch` for a stage and wait; output goes to this process's stdout/stderr."""
    cmd = accelerate_command(
        stage, recipe, accelerate_config=accelerate_config, num_processes=num_processes, overrides=overrides
    )
    print("+", shlex.join(cmd), flush=True)
    return subprocess.run(cmd, cwd=str(cwd or REPO_ROOT), check=check)


def run_stage(stage: str, recipe: str | Path | dict | Sequence[str], **overrides: Any) -> dict[str, Any]:
    """Run a stage in this process; returns the stage's result dict (metrics, output_dir, ...)."""
    _module(stage)
    if stage == "sft":
        from training.sft import run_sft

        return run_sft(recipe, **overrides)
    if stage == "grpo":
        from training.grpo import run_grpo

        return run_grpo(recipe, **overrides)
    if stage == "bench":
        from training.bench_eval import run_bench

        return run_bench(recipe, **overrides)
    from training.evaluate import run_eval

    return run_eval(recipe, **overrides)
