"""Run a training stage in-process or as an `accelerate launch` subprocess (what the CLI wires).

    videorft train sft RECIPE            -> run_stage("sft", RECIPE)            (in-process)
    videorft train grpo RECIPE --accelerate-config recipes/accelerate/zero3.yaml --num-processes 8
                                         -> accelerate launch --config_file ... -m training.grpo --config RECIPE
    (launch options and `--key value` recipe overrides in any order: `parse_launch_args`)
    videorft eval RECIPE                 -> run_stage("eval", RECIPE)
    videorft bench-eval RECIPE --eval-dir DIR -> run_stage("bench", RECIPE, eval_dir=DIR)

In-process is right for the tiny model, tests and single-GPU runs; multi-GPU runs need one process
per GPU, which only a launcher can give, so `accelerate_command` builds that command line (open-r1's
`accelerate launch --config_file recipes/accelerate_configs/zero3.yaml src/open_r1/grpo.py --config ...`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

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


def free_port() -> int:
    """A TCP port nothing listens on now (the rendezvous port of a one-machine launch)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _needs_own_port(accelerate_config: str | Path | None) -> bool:
    """One machine and no port in the config: accelerate would take 29500, which a second run on the same
    box (another user, a test) may hold; pick a free one instead. Multi-node configs keep theirs."""
    if accelerate_config is None:
        return True
    import yaml

    data = yaml.safe_load(resolve_accelerate_config(accelerate_config).read_text()) or {}
    return int(data.get("num_machines") or 1) == 1 and not data.get("main_process_port")


def launch_env(accelerate_config: str | Path | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The launcher's environment: `base` (default: this process's), plus `ACCELERATE_USE_CPU=true` when
    the config says `use_cpu: true` (accelerate does not pass that on to the ranks of a MULTI_GPU launch,
    and TrainingArguments then never sets up the process group on a machine without GPUs)."""
    env = dict(os.environ if base is None else base)
    if accelerate_config is not None:
        import yaml

        data = yaml.safe_load(resolve_accelerate_config(accelerate_config).read_text()) or {}
        if data.get("use_cpu"):
            env["ACCELERATE_USE_CPU"] = "true"
    return env


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
    """The `accelerate launch` argv for a stage (no shell: pass it to `subprocess.run` as a list).

    Without `main_process_port`, a one-machine launch gets a free port (see `_needs_own_port`)."""
    cmd = [python or sys.executable, "-m", "accelerate.commands.launch"]
    if accelerate_config is not None:
        cmd += ["--config_file", str(resolve_accelerate_config(accelerate_config))]
    if num_processes is not None:
        cmd += ["--num_processes", str(num_processes)]
    if main_process_port is None and _needs_own_port(accelerate_config):
        main_process_port = free_port()
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
    """Run `accelerate launch` for a stage and wait; output goes to this process's stdout/stderr.
    Relative paths (recipe, overrides) resolve against `cwd`, by default this process's own.

    SIGTERM or Ctrl-C here ends every rank (`training.supervise`), then raises."""
    from training.supervise import run_supervised

    cmd = accelerate_command(
        stage, recipe, accelerate_config=accelerate_config, num_processes=num_processes, overrides=overrides
    )
    print("+", shlex.join(cmd), flush=True)
    returncode = run_supervised(cmd, cwd=cwd, env=launch_env(accelerate_config))
    if check and returncode != 0:
        raise subprocess.CalledProcessError(returncode, cmd)
    return subprocess.CompletedProcess(cmd, returncode)


# ---- `videorft train|eval` argument handling --------------------------------------------------------

LAUNCH_OPTIONS = {
    "--accelerate-config": "accelerate_config",
    "--accelerate_config": "accelerate_config",
    "--num-processes": "num_processes",
    "--num_processes": "num_processes",
}


class LaunchArgs(NamedTuple):
    recipe: str
    accelerate_config: str | None
    num_processes: int | None
    override_tokens: list[str]


def parse_launch_args(tokens: Sequence[str]) -> LaunchArgs:
    """`RECIPE [--accelerate-config NAME|FILE] [--num-processes N] [--key value ...]`, in any order.

    The launch options are taken wherever they stand (`--opt V` or `--opt=V`); everything else is recipe
    overrides for TrlParser. The recipe is the first bare token that names a YAML file, else the first
    bare token before any override flag."""
    launch: dict[str, str] = {}
    rest: list[str] = []
    recipe: str | None = None
    seen_override = False
    items = list(tokens)
    i = 0
    while i < len(items):
        tok = items[i]
        name, eq, value = tok.partition("=")
        if name in LAUNCH_OPTIONS:
            if not eq:
                if i + 1 >= len(items) or items[i + 1].startswith("--"):
                    raise ValueError(f"{name} needs a value")
                value = items[i + 1]
                i += 1
            launch[LAUNCH_OPTIONS[name]] = value
        elif (
            recipe is None
            and not tok.startswith("-")
            and (tok.endswith((".yaml", ".yml")) or not seen_override)
        ):
            recipe = tok
        else:
            seen_override = seen_override or tok.startswith("--")
            rest.append(tok)
        i += 1
    if recipe is None:
        raise ValueError("missing RECIPE (a YAML file, e.g. recipes/tiny/grpo.yaml)")
    num = launch.get("num_processes")
    if num is not None and (not num.isdigit() or int(num) < 1):
        raise ValueError(f"--num-processes must be a positive integer, got {num!r}")
    return LaunchArgs(recipe, launch.get("accelerate_config"), int(num) if num else None, rest)


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
