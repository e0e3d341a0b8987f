"""`videorft train|eval RECIPE [--accelerate-config NAME|FILE] [--num-processes N] [--key value ...]` in any
order; 2 CPU ranks through the CLI; SIGTERM to the launcher ends every rank."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    "tokens",
    [
        ["r.yaml", "--accelerate-config", "zero3", "--num-processes", "8", "--max_steps", "3"],
        ["--accelerate-config", "zero3", "r.yaml", "--max_steps", "3", "--num-processes", "8"],
        ["--num-processes=8", "--max_steps", "3", "r.yaml", "--accelerate-config=zero3"],
        ["r.yaml", "--max_steps", "3", "--accelerate_config", "zero3", "--num_processes", "8"],
    ],
)
def test_launch_options_in_any_order(tokens):
    from training.launch import parse_launch_args

    parsed = parse_launch_args(tokens)
    assert (parsed.recipe, parsed.accelerate_config, parsed.num_processes) == ("r.yaml", "zero3", 8)
    assert parsed.override_tokens == ["--max_steps", "3"]


def test_launch_options_errors():
    from training.launch import parse_launch_args

    assert parse_launch_args(["r.yaml", "--reward_funcs", "format", "accuracy"]).override_tokens == [
        "--reward_funcs",
        "format",
        "accuracy",
    ]
    with pytest.raises(ValueError, match="missing RECIPE"):
        parse_launch_args(["--num-processes", "2"])
    with pytest.raises(ValueError, match="positive integer"):
        parse_launch_args(["r.yaml", "--num-processes", "two"])
    with pytest.raises(ValueError, match="needs a value"):
        parse_launch_args(["r.yaml", "--accelerate-config"])


def test_cli_hands_launch_options_to_the_launcher(monkeypatch, capsys):
    """What the README writes reaches `accelerate launch`, with the recipe overrides as overrides."""
    import training.launch as launch_mod
    from flows.cli import main

    calls = []
    monkeypatch.setattr(launch_mod, "launch", lambda *a, **kw: calls.append((a, kw)))
    rc = main(["eval", "recipes/tiny/eval.yaml", "--num-processes", "2", "--batch_size", "8"])
    assert rc == 0
    (args, kwargs) = calls[0]
    assert args == ("eval", "recipes/tiny/eval.yaml")
    assert kwargs["num_processes"] == 2 and kwargs["overrides"] == {"batch_size": "8"}
    assert main(["train", "grpo", "--help"]) == 0 and "--accelerate-config" in capsys.readouterr().out


def test_accelerate_command_gets_a_free_port_and_cpu_env(repo_root):
    from training.launch import accelerate_command, launch_env

    cmd = accelerate_command("sft", "recipes/tiny/sft.yaml", accelerate_config="cpu", num_processes=2)
    assert int(cmd[cmd.index("--main_process_port") + 1]) > 0
    assert launch_env("cpu", {})["ACCELERATE_USE_CPU"] == "true"
    assert "ACCELERATE_USE_CPU" not in launch_env("ddp", {})


def _cli(repo_root: Path, *args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("videorft")), *args]


@pytest.mark.integration
def test_grpo_on_two_cpu_ranks_through_the_cli(
    tmp_path, tiny_qwen_dir, tiny_video_dataset, media_root, repo_root, test_video
):
    """`videorft train grpo recipes/tiny/grpo.yaml --accelerate-config cpu --num-processes 2 --key value`."""
    from training.launch import override_args

    out = tmp_path / "grpo"
    overrides = override_args(
        {
            "model_name_or_path": tiny_qwen_dir,
            "dataset_name": tiny_video_dataset,
            "media_root": media_root,
            "output_dir": out,
            "max_steps": 2,
            "save_strategy": "steps",
            "save_steps": 2,
            "reward_funcs": ["completion_length"],
            "reward_weights": [1.0],
            "gradient_accumulation_steps": 1,
            **test_video,
        }
    )
    cmd = _cli(repo_root, "train", "grpo", "recipes/tiny/grpo.yaml", "--accelerate-config", "cpu")
    cmd += [*overrides[:4], "--num-processes", "2", *overrides[4:]]
    proc = subprocess.run(
        cmd,
        cwd=repo_root,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert (out / "model.safetensors").exists()
    # Two ranks ran: each saved its RNG state into the checkpoint.
    assert sorted(p.name for p in (out / "checkpoint-2").glob("rng_state_*")) == [
        "rng_state_0.pth",
        "rng_state_1.pth",
    ]


@pytest.mark.integration
def test_sigterm_to_the_launcher_ends_every_rank(
    tmp_path, tiny_qwen_dir, tiny_dataset, media_root, repo_root, test_video
):
    import psutil

    from training.launch import override_args

    out = tmp_path / "sft"
    overrides = override_args(
        {
            "model_name_or_path": tiny_qwen_dir,
            "dataset_name": tiny_dataset,
            "media_root": media_root,
            "output_dir": out,
            "max_steps": 10_000,
            "save_strategy": "steps",
            "save_steps": 1,
            "report_to": "none",
            **test_video,
        }
    )
    cmd = _cli(repo_root, "train", "sft", "recipes/tiny/sft.yaml", "--accelerate-config", "cpu", *overrides)
    proc = subprocess.Popen(
        cmd,
        cwd=repo_root,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 400
        while not (out / "checkpoint-1" / "trainer_state.json").exists():  # ranks are training
            assert proc.poll() is None, "the run ended before it started training"
            assert time.monotonic() < deadline, "no checkpoint within the deadline"
            time.sleep(0.5)
        tree = psutil.Process(proc.pid).children(recursive=True)
        ranks = [p for p in tree if "training.sft" in " ".join(p.cmdline())]
        assert len(ranks) >= 2, [p.cmdline() for p in tree]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 143
        gone, alive = psutil.wait_procs(tree, timeout=60)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
