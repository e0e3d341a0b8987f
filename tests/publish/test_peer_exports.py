"""Our exports read by Video-R1's and VideoRFT's own loading and prompt-building code.

The peers' lines are reproduced verbatim below (their files are not vendored), each with the file
and commit it comes from:
- Video-R1: github.com/tulerfeng/Video-R1 @ 59d65c347e44efa71be27abf9d89b4a2bb7d1c05
- VideoRFT: github.com/QiWang98/VideoRFT @ bba609969e66c66e152b15399488f0ad94051e3a
Both load a `.json` / `.jsonl` dataset with `DatasetDict({"train": Dataset.from_json(path)})`
(`grpo.py` main(), `sft_video.py` __main__); Hugging Face users reach the same builder with
`load_dataset("json", data_files=...)`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict, load_dataset
from publish_fixture import build_run

from curation.publish import PublishConfig, publish_run
from curation.publish.export import TrainerExports
from curation.records import MULTIPLE_CHOICE
from curation.sources import SourceConfig, read_source
from curation.store import RunStore

# ---- the peers' prompt building, verbatim ------------------------------------------------------------

# Both repos, src/r1-v/src/open_r1/grpo.py and sft_video.py (identical in the two)
QUESTION_TEMPLATE = (
    "{Question}\n"
    "Please think about this question as if you were a human pondering deeply. "
    "Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', 'let's break it down', etc, or other natural language thought expressions "  # noqa: E501
    "It's encouraged to include self-reflection or verification in the reasoning process. "
    "Provide your detailed reasoning between the <think> </think> tags, and then give your final answer between the <answer> </answer> tags."  # noqa: E501
)
TYPE_TEMPLATE = {
    "multiple choice": " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags.",  # noqa: E501
    "numerical": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
    "OCR": " Please transcribe text from the image/video clearly and provide your text answer within the <answer> </answer> tags.",  # noqa: E501
    "free-form": " Please provide your text answer within the <answer> </answer> tags.",
    "regression": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
}


def videor1_grpo_prompt(example):
    # Video-R1 src/r1-v/src/open_r1/grpo.py, make_conversation_image_and_video
    if example["problem_type"] == "multiple choice":
        question = example["problem"] + "Options:\n"
        for op in example["options"]:
            question += op + "\n"
    else:
        question = example["problem"]

    msg = {
        "prompt": [
            {
                "role": "user",
                "content": [
                    {
                        "type": example["data_type"],
                    },
                    {
                        "type": "text",
                        "text": QUESTION_TEMPLATE.format(Question=question)
                        + TYPE_TEMPLATE[example["problem_type"]],
                    },
                ],
            }
        ]
    }
    return msg


def videor1_sft_messages(example):
    # Video-R1 src/r1-v/src/open_r1/sft_video.py, prepare_dataset (media root: os.getcwd() + "/Video-R1-data")
    if example["problem_type"] == "multiple choice":
        question = example["problem"] + "Options:\n"
        for op in example["options"]:
            question += op + "\n"
    else:
        question = example["problem"]
    return [
        {"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant"}]},
        {
            "role": "user",
            "content": [
                {"type": example["data_type"], example["data_type"]: "/Video-R1-data" + example["path"][1:]},
                {
                    "type": "text",
                    "text": QUESTION_TEMPLATE.format(Question=question)
                    + TYPE_TEMPLATE[example["problem_type"]],
                },  # noqa: E501
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": example["process"] + "\n" + example["solution"]}],
        },
    ]


def videorft_grpo_prompt(example):
    # VideoRFT src/r1-v/src/open_r1/grpo.py, make_conversation_image_and_video
    question = example["problem"]

    msg = {
        "prompt": [
            {
                "role": "user",
                "content": [
                    {
                        "type": example["data_type"],
                    },
                    {
                        "type": "text",
                        "text": QUESTION_TEMPLATE.format(Question=question)
                        + TYPE_TEMPLATE[example["problem_type"]],
                    },
                ],
            }
        ]
    }
    return msg


def videorft_sft_messages(example):
    # VideoRFT src/r1-v/src/open_r1/sft_video.py, prepare_dataset (system prompt left out: not data-dependent)
    question = example["problem"]
    return [
        {
            "role": "user",
            "content": [
                {"type": example["data_type"], example["data_type"]: "./VideoRFT" + example["path"][1:]},
                {
                    "type": "text",
                    "text": QUESTION_TEMPLATE.format(Question=question)
                    + TYPE_TEMPLATE[example["problem_type"]],
                },  # noqa: E501
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": example["process"] + "\n" + example["solution"]}],
        },
    ]


def peer_load(path: Path) -> Dataset:
    # Both repos' grpo.py / sft_video.py: `dataset = DatasetDict({"train": Dataset.from_json(script_args.dataset_name)})`
    assert str(path).endswith(".json") or str(path).endswith(".jsonl")
    dataset = DatasetDict({"train": Dataset.from_json(str(path))})
    return dataset["train"]


def user_text(messages) -> str:
    return next(
        p["text"]
        for p in messages[-1 if messages[-1]["role"] == "user" else -2]["content"]
        if p["type"] == "text"
    )


# ---- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("peer-exports")
    store, samples = build_run(tmp / "run")
    return publish_run(store, tmp / "out", PublishConfig(version="v1"), run_name="peers", lineage={}), samples


# ---- tests -------------------------------------------------------------------------------------------


def test_peers_show_every_mc_rows_options(published, tmp_path):
    result, samples = published
    mc = {s.problem: s.options for s in samples.values() if s.problem_type == MULTIPLE_CHOICE}
    checked = 0
    for set_name in ("cot", "rl"):
        r1_rows = peer_load(result.exports[f"{set_name}-train"])
        rft_rows = peer_load(result.exports[f"videorft-{set_name}-train"])
        hf_rows = load_dataset(
            "json", data_files=str(result.exports[f"videorft-{set_name}-train"]), split="train"
        )
        assert len(r1_rows) == len(rft_rows) == len(hf_rows) == result.splits[set_name]["train"]
        for r1, rft in zip(r1_rows, rft_rows, strict=True):
            assert r1["problem_id"] == rft["problem_id"] and r1["path"] == rft["path"]
            texts = [
                user_text(videor1_grpo_prompt(r1)["prompt"]),
                user_text(videorft_grpo_prompt(rft)["prompt"]),
            ]
            if set_name == "cot":
                texts += [user_text(videor1_sft_messages(r1)), user_text(videorft_sft_messages(rft))]
            question = r1["problem"]
            if r1["problem_type"] == MULTIPLE_CHOICE:
                for text in texts:  # every trainer's prompt shows every option, once
                    assert all(text.count(option) == 1 for option in mc[question]), text
                    assert question in text
                checked += 1
            else:
                assert all(f"{question}\n" in text for text in texts)
    assert checked >= 3


def _row(i: int, mc: bool) -> dict:
    base = {
        "id": f"id{i}",
        "media_path": f"videos/v{i}.mp4",
        "data_type": "video",
        "process": "<think>" + "The video shows a long scene with many details. " * 40 + "</think>",
        "data_source": "bench/long",
    }
    if mc:
        return base | {
            "problem": f"Which one happens in clip {i}?",
            "options": ["A. a cat jumps", "B. a dog runs", "C. a bird flies", "D. nothing"],
            "problem_type": "multiple choice",
            "solution": "<answer>B</answer>",
        }
    return base | {
        "problem": f"How many cars pass in clip {i}?",
        "options": [],
        "problem_type": "numerical",
        "solution": "<answer>3</answer>",
    }


def test_a_30mb_export_loads_in_any_row_order(tmp_path):
    """`from_json` fixes the schema from the first 10 MB chunk of a JSON-lines file, so the worst row
    order puts 27 MB of non-MC rows (no options) first and the MC rows last. Both files load whole,
    MC options intact (a JSONL with `"options": []` rows fails here: "Couldn't cast ... to null")."""
    rows = [_row(i, mc=False) for i in range(13_500)] + [_row(i, mc=True) for i in range(13_500, 15_000)]
    exports = TrainerExports(tmp_path, "cot")
    for i, row in enumerate(rows):
        exports.add("train", row, problem_id=i)
    files = exports.close()
    assert files["videorft-cot-train"].stat().st_size > 30e6
    for key, prompt in (("cot-train", videor1_grpo_prompt), ("videorft-cot-train", videorft_grpo_prompt)):
        ds = peer_load(files[key])
        assert len(ds) == 15_000 and ds["problem_type"].count("multiple choice") == 1_500
        assert "B. a dog runs" in user_text(prompt(ds[14_999])["prompt"])


VIDEORFT_STYLE = [
    {
        "problem_id": 7001,
        "problem": "What does the man do after opening the door?\nA. He sits down\nB. He leaves\nC. He waves\nD. He sleeps",
        "data_type": "video",
        "problem_type": "multiple choice",
        "solution": "<answer>C</answer>",
        "path": "./LLaVA-Video-178K/clip_a.mp4",
        "data_source": "LLaVA-Video-178K/0_30_s",
    },
    {
        "problem_id": 7002,
        "problem": "Which colour is the car?\nOptions:\n(A) red\n(B) blue",
        "data_type": "video",
        "problem_type": "multiple choice",
        "solution": "<answer>A</answer>",
        "path": "./STAR/clip_b.mp4",
        "data_source": "STAR",
    },
    {
        "problem_id": 7003,
        "problem": "How many people are in the room?",
        "data_type": "video",
        "problem_type": "numerical",
        "solution": "<answer>4</answer>",
        "path": "./STAR/clip_c.mp4",
        "data_source": "STAR",
    },
]


def _ingest_and_publish(source_file: Path, media_root: Path, out: Path):
    store = RunStore(out / "run")
    rows = []
    for src in read_source(SourceConfig(path=source_file, media_root=media_root)):
        assert src.ok, src.reason
        row = src.sample.to_row()
        row.update(index=src.index, status=src.status, reason="", raw=src.raw, key=f"k{src.index}")
        rows.append(row)
    store.write_shard("sources", 0, rows)
    # Publish keeps only questions whose media extracted: record them as extracted.
    store.write_shard(
        "extract", 0, [{"id": r["id"], "key": f"e{r['index']}", "status": "ok", "reason": ""} for r in rows]
    )
    return publish_run(store, out / "pub", PublishConfig(version="v1"), run_name="rt", lineage={})


def test_videorft_style_source_round_trips(tmp_path):
    """VideoRFT file in -> VideoRFT export out, same `problem` text and `problem_id`; the Video-R1
    export has the options in their field and a question without them."""
    media = tmp_path / "media"
    for row in VIDEORFT_STYLE:
        (media / row["path"][2:]).parent.mkdir(parents=True, exist_ok=True)
        (media / row["path"][2:]).write_bytes(b"")
    source = tmp_path / "VideoRFT-RL-Data.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in VIDEORFT_STYLE))
    result = _ingest_and_publish(source, media, tmp_path)

    out = [json.loads(line) for line in result.exports["videorft-rl-train"].read_text().splitlines()]
    assert [(r["problem_id"], r["problem"], r["path"]) for r in out] == [
        (r["problem_id"], r["problem"], r["path"]) for r in VIDEORFT_STYLE
    ]
    r1 = {r["problem_id"]: r for r in json.loads(result.exports["rl-train"].read_text())}
    assert r1[7001]["problem"] == "What does the man do after opening the door?"
    assert r1[7001]["options"] == ["A. He sits down", "B. He leaves", "C. He waves", "D. He sleeps"]
    assert r1[7002]["options"] == ["A. red", "B. blue"] and "Options" not in r1[7002]["problem"]

    # and our own VideoRFT export read back gives the same file again
    again = _ingest_and_publish(result.exports["videorft-rl-train"], media, tmp_path / "again")
    assert again.exports["videorft-rl-train"].read_text() == result.exports["videorft-rl-train"].read_text()


def test_options_in_both_places_are_listed_once(tmp_path):
    """A source with the options in `problem` *and* `options` does not give a double list."""
    media = tmp_path / "media"
    (media / "v").mkdir(parents=True)
    (media / "v" / "a.mp4").write_bytes(b"")
    row = {
        "problem_id": 5,
        "problem": "Pick one.\nA. x\nB. y",
        "options": ["A. x", "B. y"],
        "data_type": "video",
        "problem_type": "multiple choice",
        "solution": "<answer>B</answer>",
        "path": "./v/a.mp4",
    }
    source = tmp_path / "both.json"
    source.write_text(json.dumps([row]))
    result = _ingest_and_publish(source, media, tmp_path)
    (r1,) = peer_load(result.exports["rl-train"])
    text = user_text(videor1_grpo_prompt(r1)["prompt"])
    assert text.count("A. x") == 1 and r1["problem"] == "Pick one."
    (rft,) = peer_load(result.exports["videorft-rl-train"])
    assert rft["problem"] == row["problem"]
