"""The `pipeline` flow: curate → publish → SFT → GRPO (from the SFT checkpoint) → evaluate.

Curation runs here, as a subflow (the pipeline belongs in the `cpu` work pool). The training steps
are started as flow runs of their deployments (`run_deployment`: `train_sft/train-sft`,
`train_grpo/train-grpo`, `evaluate/evaluate`), so they run on GPU workers, not in this process;
each shows up as a child of the pipeline run, with the dataset version and its input checkpoint
as parameters and in its name. `use_deployments=False` runs them as in-process subflows instead
(the demo, or no server).

Nothing passes between the steps through Prefect results: the curate manifest
(`runs/<name>/manifest.json`, its `publish` entry) names the dataset folders and version, and
each training run's `<output_dir>/videorft_result.json` names its checkpoint. Output folders must
therefore be on storage every worker sees (a shared filesystem or the same path on one machine).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.train import RESULT_FILE, evaluate, read_result, train_grpo, train_sft

# stage -> (deployment "flow/deployment" as in prefect.yaml, the flow for in-process runs)
DEPLOYMENTS: dict[str, str] = {
    "sft": "train_sft/train-sft",
    "grpo": "train_grpo/train-grpo",
    "eval": "evaluate/evaluate",
}
_FLOWS = {"sft": train_sft, "grpo": train_grpo, "eval": evaluate}


def _pipeline_run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    label = params.get("run") or Path(str(params.get("curate_config") or "recipe")).stem
    return f"pipeline-{label}"


def published_dataset(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's `publish` entry, checked: version and both set folders, with rows to train on."""
    pub = manifest.get("publish") or {}
    missing = [k for k in ("version", "cot_dir", "rl_dir") if not pub.get(k)]
    if missing:
        raise RuntimeError(
            f"curate run {manifest.get('run_name')!r} published no dataset (missing {missing} "
            f"in the manifest's publish entry); nothing to train on"
        )
    if not pub.get("cot_rows"):
        raise RuntimeError(
            f"dataset {pub['version']} has no CoT rows: every sample was rejected or failed "
            f"(see `videorft inspect {manifest.get('run_dir')} --status rejected`)"
        )
    return pub


def has_split(dataset_dir: str | Path, split: str) -> bool:
    """A published set folder has `split` (Hub parquet layout or a save_to_disk DatasetDict)."""
    d = Path(dataset_dir)
    if any((d / "data").glob(f"{split}-*.parquet")):
        return True
    dd = d / "dataset_dict.json"
    if dd.exists():
        return split in json.loads(dd.read_text()).get("splits", [])
    return False


def start_step(
    stage: str,
    parameters: dict[str, Any],
    *,
    use_deployments: bool,
    timeout_s: float | None,
    poll_interval_s: float,
    tags: list[str],
    logger: Any,
) -> dict[str, Any]:
    """Run one training step (deployment or subflow) and return its videorft_result.json."""
    out = Path(parameters["output_dir"])
    stale = out / RESULT_FILE
    if stale.exists():  # a previous attempt's record must not pass for this run's
        stale.unlink()
    if use_deployments:
        from prefect.deployments import run_deployment

        name = DEPLOYMENTS[stage]
        logger.info("%s: starting deployment %s", stage, name)
        fr = run_deployment(
            name, parameters=parameters, timeout=timeout_s, poll_interval=poll_interval_s, tags=tags
        )
        state = fr.state
        if state is None or not state.is_final():
            raise TimeoutError(
                f"{stage}: flow run {fr.name} ({fr.id}) not finished after {timeout_s}s "
                f"(is a worker polling its work pool?)"
            )
        if not state.is_completed():
            raise RuntimeError(
                f"{stage}: flow run {fr.name} ({fr.id}) ended {state.type.value}: {state.message}"
            )
        logger.info("%s: flow run %s (%s) completed", stage, fr.name, fr.id)
    else:
        _FLOWS[stage](**parameters)
    return read_result(out)


