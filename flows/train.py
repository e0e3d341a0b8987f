"""Training flows: `train_sft`, `train_grpo`, `evaluate`.

Each runs one training entry point (training/sft.py, training/grpo.py, training/evaluate.py) from a
recipe, in one of three ways (`launcher`):

- `inprocess`: `training.launch.run_stage(stage, recipe, **overrides)` in the flow run's own
  process (one device; what a process worker on a one-GPU box and the CPU demo use);
- `accelerate`: `accelerate launch --config_file ACCELERATE_CONFIG -m training.sft --config RECIPE
  --key value ...` as a subprocess (several GPUs, DeepSpeed; the command line is
  training.launch.accelerate_command, ACCELERATE_CONFIG a path or a name from recipes/accelerate/),
  its output streamed line by line into the flow run's logs;
- `subprocess`: the same without accelerate (`python -m training.sft ...`), for memory isolation.
`auto` (the default) is `accelerate` when an accelerate config is given, else `inprocess`.

The dataset, its version and the input checkpoint are flow parameters, so every flow run shows them
in the UI; the run names are `sft-<version>`, `grpo-<version>`, `eval-<version>`. Results travel
through files, never through Prefect's result persistence: each run writes
`<output_dir>/videorft_result.json` (stage, dataset version, input model, produced checkpoint,
metrics), which the pipeline reads to chain the next step.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

RESULT_FILE = "videorft_result.json"
LAUNCHERS = ("auto", "inprocess", "subprocess", "accelerate")


# Stages whose output_dir holds a model (the next stage's checkpoint); eval writes metrics only.
PRODUCES_MODEL = {"sft": True, "grpo": True, "eval": False}


# ---- recipe overrides -----------------------------------------------------------------------------


def stage_overrides(
    *,
    dataset: str | None = None,
    model: str | None = None,
    output_dir: str | None = None,
    media_root: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The recipe keys a flow sets (TRL/our dataclass field names); None leaves the recipe's value.

    Explicit `overrides` win over the named parameters."""
    named = {
        "dataset_name": dataset,
        "model_name_or_path": model,
        "output_dir": output_dir,
        "media_root": media_root,
    }
    merged = {k: v for k, v in named.items() if v is not None}
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return merged


def overrides_to_flags(overrides: dict[str, Any] | None) -> list[str]:
    """{"output_dir": "x", "max_steps": 3} -> ["--output_dir", "x", "--max_steps", "3"] (TrlParser flags).

    training.launch.override_args does the formatting (lists repeat their values, mappings are
    refused: they belong in the recipe); None values are dropped here, so the recipe's value stays."""
    from training.launch import override_args

    return override_args({k: v for k, v in (overrides or {}).items() if v is not None})


def output_dir_of(recipe: str | Path, overrides: dict[str, Any] | None = None) -> Path:
    """Where a run writes: the `output_dir` override, else the recipe's."""
    if overrides and overrides.get("output_dir"):
        return Path(overrides["output_dir"])
    import yaml

    data = yaml.safe_load(Path(recipe).read_text()) or {}
    if not data.get("output_dir"):
        raise ValueError(f"{recipe} sets no output_dir and none was given")
    return Path(data["output_dir"])


def resolve_launcher(launcher: str, accelerate_config: str | None) -> str:
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {LAUNCHERS}, got {launcher!r}")
    if launcher == "auto":
        return "accelerate" if accelerate_config else "inprocess"
    if launcher == "accelerate" and not accelerate_config:
        raise ValueError("launcher 'accelerate' needs accelerate_config (e.g. recipes/accelerate/*.yaml)")
    return launcher


def launch_command(
    stage: str,
    recipe: str | Path,
    overrides: dict[str, Any] | None,
    accelerate_config: str | None = None,
    num_processes: int | None = None,
) -> list[str]:
    """A subprocess run's argv: training.launch's `accelerate launch ... -m <entry> --config RECIPE ...`,
    or `python -m <entry> --config RECIPE ...` without an accelerate config."""
    from training.launch import STAGE_MODULES, accelerate_command

    ov = {k: v for k, v in (overrides or {}).items() if v is not None}
    if accelerate_config:
        return accelerate_command(
            stage, recipe, accelerate_config=accelerate_config, num_processes=num_processes, overrides=ov
        )
    return [sys.executable, "-m", STAGE_MODULES[stage], "--config", str(recipe), *overrides_to_flags(ov)]


# ---- running ---------------------------------------------------------------------------------------


