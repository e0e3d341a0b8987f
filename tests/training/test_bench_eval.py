"""`videorft eval` / `videorft bench-eval` on files in Video-R1's exact evaluation layout, the tiny model,
real videos: every video question's prompt carries its video, the numbers are eval_bench.py's.

The model's generate step is replaced where the test needs known answers; everything before it (the
file reading, media resolution and decoding, eval_bench's prompt, the chat template and the processor
producing the video tokens) is the real path.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_bench import eval_bench_final_acc, eval_bench_user_text, reward_fn

pytestmark = pytest.mark.integration

CLIP = ["./videos/clip0.mp4", "./videos/clip1.mp4", "./videos/clip2.mp4", "./videos/clip3.mp4"]
OPTS = ["A. left", "B. right", "C. up", "D. down"]


def _mc(pid, path, answer="B", data_type="video", source="bench"):
    return {
        "problem_id": pid,
        "problem": f"Question {pid}: where does the square go?",
        "data_type": data_type,
        "problem_type": "multiple choice",
        "options": OPTS,
        "solution": f"<answer>{answer}</answer>",
        "path": path,
        "data_source": source,
    }


def _reg(pid, path, answer):
    return {
        "problem_id": pid,
        "problem": f"Question {pid}: how many squares wide is the frame?",
        "data_type": "video",
        "problem_type": "regression",
        "options": [],
        "solution": f"<answer>{answer}</answer>",
        "path": path,
        "data_source": "vsi/size",
    }


# Three rows per benchmark (18 in all), in Video-R1's eval layout; VSI-Bench mixes MC and regression,
# VideoMMMU has an image question.
FILES = {
    "vsibench": [_mc(1, CLIP[0]), _reg(2, CLIP[1], "8"), _reg(3, CLIP[2], "2.5")],
    "videommmu": [_mc(11, CLIP[3]), _mc(12, "./images/img0.png", "A", data_type="image"), _mc(13, CLIP[0])],
    "mmvu": [_mc(21, CLIP[1]), _mc(22, CLIP[2]), _mc(23, CLIP[3])],
    "mvbench": [
        _mc(31, CLIP[0], source="mvbench/action"),
        _mc(32, CLIP[1], source="mvbench/object"),
        _mc(33, CLIP[2]),
    ],
    "tempcompass": [_mc(41, CLIP[3]), _mc(42, CLIP[0]), _mc(43, CLIP[1])],
    "videomme": [_mc(51, CLIP[2]), _mc(52, CLIP[3]), _mc(53, CLIP[0])],
}
CANNED = {
    1: "<think>It goes right.</think> <answer>B</answer>",
    2: "<answer>10</answer>",  # 10 for 8: an exact MRA threshold ratio
    3: "<answer>2.4</answer>",
    11: "B",  # no tag: the whole output is the answer
    12: "<answer>B</answer>",  # wrong
    13: "<answer>B.</answer>",  # "B." != "B"
    21: "<answer>B</answer>",
    22: "<answer>B</answer>",
    23: "<answer>C</answer>",
    31: "<answer>B</answer>",
    32: "<think>hmm</think>",
    33: "<answer>B</answer>",
    41: "<answer>B</answer>",
    42: "<answer>B</answer>",
    43: "<answer>B</answer>",
    51: "<answer>A</answer>",
    52: "<answer>B</answer>",
    53: "<answer>D</answer>",
}


@pytest.fixture
def eval_dir(tmp_path) -> Path:
    folder = tmp_path / "Evaluation"
    folder.mkdir()
    for name, rows in FILES.items():
        (folder / f"eval_{name}.json").write_text(json.dumps(rows, indent=2))
    return folder


@pytest.fixture
def spy_generate(monkeypatch):
    """Runs the real processor on every batch, records what each prompt carried, answers from CANNED."""
    from training import evaluate

    seen: list[dict] = []

    def spy(self, prepared):
        inputs = self.inputs(prepared)  # the real chat template + processor, on the decoded frames
        tok = self.processor.tokenizer
        video_pad, image_pad = (
            tok.convert_tokens_to_ids("<|video_pad|>"),
            tok.convert_tokens_to_ids("<|image_pad|>"),
        )
        for i, p in enumerate(prepared):
            ids = inputs["input_ids"][i]
            seen.append(
                {
                    "problem_id": p.row["problem_id"],
                    "data_type": p.row["data_type"],
                    "video_tokens": int((ids == video_pad).sum()),
                    "image_tokens": int((ids == image_pad).sum()),
                    "messages": p.messages,
                }
            )
        return [CANNED[p.row["problem_id"]] for p in prepared]

    monkeypatch.setattr(evaluate.HFGenerator, "__call__", spy)
    return seen


def _flags(d: dict) -> list[str]:
    out = []
    for k, v in d.items():
        out += [f"--{k}", str(v)]
    return out


def test_bench_eval_six_files_match_eval_bench(
    eval_dir, media_root, tmp_path, tiny_qwen_dir, test_video, spy_generate, repo_root, capsys
):
    from flows.cli import main

    out = tmp_path / "bench"
    rc = main(
        [
            "bench-eval",
            str(repo_root / "recipes/tiny/eval.yaml"),
            "--eval-dir",
            str(eval_dir),
            "--media-root",
            str(media_root),
            "--output-dir",
            str(out),
            *_flags({"model_name_or_path": tiny_qwen_dir, **test_video}),
        ]
    )
    assert rc == 0

    # every question was asked, with its video (or image), in eval_bench's words
    records = {r["problem_id"]: r for name, rows in FILES.items() for r in rows}
    assert sorted(s["problem_id"] for s in spy_generate) == sorted(records)
    for s in spy_generate:
        if s["data_type"] == "video":
            assert s["video_tokens"] > 0 and s["image_tokens"] == 0, s["problem_id"]
        else:
            assert s["image_tokens"] > 0 and s["video_tokens"] == 0, s["problem_id"]
        (user,) = s["messages"]  # one user turn, no system prompt (eval_bench)
        assert user["content"][0]["type"] == s["data_type"]
        assert user["content"][-1]["text"] == eval_bench_user_text(records[s["problem_id"]])

    # our numbers are eval_bench's on the same outputs
    summary = json.loads((out / "bench.json").read_text())["benchmarks"]
    for name, rows in FILES.items():
        final = eval_bench_final_acc(
            [(r, reward_fn(r, CANNED[r["problem_id"]], r["problem_type"])) for r in rows]
        )
        expected = (final["mean_acc"] + final["mean_mra"]) / 2 if name == "vsibench" else final["mean_acc"]
        assert summary[name]["ours"] / 100 == pytest.approx(expected, abs=1e-6), name
        assert summary[name]["rows"] == summary[name]["scored"] == 3
        preds = [json.loads(x) for x in (out / name / "predictions.jsonl").read_text().splitlines()]
        assert [p["problem_id"] for p in preds] == [r["problem_id"] for r in rows]
    assert summary["vsibench"]["mean_mra"] == pytest.approx((0.5 + 1.0) / 2)  # 10 for 8: 0.5 (float32)

    table = (out / "bench.md").read_text()
    assert "| VSI-Bench |" in table and "| 36.8 | 35.8 |" in table and "(acc + MRA) / 2" in table
    assert (
        "| VSI-Bench | regression (MRA) | 2 |" in table
        and "| VideoMMMU | multiple choice (acc) | 3 |" in table
    )
    assert "between the <think> and </think> tags" in table  # the prompt used
    printed = capsys.readouterr().out
    assert "| MVBench | **66.7** | 62.1 | 63.9 |" in printed


def test_missing_media_stops_or_is_skipped_and_counted(
    eval_dir, media_root, tmp_path, tiny_qwen_dir, test_video, spy_generate, repo_root, capsys
):
    from flows.cli import main

    rows = FILES["vsibench"] + [_reg(4, "./videos/missing.mp4", "3")]
    (eval_dir / "eval_vsibench.json").write_text(json.dumps(rows))
    base = [
        "bench-eval",
        str(repo_root / "recipes/tiny/eval.yaml"),
        "--eval-dir",
        str(eval_dir),
        "--media-root",
        str(media_root),
        "--output-dir",
        str(tmp_path / "b"),
        *_flags({"model_name_or_path": tiny_qwen_dir, "benchmarks": "vsibench", **test_video}),
    ]
    assert main(base) == 2  # before any model loads
    err = capsys.readouterr().err
    assert "row 3 (problem_id 4): video videos/missing.mp4 not found" in err and "--skip_bad_media" in err
    assert not spy_generate

    assert main([*base, "--skip-bad-media"]) == 0
    summary = json.loads((tmp_path / "b" / "bench.json").read_text())["benchmarks"]["vsibench"]
    assert (summary["rows"], summary["scored"], summary["skipped_media"]) == (4, 3, 1)
    assert sorted(s["problem_id"] for s in spy_generate) == [1, 2, 3]  # never asked without its video
    preds = [
        json.loads(x) for x in (tmp_path / "b" / "vsibench" / "predictions.jsonl").read_text().splitlines()
    ]
    assert preds[3]["status"] == "skipped_media" and "reward" not in preds[3]


def test_eval_on_a_published_set_out_of_the_box(
    tmp_path, media_root, tiny_qwen_dir, test_video, repo_root, capsys
):
    """publish (no test split) -> `videorft eval` on the published name folder: it evaluates the split
    that exists, says so, and prints its headline numbers (real generation with the tiny model)."""
    sys.path.insert(0, str(repo_root / "tests" / "publish"))
    from publish_fixture import build_run

    from curation.publish import PublishConfig, publish_run
    from flows.cli import main

    store, samples = build_run(tmp_path / "run")
    publish_run(
        store, tmp_path / "published", PublishConfig(name="mine", version="v1"), run_name="r", lineage={}
    )
    media = tmp_path / "media"
    for s in samples.values():  # the fixture's media paths, as real files
        (media / s.media_path).parent.mkdir(parents=True, exist_ok=True)
        src = media_root / ("images/img0.png" if s.data_type == "image" else "videos/clip0.mp4")
        shutil.copy(src, media / s.media_path)
    rc = main(
        [
            "eval",
            str(repo_root / "recipes/tiny/eval.yaml"),
            *_flags(
                {
                    "dataset_name": tmp_path / "published" / "mine",
                    "media_root": media,
                    "model_name_or_path": tiny_qwen_dir,
                    "output_dir": tmp_path / "eval",
                    "max_new_tokens": 4,
                    **test_video,
                }
            ),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed.strip() != "{}" and "(train prompt)" in printed
    assert "no held-out `test` split" in printed and "multiple choice" in printed and "all" in printed
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["overall"]["n"] == 5 and metrics["run"]["split"] == "train"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_ranks_shard_rows_and_write_each_once(
    eval_dir, media_root, tmp_path, tiny_qwen_dir, test_video, repo_root
):
    """`accelerate launch` with 2 CPU processes (gloo): rows split between ranks, one predictions file."""
    from training.launch import accelerate_command

    rows = FILES["mvbench"] + FILES["mmvu"]  # 6 video rows
    (eval_dir / "eval_mvbench.json").write_text(json.dumps(rows))
    out = tmp_path / "ddp"
    cmd = accelerate_command(
        "eval",
        repo_root / "recipes/tiny/eval.yaml",
        accelerate_config="ddp",
        num_processes=2,
        main_process_port=_free_port(),
        overrides={
            "dataset_name": eval_dir / "eval_mvbench.json",
            "media_root": media_root,
            "model_name_or_path": tiny_qwen_dir,
            "output_dir": out,
            "max_new_tokens": 4,
            "batch_size": 2,
            **test_video,
        },
    )
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = proc.stderr + proc.stdout
    assert (
        "[rank 0/2] mvbench: 3/3 rows of this rank" in logs
        and "[rank 1/2] mvbench: 3/3 rows of this rank" in logs
    )
    preds = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["problem_id"] for p in preds] == [r["problem_id"] for r in rows]  # each row once, in order
    assert not (out / "partial").exists()
    assert json.loads((out / "metrics.json").read_text())["run"]["processes"] == 2
    assert proc.stdout.count("evaluated ") == 1  # the main process prints the headline


def test_vllm_requests_carry_the_media_and_eval_bench_sampling(media_loader, tiny_processor, repo_root):
    """The vLLM path without a GPU: a stand-in engine receives what `vllm.LLM.generate` would."""
    from training.configs import EvalArguments, parse_recipe
    from training.eval_prompts import EvalPrompter
    from training.evaluate import VLLMGenerator, vllm_engine_kwargs

    (args,) = parse_recipe((EvalArguments,), repo_root / "recipes/qwen2_5_vl_7b/eval.yaml")
    prompter = EvalPrompter(media_loader, "eval_bench")
    rows = [
        {**_mc(1, CLIP[0]), "media_path": "videos/clip0.mp4", "index": 0},
        {**_mc(2, "./images/img0.png", data_type="image"), "media_path": "images/img0.png", "index": 1},
    ]

    class Engine:
        def generate(self, requests, sampling, use_tqdm):
            self.requests, self.sampling = requests, sampling
            return [
                SimpleNamespace(outputs=[SimpleNamespace(text=f"<answer>{i}</answer>")])
                for i in range(len(requests))
            ]

    engine = Engine()
    generator = VLLMGenerator(tiny_processor, args, llm=engine)
    assert generator([prompter.build(r) for r in rows]) == ["<answer>0</answer>", "<answer>1</answer>"]
    assert engine.sampling == {
        "max_tokens": 1024,
        "temperature": 0.1,
        "top_p": 0.001,
        "seed": 42,
    }  # eval_bench's
    video, image = engine.requests
    assert video["prompt"].count("<|video_pad|>") == 1 and "<|image_pad|>" not in video["prompt"]
    assert eval_bench_user_text(rows[0]) in video["prompt"]
    ((frames, meta),) = video["multi_modal_data"]["video"]
    assert frames.dtype.name == "uint8" and frames.ndim == 4 and frames.shape[0] == 8 and meta["fps"] == 8.0
    assert image["prompt"].count("<|image_pad|>") == 1 and image["multi_modal_data"]["image"].size[0] > 0
    assert vllm_engine_kwargs(args, world_size=2)["distributed_executor_backend"] == "external_launcher"
    args.vllm_tensor_parallel_size = 2
    with pytest.raises(ValueError, match="vllm_tensor_parallel_size 1"):
        vllm_engine_kwargs(args, world_size=2)