def train_chain(
    pub: dict[str, Any],
    *,
    run_name: str,
    media_root: str,
    base_model: str | None = None,
    sft_recipe: str = "recipes/tiny/sft.yaml",
    grpo_recipe: str = "recipes/tiny/grpo.yaml",
    eval_recipe: str = "recipes/tiny/eval.yaml",
    eval_dataset: str | None = None,
    output_root: str = "runs/train",
    sft_overrides: dict[str, Any] | None = None,
    grpo_overrides: dict[str, Any] | None = None,
    eval_overrides: dict[str, Any] | None = None,
    launcher: str = "auto",
    accelerate_config: str | None = None,
    use_deployments: bool = True,
    step_timeout_s: float | None = None,
    poll_interval_s: float = 5.0,
    logger: Any = None,
) -> dict[str, Any]:
    """SFT on the CoT set → GRPO on the RL set from the SFT checkpoint → evaluate the GRPO checkpoint.

    `pub` is a curate manifest's `publish` entry (version, cot_dir, rl_dir, ...). Usable inside a
    flow (the steps become its children) or outside one (each step is then its own flow run)."""
    import logging

    logger = logger or logging.getLogger("videorft.pipeline")
    version = str(pub["version"])
    out_root = Path(output_root).resolve() / run_name / version
    common = {
        "dataset_version": version,
        "media_root": media_root,
        "launcher": launcher,
        "accelerate_config": accelerate_config,
    }
    step = {
        "use_deployments": use_deployments,
        "timeout_s": step_timeout_s,
        "poll_interval_s": poll_interval_s,
        "tags": ["videorft", f"dataset:{version}"],
        "logger": logger,
    }
    sft = start_step(
        "sft",
        {
            **common,
            "recipe": sft_recipe,
            "dataset": str(pub["cot_dir"]),
            "model": base_model,
            "output_dir": str(out_root / "sft"),
            "overrides": sft_overrides,
        },
        **step,
    )
    grpo = start_step(
        "grpo",
        {
            **common,
            "recipe": grpo_recipe,
            "dataset": str(pub["rl_dir"]),
            "checkpoint": sft["checkpoint"],
            "output_dir": str(out_root / "grpo"),
            "overrides": grpo_overrides,
        },
        **step,
    )
    eval_ov = dict(eval_overrides or {})
    eval_data = eval_dataset or str(pub["rl_dir"])
    if eval_dataset is None and "eval_split" not in eval_ov and not has_split(eval_data, "test"):
        logger.warning(
            "dataset %s has no held-out `test` split (publish.test_fraction is 0): evaluating on "
            "`train`, which the model has seen; set publish.test_fraction for a real evaluation",
            version,
        )
        eval_ov["eval_split"] = "train"
    ev = start_step(
        "eval",
        {
            **common,
            "recipe": eval_recipe,
            "dataset": eval_data,
            "checkpoint": grpo["checkpoint"],
            "output_dir": str(out_root / "eval"),
            "overrides": eval_ov or None,
        },
        **step,
    )
    summary = {
        "run_name": run_name,
        "dataset_version": version,
        "cot_dir": pub["cot_dir"],
        "rl_dir": pub["rl_dir"],
        "sft": {k: sft.get(k) for k in ("checkpoint", "input_model", "metrics", "flow_run_id")},
        "grpo": {k: grpo.get(k) for k in ("checkpoint", "input_model", "metrics", "flow_run_id")},
        "eval": {k: ev.get(k) for k in ("input_model", "output_dir", "metrics", "flow_run_id")},
        "use_deployments": use_deployments,
        "output_dir": str(out_root),
    }
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / "pipeline.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