def stream_subprocess(
    cmd: list[str], logger: Any, cwd: str | Path | None = None, env: dict[str, str] | None = None
) -> int:
    """Run `cmd`, forwarding each output line to `logger` as it arrives; returns the exit status.

    Cancelling the flow run (Prefect raises into this process) or SIGTERM ends the launcher and every
    rank it started (`training.supervise`), instead of leaving them on the GPUs."""
    from training.supervise import run_supervised

    logger.info("launching: %s", " ".join(cmd))
    run_env = dict(os.environ if env is None else env)
    run_env.setdefault("PYTHONUNBUFFERED", "1")

    def forward(line: str) -> None:
        line = line.rstrip()
        if line:
            logger.info(line)

    return run_supervised(cmd, cwd=cwd, env=run_env, on_line=forward)


@contextlib.contextmanager
def _forward_library_logs(names: tuple[str, ...] = ("training", "trl")) -> Iterator[None]:
    """Send the training code's own log records (INFO and up) to the flow run while it runs in-process."""
    try:
        from prefect.logging.handlers import APILogHandler
    except ImportError:  # pragma: no cover - prefect always ships it
        yield
        return
    handler = APILogHandler(level=logging.INFO)
    loggers = [logging.getLogger(n) for n in names]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeHandler(handler)


def launch_env(accelerate_config: str | None) -> dict[str, str]:
    from training.launch import launch_env as env_for

    return env_for(accelerate_config)


def _run_inprocess(stage: str, recipe: str, overrides: dict[str, Any]) -> dict[str, Any]:
    from training.launch import run_stage

    with _forward_library_logs():
        return dict(run_stage(stage, recipe, **overrides) or {})


def _metrics_from_files(out: Path) -> dict[str, Any]:
    """Metrics a subprocess left behind: evaluate's metrics.json, else Trainer's all_results.json."""
    for name in ("metrics.json", "all_results.json"):
        path = out / name
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict):
                return data
    return {}


def _scalars(metrics: Any) -> dict[str, Any]:
    """Flat metrics for the record: top-level scalars, plus evaluate's `overall` block."""
    if not isinstance(metrics, dict):
        return {}
    flat = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool)) or v is None}
    overall = metrics.get("overall")
    if isinstance(overall, dict):
        flat.update({k: v for k, v in overall.items() if isinstance(v, (int, float, str, bool)) or v is None})
    return flat


def _flow_run_id() -> str | None:
    try:
        from prefect.runtime import flow_run

        return flow_run.id
    except Exception:  # noqa: BLE001 - outside a flow run
        return None


def read_result(output_dir: str | Path) -> dict[str, Any]:
    """The result record a training flow left in `output_dir` (raises if the run left none)."""
    path = Path(output_dir) / RESULT_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {RESULT_FILE} in {output_dir}: the run did not finish")
    return json.loads(path.read_text())


