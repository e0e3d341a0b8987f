"""`pipeline(use_deployments=False)`: the training steps as in-process subflows (the demo / no server).

Curation and the trainers are stand-ins here (the server test runs the real ones); what is checked is
the wiring: which dataset, version and checkpoint each step gets, the result files, the subflow runs.
Runs on Prefect's temporary local server (tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_pipeline_in_process_chains_sft_grpo_eval(tmp_path, monkeypatch):
    import flows.curate
    import training.launch
    from flows.pipeline import pipeline

    annotations = tmp_path / "synth" / "annotations.jsonl"
    annotations.parent.mkdir()
    annotations.write_text("")
    pub_dir = tmp_path / "published" / "videorft" / "v1-abcd1234"
    for name in ("cot", "rl"):
        (pub_dir / name / "data").mkdir(parents=True)
        for split in ("train", "test"):
            (pub_dir / name / "data" / f"{split}-00000-of-00001.parquet").write_bytes(b"")

    def fake_run_curate(config=None, *, recipe=None, until=None, from_stage=None, **flags):
        return {
            "run_name": recipe.run.name,
            "run_dir": str(tmp_path / "runs" / recipe.run.name),
            "publish": {
                "version": "v1-abcd1234",
                "cot_dir": str(pub_dir / "cot"),
                "rl_dir": str(pub_dir / "rl"),
                "cot_rows": 5,
                "rl_rows": 6,
            },
        }

    calls = []

    def fake_run_stage(stage, recipe, **overrides):
        calls.append((stage, overrides))
        out = Path(overrides["output_dir"])
        out.mkdir(parents=True, exist_ok=True)
        if stage == "eval":
            return {"overall": {"n": 1, "score": 1.0}}
        return {"stage": stage, "output_dir": str(out), "metrics": {"train_loss": 1.5}}

    monkeypatch.setattr(flows.curate, "run_curate", fake_run_curate)
    monkeypatch.setattr(training.launch, "run_stage", fake_run_stage)

    recipe = {
        "run": {"name": "local", "runs_dir": str(tmp_path / "runs")},
        "source": {"path": str(annotations)},
    }
    summary = pipeline(
        curate_recipe=recipe,
        curate_config=None,
        base_model="/models/base",
        output_root=str(tmp_path / "train"),
        sft_overrides={"max_steps": 1},
        use_deployments=False,
    )

    out = tmp_path / "train" / "local" / "v1-abcd1234"
    assert [c[0] for c in calls] == ["sft", "grpo", "eval"]
    sft, grpo, ev = (c[1] for c in calls)
    media_root = str(annotations.parent.resolve())
    assert sft == {
        "dataset_name": str(pub_dir / "cot"),
        "model_name_or_path": "/models/base",
        "output_dir": str(out / "sft"),
        "media_root": media_root,
        "max_steps": 1,
    }
    assert grpo["dataset_name"] == str(pub_dir / "rl") and grpo["model_name_or_path"] == str(out / "sft")
    assert ev["model_name_or_path"] == str(out / "grpo") and "eval_split" not in ev  # the test split exists
    for step in ("sft", "grpo", "eval"):
        record = json.loads((out / step / "videorft_result.json").read_text())
        assert record["dataset_version"] == "v1-abcd1234" and record["flow_run_id"]
    assert summary["eval"]["metrics"] == {"n": 1, "score": 1.0}
    assert json.loads((out / "pipeline.json").read_text())["grpo"]["input_model"] == str(out / "sft")

    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    ids = [
        json.loads((out / s / "videorft_result.json").read_text())["flow_run_id"]
        for s in ("sft", "grpo", "eval")
    ]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)),
            sort=FlowRunSort.START_TIME_ASC,
            limit=10,
        )
    assert sorted(r.name for r in runs) == sorted(["sft-v1-abcd1234", "grpo-v1-abcd1234", "eval-v1-abcd1234"])
    assert all(r.parent_task_run_id is not None for r in runs)  # subflows of the pipeline run