@flow(name="pipeline", flow_run_name=_pipeline_run_name)
def pipeline(
    curate_config: str | None = "configs/demo.yaml",
    curate_recipe: dict[str, Any] | None = None,
    source: str | None = None,
    media_root: str | None = None,
    runs_dir: str | None = None,
    run: str | None = None,
    from_stage: str | None = None,
    base_model: str | None = None,
    sft_recipe: str = "recipes/tiny/sft.yaml",
    grpo_recipe: str = "recipes/tiny/grpo.yaml",
    eval_recipe: str = "recipes/tiny/eval.yaml",
    eval_dataset: str | None = None,
    output_root: str = "runs/train",
    sft_overrides: dict[str, Any] | None = None,
    grpo_overrides: dict[str, Any] | None = None,
    eval_overrides: dict[str, Any] | None = None,
    launcher: str = "auto",
    accelerate_config: str | None = None,
    use_deployments: bool = True,
    step_timeout_s: float | None = None,
    poll_interval_s: float = 5.0,
    executor: str | None = None,
    workers: int | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """Curate and publish a dataset version, then SFT → GRPO → evaluate on it.

    curate_config / curate_recipe: the curation recipe (a YAML path, or the recipe as a dict);
    source, media_root, runs_dir, run, from_stage: the same overrides as `videorft curate`.
    base_model: SFT's starting model (default: the SFT recipe's `model_name_or_path`).
    *_recipe: training recipes (YAML for TRL's config classes); *_overrides: recipe keys to override.
    eval_dataset: held-out set (default: the RL set's `test` split).
    output_root: checkpoints go to `<output_root>/<run>/<version>/{sft,grpo,eval}`.
    launcher / accelerate_config: how the training flows start the entry scripts (flows/train.py).
    use_deployments: start the steps on GPU workers through their deployments; False runs them as
    in-process subflows. step_timeout_s: how long to wait for each (None: as long as it takes).
    executor / workers / address: what runs curation's shard tasks (as `videorft curate`'s flags).
    """
    from flows.curate import resolve_recipe, run_curate

    logger = get_run_logger()
    t0 = time.time()
    rec = resolve_recipe(
        curate_config,
        curate_recipe,
        source=source,
        media_root=media_root,
        runs_dir=runs_dir,
        run=run,
        executor=executor,
        workers=workers,
        address=address,
    )
    manifest = run_curate(recipe=rec, from_stage=from_stage)
    pub = published_dataset(manifest)
    data_media_root = str(Path(rec.source.resolved_media_root()).resolve())
    logger.info(
        "dataset %s: %s CoT rows (%s), %s RL rows (%s), media root %s",
        pub["version"],
        pub.get("cot_rows"),
        pub["cot_dir"],
        pub.get("rl_rows"),
        pub["rl_dir"],
        data_media_root,
    )
    summary = train_chain(
        pub,
        run_name=rec.run.name,
        media_root=data_media_root,
        base_model=base_model,
        sft_recipe=sft_recipe,
        grpo_recipe=grpo_recipe,
        eval_recipe=eval_recipe,
        eval_dataset=eval_dataset,
        output_root=output_root,
        sft_overrides=sft_overrides,
        grpo_overrides=grpo_overrides,
        eval_overrides=eval_overrides,
        launcher=launcher,
        accelerate_config=accelerate_config,
        use_deployments=use_deployments,
        step_timeout_s=step_timeout_s,
        poll_interval_s=poll_interval_s,
        logger=logger,
    )
    summary["run_dir"] = manifest.get("run_dir")
    summary["seconds"] = round(time.time() - t0, 1)
    _summary_artifact(summary)
    logger.info(
        "pipeline done in %.0fs: dataset %s → %s → %s → eval %s",
        summary["seconds"],
        summary["dataset_version"],
        summary["sft"]["checkpoint"],
        summary["grpo"]["checkpoint"],
        summary["eval"]["output_dir"],
    )
    return summary


def _summary_artifact(summary: dict[str, Any]) -> None:
    try:
        from prefect.artifacts import create_markdown_artifact

        lines = [
            f"# pipeline {summary['run_name']}: dataset {summary['dataset_version']}",
            "",
            "| step | input | output | metrics |",
            "|---|---|---|---|",
        ]
        lines.append(f"| publish | {summary['run_dir']} | {summary['cot_dir']}, {summary['rl_dir']} | |")
        for stage, inp, outk in (
            ("sft", None, "checkpoint"),
            ("grpo", "input_model", "checkpoint"),
            ("eval", "input_model", "output_dir"),
        ):
            d = summary[stage]
            metrics = ", ".join(f"{k}={v}" for k, v in list((d.get("metrics") or {}).items())[:6])
            lines.append(f"| {stage} | {d.get(inp) if inp else ''} | {d.get(outk)} | {metrics} |")
        key = "".join(c if c.isalnum() else "-" for c in f"pipeline-{summary['run_name']}".lower())[:100]
        create_markdown_artifact(key=key, markdown="\n".join(lines), description="pipeline summary")
    except Exception:  # noqa: BLE001 - artifacts are a convenience
        pass
