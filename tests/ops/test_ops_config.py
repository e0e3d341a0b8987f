"""Cheap checks of the operations layer: flags, launch commands, result records, prefect.yaml,
configs/operations.yaml and the endpoint tags. No server, no training."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import yaml

from flows import deploy, train
from flows.pipeline import DEPLOYMENTS, has_split, published_dataset

REPO = Path(__file__).resolve().parents[2]


# ---- overrides -> flags --------------------------------------------------------------------------


def test_stage_overrides_drop_none_and_explicit_overrides_win():
    ov = train.stage_overrides(
        dataset="d",
        model=None,
        output_dir="o",
        media_root=None,
        overrides={"output_dir": "o2", "max_steps": 3, "seed": None},
    )
    assert ov == {"dataset_name": "d", "output_dir": "o2", "max_steps": 3}


def test_overrides_to_flags():
    flags = train.overrides_to_flags(
        {
            "output_dir": "runs/x",
            "max_steps": 3,
            "bf16": False,
            "reward_funcs": ["format", "accuracy"],
            "learning_rate": 1e-5,
            "skipped": None,
        }
    )
    assert flags == [
        "--output_dir",
        "runs/x",
        "--max_steps",
        "3",
        "--bf16",
        "False",
        "--reward_funcs",
        "format",
        "accuracy",
        "--learning_rate",
        "1e-05",
    ]
    with pytest.raises(ValueError, match="mapping"):
        train.overrides_to_flags({"dataset_kwargs": {"a": 1}})


def test_flags_parse_back_with_trl_parser():
    """The flags a subprocess run gets mean the same to TrlParser as the in-process overrides."""
    from trl import ModelConfig

    from training.configs import GRPOScriptArguments, VideoGRPOConfig, parse_recipe

    ov = {
        "output_dir": "out/x",
        "max_steps": 2,
        "bf16": False,
        "reward_funcs": ["format", "length"],
        "dataset_name": "/data/rl",
        "model_name_or_path": "/ckpt/sft",
    }
    argv = ["--config", str(REPO / "recipes/tiny/grpo.yaml"), *train.overrides_to_flags(ov)]
    script, cfg, model = parse_recipe((GRPOScriptArguments, VideoGRPOConfig, ModelConfig), argv)
    assert (cfg.output_dir, cfg.max_steps, cfg.bf16) == ("out/x", 2, False)
    assert script.reward_funcs == ["format", "length"] and script.dataset_name == "/data/rl"
    assert model.model_name_or_path == "/ckpt/sft"


def test_launch_commands(tmp_path):
    plain = train.launch_command("sft", "recipes/tiny/sft.yaml", {"max_steps": 2, "seed": None})
    assert plain == [
        sys.executable,
        "-m",
        "training.sft",
        "--config",
        "recipes/tiny/sft.yaml",
        "--max_steps",
        "2",
    ]
    acc_cfg = tmp_path / "acc.yaml"
    acc_cfg.write_text("compute_environment: LOCAL_MACHINE\n")
    cmd = train.launch_command("grpo", "r.yaml", {"output_dir": "o"}, str(acc_cfg), num_processes=8)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--config_file") + 1] == str(acc_cfg)
    assert cmd[cmd.index("--num_processes") + 1] == "8"
    assert cmd[cmd.index("-m", 3) + 1] == "training.grpo"
    assert cmd[-4:] == ["--config", "r.yaml", "--output_dir", "o"]


def test_launcher_and_output_dir(tmp_path):
    assert train.resolve_launcher("auto", None) == "inprocess"
    assert train.resolve_launcher("auto", "zero2") == "accelerate"
    assert train.resolve_launcher("subprocess", None) == "subprocess"
    with pytest.raises(ValueError):
        train.resolve_launcher("accelerate", None)
    with pytest.raises(ValueError):
        train.resolve_launcher("slurm", None)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("output_dir: runs/from-recipe\n")
    assert train.output_dir_of(recipe) == Path("runs/from-recipe")
    assert train.output_dir_of(recipe, {"output_dir": "elsewhere"}) == Path("elsewhere")


# ---- running (with a stand-in trainer) -----------------------------------------------------------


def test_run_training_writes_the_result_record(tmp_path, monkeypatch):
    import training.launch

    seen = {}

    def fake_run_stage(stage, recipe, **overrides):
        seen.update(stage=stage, recipe=recipe, **overrides)
        return {"overall": {"n": 2, "score": 0.5}, "by_problem_type": {"numerical": {"n": 2}}}

    monkeypatch.setattr(training.launch, "run_stage", fake_run_stage)
    out = tmp_path / "eval"
    record = train.run_training(
        "eval",
        "recipes/tiny/eval.yaml",
        dataset="/d/rl",
        dataset_version="v1-abc",
        model="/ckpt/grpo",
        output_dir=str(out),
        media_root="/media",
    )
    assert seen == {
        "stage": "eval",
        "recipe": "recipes/tiny/eval.yaml",
        "dataset_name": "/d/rl",
        "model_name_or_path": "/ckpt/grpo",
        "output_dir": str(out),
        "media_root": "/media",
    }
    on_disk = train.read_result(out)
    assert on_disk == record
    assert record["dataset_version"] == "v1-abc" and record["checkpoint"] is None
    assert record["input_model"] == "/ckpt/grpo" and record["metrics"] == {"n": 2, "score": 0.5}
    assert record["launcher"] == "inprocess"


def test_stream_subprocess_forwards_lines_and_status():
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger = logging.getLogger("test.ops.stream")
    logger.addHandler(Collect())
    logger.setLevel(logging.INFO)
    code = "import sys; print('step 1'); print('step 2', file=sys.stderr); sys.exit(3)"
    assert train.stream_subprocess([sys.executable, "-c", code], logger) == 3
    assert "step 1" in lines and "step 2" in lines


def test_published_dataset_checks(tmp_path):
    with pytest.raises(RuntimeError, match="published no dataset"):
        published_dataset({"run_name": "r", "publish": {"version": "v1"}})
    with pytest.raises(RuntimeError, match="no CoT rows"):
        published_dataset({"publish": {"version": "v1", "cot_dir": "c", "rl_dir": "r", "cot_rows": 0}})
    pub = {"version": "v1", "cot_dir": "c", "rl_dir": "r", "cot_rows": 3}
    assert published_dataset({"publish": pub}) == pub
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train-00000-of-00001.parquet").write_bytes(b"")
    assert has_split(tmp_path, "train") and not has_split(tmp_path, "test")


# ---- prefect.yaml and configs/operations.yaml -----------------------------------------------------


@pytest.fixture(scope="module")
def prefect_yaml():
    return deploy.load_prefect_file(REPO / "prefect.yaml")


def test_prefect_yaml_deployments(prefect_yaml):
    deps = {d["name"]: d for d in prefect_yaml["deployments"]}
    assert set(deps) == {"curate", "pipeline", "train-sft", "train-grpo", "evaluate"}
    pools = {name: d["work_pool"]["name"] for name, d in deps.items()}
    assert pools == {
        "curate": "cpu",
        "pipeline": "cpu",
        "train-sft": "gpu",
        "train-grpo": "gpu",
        "evaluate": "gpu",
    }
    entry = {name: d["entrypoint"] for name, d in deps.items()}
    assert entry == {
        "curate": "flows/curate.py:curate",
        "pipeline": "flows/pipeline.py:pipeline",
        "train-sft": "flows/train.py:train_sft",
        "train-grpo": "flows/train.py:train_grpo",
        "evaluate": "flows/train.py:evaluate",
    }
    (sched,) = deps["curate"]["schedules"]
    assert sched["cron"] == "0 2 * * *" and sched.get("active", True)
    # curate: one nightly run at a time (the run folder's lock refuses a second writer anyway).
    for name in ("curate", "train-sft", "train-grpo", "evaluate"):
        assert deps[name]["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    assert not deps["pipeline"].get("schedules")


def test_prefect_yaml_entrypoints_are_the_flows_the_pipeline_calls(prefect_yaml):
    from prefect.client.schemas.schedules import construct_schedule
    from prefect.flows import load_flow_from_entrypoint

    names = {}
    for d in prefect_yaml["deployments"]:
        path, func = d["entrypoint"].split(":")
        assert (REPO / path).exists()
        names[d["name"]] = load_flow_from_entrypoint(str(REPO / path) + ":" + func).name
        for s in d.get("schedules") or []:
            construct_schedule(cron=s.get("cron"), timezone=s.get("timezone"))
    for stage, full in DEPLOYMENTS.items():
        flow_name, dep_name = full.split("/")
        assert names[dep_name] == flow_name, stage


def test_prefect_yaml_pull_step_uses_the_checkout_without_git_or_docker(prefect_yaml):
    text = (REPO / "prefect.yaml").read_text()
    assert "git_clone" not in text and "build_docker_image" not in text.replace("# ", "")
    (build,) = prefect_yaml["build"]
    step_id = build["prefect.deployments.steps.run_shell_script"]["id"]
    (pull,) = prefect_yaml["pull"]
    directory = pull["prefect.deployments.steps.set_working_directory"]["directory"]
    assert directory == "{{ " + step_id + ".stdout }}"


def test_operations_yaml(prefect_yaml, monkeypatch):
    for var in ("VIDEORFT_SIM_URL", "VIDEORFT_VLM_URL", "VIDEORFT_REASONER_URL"):
        monkeypatch.delenv(var, raising=False)
    ops = deploy.load_operations(REPO / "configs" / "operations.yaml")
    assert ops.work_pools["gpu"].type == "process" and ops.work_pools["gpu"].concurrency_limit == 1
    assert ops.work_pools["cpu"].concurrency_limit is None
    deploy.check_pools_declared(prefect_yaml, ops.work_pools)
    with pytest.raises(ValueError, match="not declared"):
        deploy.check_pools_declared(
            {"deployments": [{"name": "x", "work_pool": {"name": "tpu"}}]}, ops.work_pools
        )
    limits = deploy.tag_limits(ops, base_dir=REPO)
    # demo.yaml's simulated endpoint and vllm.yaml's two servers (their default URLs: no env set here)
    n = ops.llm_endpoints.default_limit
    assert limits == {"llm:127.0.0.1:8765": n, "llm:127.0.0.1:8000": n, "llm:127.0.0.1:8001": n}


def test_operations_yaml_rejects_unknown_keys(tmp_path):
    bad = tmp_path / "ops.yaml"
    bad.write_text(yaml.safe_dump({"work_pools": {"gpu": {"type": "process", "concurency_limit": 1}}}))
    with pytest.raises(ValueError, match="concurency_limit"):
        deploy.load_operations(bad)


def test_deploy_refuses_without_a_server(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with pytest.raises(RuntimeError, match="PREFECT_API_URL"):
            deploy.deploy_all(REPO / "prefect.yaml")


# ---- endpoint tags ---------------------------------------------------------------------------------


def _recipe(**endpoints):
    return {"llm": {"endpoints": endpoints}}


def test_endpoint_tags_one_per_server():
    rec = _recipe(
        captioner={
            "backend": "openai",
            "base_url": "http://vlm.internal:8000/v1",
            "model": "Qwen/Qwen2.5-VL-72B",
        },
        reviser={
            "backend": "openai",
            "base_url": "http://vlm.internal:8000/v1",
            "model": "Qwen/Qwen2.5-VL-72B",
        },
        reasoner={"backend": "openai", "base_url": "https://api.example.com/v1", "model": "r1"},
    )
    assert deploy.endpoint_tags(rec) == ["llm:api.example.com:443", "llm:vlm.internal:8000"]
    assert deploy.endpoint_tags(rec, "caption") == ["llm:vlm.internal:8000"]
    assert deploy.endpoint_tags(rec, "revise") == ["llm:vlm.internal:8000"]
    assert deploy.endpoint_tags(rec, "draft") == ["llm:api.example.com:443"]
    for stage in ("sources", "extract", "filter", "publish"):
        assert deploy.endpoint_tags(rec, stage) == []


def test_endpoint_tags_in_process_backends_and_bad_urls():
    rec = _recipe(
        captioner={"backend": "transformers", "model": "tiny"},
        reasoner={"backend": "openai", "base_url": "http://127.0.0.1:8765/v1", "model": "m"},
    )
    assert deploy.endpoint_tags(rec) == ["llm:127.0.0.1:8765"]
    assert deploy.endpoint_tags(rec, "caption") == []
    assert deploy.endpoint_tag({"base_url": "http://h/v1"}) == "llm:h:80"
    with pytest.raises(ValueError, match="no host"):
        deploy.endpoint_tag({"base_url": "not a url"})


def test_endpoint_tags_of_a_validated_recipe(monkeypatch):
    from curation.config import load_recipe

    monkeypatch.setenv("VIDEORFT_SIM_URL", "http://127.0.0.1:9999/v1")
    rec = load_recipe(REPO / "configs" / "demo.yaml")
    assert deploy.endpoint_tags(rec) == ["llm:127.0.0.1:9999"]
    assert deploy.endpoint_tags(rec, "draft") == ["llm:127.0.0.1:9999"]
    # Tags are valid Prefect tag-limit names (no '/', '%', '&', '<', '>').
    for tag in deploy.endpoint_tags(rec):
        assert not set(tag) & set("/%&<>")
    json.dumps(deploy.endpoint_tags(rec))