def run_training(
    stage: str,
    recipe: str,
    *,
    dataset: str | None = None,
    dataset_version: str = "unversioned",
    model: str | None = None,
    output_dir: str | None = None,
    media_root: str | None = None,
    overrides: dict[str, Any] | None = None,
    launcher: str = "auto",
    accelerate_config: str | None = None,
    num_processes: int | None = None,
    logger: Any = None,
) -> dict[str, Any]:
    """Run one stage and write `<output_dir>/videorft_result.json`; returns that record."""
    if stage not in PRODUCES_MODEL:
        raise ValueError(f"unknown stage {stage!r} (one of {sorted(PRODUCES_MODEL)})")
    logger = logger or logging.getLogger(f"videorft.train.{stage}")
    mode = resolve_launcher(launcher, accelerate_config)
    ov = stage_overrides(
        dataset=dataset, model=model, output_dir=output_dir, media_root=media_root, overrides=overrides
    )
    out = output_dir_of(recipe, ov)
    ov["output_dir"] = str(out)
    logger.info(
        "%s: recipe %s, dataset %s (version %s), model %s -> %s [%s]",
        stage,
        recipe,
        ov.get("dataset_name", "(recipe's)"),
        dataset_version,
        ov.get("model_name_or_path", "(recipe's)"),
        out,
        mode,
    )
    started = time.time()
    if mode == "inprocess":
        returned = _run_inprocess(stage, recipe, ov)
        metrics = returned.get("metrics") or {k: v for k, v in returned.items() if k != "log_history"}
        out = Path(returned.get("output_dir") or out)
    else:
        cmd = launch_command(
            stage, recipe, ov, accelerate_config if mode == "accelerate" else None, num_processes
        )
        rc = stream_subprocess(
            cmd, logger, env=launch_env(accelerate_config if mode == "accelerate" else None)
        )
        if rc != 0:
            raise RuntimeError(f"{stage} exited with status {rc} (command: {' '.join(cmd)})")
        returned = {}
        metrics = _metrics_from_files(out)
    record = {
        "stage": stage,
        "status": "completed",
        "recipe": str(recipe),
        "dataset": ov.get("dataset_name"),
        "dataset_version": dataset_version,
        "input_model": ov.get("model_name_or_path"),
        "checkpoint": str(out) if PRODUCES_MODEL[stage] else None,
        "output_dir": str(out),
        "launcher": mode,
        "metrics": _scalars(metrics),
        "wall_s": round(time.time() - started, 3),
        "flow_run_id": _flow_run_id(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if "log_history" in returned:
        record["log_history"] = returned["log_history"]
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{RESULT_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2, default=str))
    tmp.replace(out / RESULT_FILE)
    logger.info(
        "%s finished in %.1fs: %s",
        stage,
        record["wall_s"],
        ", ".join(f"{k}={v}" for k, v in list(record["metrics"].items())[:12]),
    )
    return record


def _artifact(stage: str, record: dict[str, Any]) -> None:
    try:
        from prefect.artifacts import create_markdown_artifact

        lines = [f"# {stage}: dataset {record['dataset_version']}", ""]
        for key in ("dataset", "input_model", "checkpoint", "output_dir", "launcher", "wall_s"):
            lines.append(f"- **{key}**: `{record.get(key)}`")
        if record.get("metrics"):
            lines += ["", "| metric | value |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in record["metrics"].items()]
        key = f"{stage}-{record['dataset_version']}"
        key = "".join(c if c.isalnum() else "-" for c in key.lower()).strip("-")[:100]
        create_markdown_artifact(key=key, markdown="\n".join(lines), description=f"{stage} result")
    except Exception as err:  # noqa: BLE001 - artifacts are a convenience, never a reason to fail
        logging.getLogger("videorft.train").warning("could not post the %s artifact: %s", stage, err)


def _flow_body(stage: str, **kwargs: Any) -> dict[str, Any]:
    logger = get_run_logger()
    record = run_training(stage, logger=logger, **kwargs)
    _artifact(stage, record)
    return {k: v for k, v in record.items() if k != "log_history"}


# ---- flows ------------------------------------------------------------------------------------------
# No `log_prints=True` here: Prefect's patched print ignores a swapped `sys.stdout`, and dill (which
# `datasets` uses to fingerprint transforms) reads a function's globals by capturing `dis.dis` output
# that way; with log_prints the bytecode floods the flow run's logs and dill sees nothing.


@flow(name="train_sft", flow_run_name="sft-{dataset_version}")
def train_sft(
    recipe: str = "recipes/tiny/sft.yaml",
    dataset: str | None = None,
    dataset_version: str = "unversioned",
    model: str | None = None,
    output_dir: str | None = None,
    media_root: str | None = None,
    overrides: dict[str, Any] | None = None,
    launcher: str = "auto",
    accelerate_config: str | None = None,
    num_processes: int | None = None,
) -> dict[str, Any]:
    """Supervised fine-tuning on a published CoT set (`dataset`: its folder), from base `model`."""
    return _flow_body(
        "sft",
        recipe=recipe,
        dataset=dataset,
        dataset_version=dataset_version,
        model=model,
        output_dir=output_dir,
        media_root=media_root,
        overrides=overrides,
        launcher=launcher,
        accelerate_config=accelerate_config,
        num_processes=num_processes,
    )


@flow(name="train_grpo", flow_run_name="grpo-{dataset_version}")
def train_grpo(
    recipe: str = "recipes/tiny/grpo.yaml",
    dataset: str | None = None,
    dataset_version: str = "unversioned",
    checkpoint: str | None = None,
    output_dir: str | None = None,
    media_root: str | None = None,
    overrides: dict[str, Any] | None = None,
    launcher: str = "auto",
    accelerate_config: str | None = None,
    num_processes: int | None = None,
) -> dict[str, Any]:
    """GRPO on a published RL set, starting from `checkpoint` (usually the SFT output)."""
    return _flow_body(
        "grpo",
        recipe=recipe,
        dataset=dataset,
        dataset_version=dataset_version,
        model=checkpoint,
        output_dir=output_dir,
        media_root=media_root,
        overrides=overrides,
        launcher=launcher,
        accelerate_config=accelerate_config,
        num_processes=num_processes,
    )


@flow(name="evaluate", flow_run_name="eval-{dataset_version}")
def evaluate(
    recipe: str = "recipes/tiny/eval.yaml",
    dataset: str | None = None,
    dataset_version: str = "unversioned",
    checkpoint: str | None = None,
    output_dir: str | None = None,
    media_root: str | None = None,
    overrides: dict[str, Any] | None = None,
    launcher: str = "auto",
    accelerate_config: str | None = None,
    num_processes: int | None = None,
) -> dict[str, Any]:
    """Generate on a held-out set with `checkpoint` and score with the same scorers as the rewards."""
    return _flow_body(
        "eval",
        recipe=recipe,
        dataset=dataset,
        dataset_version=dataset_version,
        model=checkpoint,
        output_dir=output_dir,
        media_root=media_root,
        overrides=overrides,
        launcher=launcher,
        accelerate_config=accelerate_config,
        num_processes=num_processes,
    )
