"""Resume that resumes: a run SIGKILLed after a checkpoint and relaunched with the same command ends
where an uninterrupted run ends (per-step loss and final weights), on 1 and on 2 ranks; `--resume
false` starts fresh; the checkpoint loader refuses a checkpoint that does not fit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
KILLER = HERE / "kill_after_checkpoint.py"
# 6 steps, a full checkpoint every 3; keep only the newest one (save_total_limit bounds the disk).
RESUME_SETTINGS = {"max_steps": 6, "save_strategy": "steps", "save_steps": 3, "save_total_limit": 1}


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread per process, as the in-process tests


def _settings(tiny_qwen_dir, tiny_dataset, media_root, test_video, out: Path) -> dict:
    return {
        "model_name_or_path": str(tiny_qwen_dir),
        "dataset_name": str(tiny_dataset),
        "media_root": str(media_root),
        "output_dir": str(out),
        **test_video,
        **RESUME_SETTINGS,
    }


def _flags(settings: dict) -> list[str]:
    from training.launch import override_args

    return override_args(settings)


def _videorft(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).with_name("videorft")), *args]
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


def _losses(log_history: list[dict]) -> dict[int, float]:
    return {h["step"]: h["loss"] for h in log_history if "loss" in h}


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _assert_same_run(resumed_dir: Path, reference_losses: dict[int, float], reference_dir: Path) -> None:
    state = json.loads((resumed_dir / "trainer_state.json").read_text())
    resumed = _losses(state["log_history"])
    assert sorted(resumed) == sorted(reference_losses) == list(range(1, 7)), (resumed, reference_losses)
    for step, loss in reference_losses.items():
        assert resumed[step] == pytest.approx(loss, rel=1e-4, abs=1e-6), (step, resumed, reference_losses)
    ref, got = _weights(reference_dir), _weights(resumed_dir)
    assert ref.keys() == got.keys()
    for key in ref:
        torch.testing.assert_close(got[key], ref[key], rtol=1e-4, atol=1e-6, msg=key)
    # save_total_limit: 1 kept only the newest checkpoint.
    assert [p.name for p in resumed_dir.glob("checkpoint-*")] == ["checkpoint-6"]


def _assert_killed_after_checkpoint(proc: subprocess.CompletedProcess, out: Path) -> None:
    assert proc.returncode != 0, proc.stdout[-2000:]
    checkpoint = out / "checkpoint-3"
    from training.checkpoints import is_full_checkpoint

    assert is_full_checkpoint(checkpoint), sorted(p.name for p in checkpoint.iterdir())
    assert not (out / "model.safetensors").exists()  # the run never reached its end


# ---- unit: which checkpoint, loading weights -------------------------------------------------------


def _fake_checkpoint(out: Path, step: int) -> Path:
    folder = out / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text("{}")
    return folder


def test_resume_policy(tmp_path):
    from training.checkpoints import resume_checkpoint

    assert resume_checkpoint(tmp_path / "none", "auto") is None
    for step in (2, 10, 9):
        _fake_checkpoint(tmp_path, step)
    (tmp_path / "checkpoint-11").mkdir()  # half-written (no trainer state): never resumed from
    assert resume_checkpoint(tmp_path, "auto") == str(tmp_path / "checkpoint-10")
    assert resume_checkpoint(tmp_path, "true") == str(tmp_path / "checkpoint-10")
    assert resume_checkpoint(tmp_path, str(tmp_path / "checkpoint-2")) == str(tmp_path / "checkpoint-2")
    with pytest.raises(FileNotFoundError, match="not a trainer checkpoint"):
        resume_checkpoint(tmp_path, str(tmp_path / "checkpoint-11"))
    # false: a fresh start; the old checkpoints move aside so no later auto-resume picks them up.
    assert resume_checkpoint(tmp_path, "false") is None
    assert resume_checkpoint(tmp_path, "auto") is None
    (aside,) = tmp_path.glob("superseded-*")
    assert sorted(p.name for p in aside.iterdir()) == ["checkpoint-10", "checkpoint-2", "checkpoint-9"]


def test_checkpoint_weights_load_through_the_legacy_key_layout(tmp_path, tiny_qwen_dir):
    """save_pretrained writes `model.layers.*` / `visual.*`; the in-memory names differ. Every tensor
    must land (Trainer's own loader matched 0 of them, with a warning only)."""
    from safetensors.torch import load_file
    from transformers import AutoModelForImageTextToText

    from training.checkpoints import load_checkpoint_weights

    trained = AutoModelForImageTextToText.from_pretrained(tiny_qwen_dir)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.5)
    trained.save_pretrained(tmp_path / "ckpt")
    saved_keys = set(load_file(str(tmp_path / "ckpt" / "model.safetensors")))
    assert saved_keys.isdisjoint(trained.state_dict())  # the layouts really differ
    fresh = AutoModelForImageTextToText.from_pretrained(tiny_qwen_dir)
    assert load_checkpoint_weights(fresh, tmp_path / "ckpt") == len(saved_keys)
    for (name, a), b in zip(fresh.state_dict().items(), trained.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    # A checkpoint of another shape is refused loudly, not skipped.
    from safetensors.torch import save_file

    partial = {
        k: v for k, v in load_file(str(tmp_path / "ckpt" / "model.safetensors")).items() if "visual" not in k
    }
    (tmp_path / "partial").mkdir()
    save_file(partial, str(tmp_path / "partial" / "model.safetensors"))
    with pytest.raises(RuntimeError, match="not in it"):
        load_checkpoint_weights(fresh, tmp_path / "partial")


# ---- integration: SIGKILL after a checkpoint, relaunch the same command ---------------------------


@pytest.mark.integration
def test_sft_killed_after_checkpoint_resumes_exactly(
    tmp_path, tiny_qwen_dir, tiny_dataset, media_root, repo_root, test_video
):
    from training.sft import run_sft

    reference = run_sft(
        repo_root / "recipes/tiny/sft.yaml",
        **_settings(tiny_qwen_dir, tiny_dataset, media_root, test_video, tmp_path / "reference"),
    )
    out = tmp_path / "run"
    flags = _flags(_settings(tiny_qwen_dir, tiny_dataset, media_root, test_video, out))
    killed = subprocess.run(
        [sys.executable, str(KILLER), "sft", "3", "--config", "recipes/tiny/sft.yaml", *flags],
        cwd=repo_root,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    _assert_killed_after_checkpoint(killed, out)
    # The same command the user ran first, unchanged: it finds checkpoint-3 and continues.
    resumed = _videorft("train", "sft", "recipes/tiny/sft.yaml", *flags, cwd=repo_root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_run(out, _losses(reference["log_history"]), tmp_path / "reference")


@pytest.mark.integration
def test_sft_on_two_ranks_killed_after_checkpoint_resumes_exactly(
    tmp_path, tiny_qwen_dir, tiny_dataset, media_root, repo_root, test_video
):
    """2 CPU ranks (gloo) through `videorft train ... --accelerate-config cpu --num-processes 2`."""
    from training.launch import accelerate_command

    launch = ["--accelerate-config", "cpu", "--num-processes", "2"]
    ref_dir = tmp_path / "reference"
    ref_flags = _flags(_settings(tiny_qwen_dir, tiny_dataset, media_root, test_video, ref_dir))
    reference = _videorft("train", "sft", "recipes/tiny/sft.yaml", *launch, *ref_flags, cwd=repo_root)
    assert reference.returncode == 0, reference.stderr[-3000:]
    ref_losses = _losses(json.loads((ref_dir / "trainer_state.json").read_text())["log_history"])

    out = tmp_path / "run"
    flags = _flags(_settings(tiny_qwen_dir, tiny_dataset, media_root, test_video, out))
    killer = accelerate_command("sft", "recipes/tiny/sft.yaml", accelerate_config="cpu", num_processes=2)
    killer = killer[: killer.index("-m", 3)] + [str(KILLER), "sft", "3", "--config", "recipes/tiny/sft.yaml"]
    from training.launch import launch_env

    killed = subprocess.run(
        killer + flags,
        cwd=repo_root,
        env=launch_env("cpu", _env()),
        capture_output=True,
        text=True,
        timeout=600,
    )
    _assert_killed_after_checkpoint(killed, out)
    assert {p.name for p in (out / "checkpoint-3").glob("rng_state_*.pth")} == {
        "rng_state_0.pth",
        "rng_state_1.pth",
    }
    resumed = _videorft("train", "sft", "recipes/tiny/sft.yaml", *flags, *launch, cwd=repo_root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_run(out, ref_losses, ref_dir)


@pytest.mark.integration
def test_grpo_resumes_weights_and_kl(
    tmp_path, tiny_qwen_dir, tiny_video_dataset, media_root, repo_root, test_video
):
    """GRPO in-process, interrupted after checkpoint-3 (an exception from a callback stands in for the
    kill) and rerun with the same call: same per-step loss and KL, same final weights. Before the fix
    step 4's KL was 0 again (the policy was back at the reference)."""
    from transformers import TrainerCallback

    from training.grpo import run_grpo

    class Interrupt(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt("stand-in for a kill after checkpoint-3")

    def run(out: Path, callbacks=None) -> dict:
        settings = _settings(tiny_qwen_dir, tiny_video_dataset, media_root, test_video, out)
        settings.update(
            reward_funcs=["completion_length"],
            reward_weights=[1.0],
            beta=0.04,
        )
        return run_grpo(repo_root / "recipes/tiny/grpo.yaml", callbacks=callbacks, **settings)

    reference = run(tmp_path / "reference")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "run", [Interrupt()])
    resumed = run(tmp_path / "run")
    ref = {h["step"]: (h["loss"], h["kl"]) for h in reference["log_history"] if "loss" in h}
    got = {h["step"]: (h["loss"], h["kl"]) for h in resumed["log_history"] if "loss" in h}
    assert sorted(got) == sorted(ref) == list(range(1, 7)) and got[4][1] > 0
    for step in got:
        assert got[step] == pytest.approx(ref[step], rel=1e-4, abs=1e-7), (step, got, ref)
    ref_w, got_w = _weights(tmp_path / "reference"), _weights(tmp_path / "run")
    for key in ref_w:
        torch.testing.assert_close(got_w[key], ref_w[key], rtol=1e-4, atol=1e-6, msg=key)
