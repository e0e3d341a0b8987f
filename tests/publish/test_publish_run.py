"""publish_run on a hand-built run store: both sets load back, exports, cards, lineage, versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from publish_fixture import build_run

from curation.publish import PublishConfig, publish_run
from curation.publish.export import (
    VIDEOR1_FIELDS_COT,
    VIDEOR1_FIELDS_RL,
    VIDEORFT_FIELDS_COT,
    VIDEORFT_FIELDS_RL,
)
from curation.records import PROBLEM_TYPES
from curation.store import RunStore

pytestmark = pytest.mark.integration

SECRET = "hf_SuperSecretTokenValue123"
LINEAGE = {
    "config_hash": "cfg123",
    "prompts": {"caption": "cap0001", "draft": "dra0001", "revise": "rev0001"},
    "llm": {
        "reviser": {
            "model": "sim/reviser",
            "base_url": "http://10.0.0.5:8000/v1",
            "api_key_env": "OPENAI_KEY",
            "api_key": "sk-abcdefghijklmnop",
        }
    },
    "note": f"token {SECRET} pasted by mistake",
    "source": {"path": "/home/alice/data/annotations.jsonl"},
}
CARD_KEYS = {"license", "task_categories", "size_categories", "configs", "pretty_name", "tags"}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pub")
    store, samples = build_run(tmp / "run")
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_TOKEN", SECRET)
    try:
        result = publish_run(
            store, tmp / "out", PublishConfig(version="v1"), run_name="unit-run", lineage=LINEAGE
        )
    finally:
        mp.undo()
    return result, samples, tmp


def front_matter(card: str) -> dict:
    assert card.startswith("---\n"), card[:40]
    _, meta, _body = card.split("---\n", 2)
    return yaml.safe_load(meta)


def test_result_layout_and_latest(published):
    result, _, tmp = published
    root = tmp / "out" / "videorft"
    assert result.version.startswith("v1-") and len(result.version) == len("v1-") + 8
    assert (root / "latest").read_text().strip() == result.version
    assert result.cot_dir == root / result.version / "cot" and result.rl_dir == root / result.version / "rl"
    assert (result.cot_rows, result.rl_rows) == (2, 5)
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp")]
    meta = json.loads((root / result.version / "publish.json").read_text())
    assert meta["rows"] == {"cot": 2, "rl": 5} and meta["content_hash"] == result.content_hash
    assert set(result.exports) == {"cot-train", "rl-train", "videorft-cot-train", "videorft-rl-train"}
    assert set(result.cards) == {"cot", "rl"}


def test_cot_set_loads_back_both_ways_with_lineage(published):
    from datasets import load_dataset, load_from_disk

    result, s, _ = published
    dd = load_from_disk(str(result.cot_dir))
    assert list(dd) == ["train"] and dd["train"].num_rows == 2
    pq = load_dataset(
        "parquet", data_files={"train": str(result.cot_dir / "data" / "train-00000-of-00001.parquet")}
    )
    assert pq["train"].to_list() == dd["train"].to_list()
    rows = {r["id"]: r for r in dd["train"]}
    assert set(rows) == {s["mc_ok"].id, s["num_ok"].id}
    row = rows[s["mc_ok"].id]
    assert row["process"].startswith("<think>") and row["process"].endswith("</think>")
    assert row["solution"] == "<answer>B</answer>"
    assert row["options"] == s["mc_ok"].options and rows[s["num_ok"].id]["options"] == []
    assert row["problem_type"] == "multiple choice" and rows[s["num_ok"].id]["data_type"] == "image"
    assert row["media_path"] == "videos/k1.mp4" and row["data_source"] == "synthetic/kitchen"
    lineage = {
        k: row[k]
        for k in (
            "prompt_hash_caption",
            "prompt_hash_draft",
            "prompt_hash_revise",
            "model_caption",
            "model_draft",
            "model_revise",
            "run_name",
        )
    }
    assert lineage == {
        "prompt_hash_caption": "cap0001",
        "prompt_hash_draft": "dra0001",
        "prompt_hash_revise": "rev0001",
        "model_caption": "sim/captioner",
        "model_draft": "sim/reasoner",
        "model_revise": "sim/reviser",
        "run_name": "unit-run",
    }


def test_hub_style_folder_load(published):
    from datasets import load_dataset

    result, _, _ = published
    ds = load_dataset(str(result.cot_dir))  # README `configs` -> data/*.parquet
    assert ds["train"].num_rows == 2


def test_rl_set_includes_questions_whose_cot_was_rejected(published):
    from datasets import load_from_disk

    result, s, _ = published
    rl = load_from_disk(str(result.rl_dir))["train"]
    ids = set(rl["id"])
    assert ids == {s[n].id for n in ("mc_ok", "num_ok", "mc_wrong", "leak", "ocr_fail")}
    assert s["dup"].id not in ids and "badrow0001" not in ids  # sources-rejected rows are not valid
    assert "process" not in rl.column_names
    by_id = {r["id"]: r for r in rl}
    assert by_id[s["ocr_fail"].id]["solution"] == "<answer>OPEN NOW</answer>"
    assert by_id[s["leak"].id]["problem_type"] == "free-form"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_videor1_exports(published):
    result, s, _ = published
    assert result.exports["cot-train"].name == "cot-train.json"  # a JSON array, like Video-R1's files
    cot, rl = (
        json.loads(result.exports["cot-train"].read_text()),
        json.loads(result.exports["rl-train"].read_text()),
    )
    assert len(cot) == 2 and len(rl) == 5
    assert all(list(r) == list(VIDEOR1_FIELDS_COT) for r in cot)
    assert all(list(r) == list(VIDEOR1_FIELDS_RL) for r in rl)
    assert all(isinstance(r["problem_id"], int) for r in cot + rl)
    assert len({r["problem_id"] for r in rl}) == 5
    assert all(r["problem_type"] in PROBLEM_TYPES for r in cot + rl)
    assert all(r["solution"].startswith("<answer>") and r["solution"].endswith("</answer>") for r in cot + rl)
    assert all(r["process"].startswith("<think>") for r in cot)
    rl_pid = {r["path"] + r["problem"]: r["problem_id"] for r in rl}
    for r in cot:  # the same sample has the same problem_id in both exports
        assert rl_pid[r["path"] + r["problem"]] == r["problem_id"]
    k1 = next(r for r in rl if r["problem"] == s["mc_ok"].problem)
    assert k1["path"] == "./videos/k1.mp4" and k1["options"][1] == "B. She pours flour"


def test_videorft_exports_embed_the_options(published):
    result, s, _ = published
    cot = read_jsonl(result.exports["videorft-cot-train"])
    rl = read_jsonl(result.exports["videorft-rl-train"])
    assert result.exports["videorft-rl-train"].parent.name == "videorft"
    assert all(list(r) == list(VIDEORFT_FIELDS_COT) for r in cot)
    assert all(list(r) == list(VIDEORFT_FIELDS_RL) for r in rl)
    by_path = {r["path"]: r for r in rl}
    mc = by_path["./videos/k1.mp4"]
    assert mc["problem"] == "\n".join([s["mc_ok"].problem, *s["mc_ok"].options])
    assert by_path["./images/apples.jpg"]["problem"] == s["num_ok"].problem  # non-MC: unchanged
    # same problem_id for the same sample in both trainers' files
    r1 = {r["path"]: r["problem_id"] for r in json.loads(result.exports["rl-train"].read_text())}
    assert {p: r["problem_id"] for p, r in by_path.items()} == r1


def test_cards_front_matter_and_tables(published):
    result, s, _ = published
    cot_card, rl_card = result.cards["cot"].read_text(), result.cards["rl"].read_text()
    for card, set_dir in ((cot_card, result.cot_dir), (rl_card, result.rl_dir)):
        meta = front_matter(card)
        assert CARD_KEYS <= set(meta)
        assert meta["task_categories"] == ["video-text-to-text", "visual-question-answering"]
        assert meta["size_categories"] == ["n<1K"]
        files = meta["configs"][0]["data_files"]
        assert [f["split"] for f in files] == ["train"]
        assert all(list(set_dir.glob(f["path"])) for f in files)  # the globs match real files
        # rejection table: per stage and reason
        assert "| filter | rejected | leakage: mentions captions | 1 |" in card
        assert "| filter | rejected | answer_correctness: score < 1 (multiple choice) | 1 |" in card
        assert "| revise | failed | endpoint error: 500 | 1 |" in card
        assert f"dedup: near-duplicate question of {s['mc_ok'].id}" in card
        assert "| sources | 7 | 5 | 2 | 0 |" in card
        assert "`sim/reviser` | `rev0001`" in card
        assert "load_from_disk" in card and 'load_dataset("parquet"' in card and "videor1/" in card
        assert "videorft/" in card and "Video-R1-data" in card and "VideoRFT-Data" in card
    assert front_matter(cot_card)["pretty_name"] == "videorft CoT"
    # counts per source and problem type
    assert "| synthetic/kitchen | 1 | 0 | 1 |" in cot_card
    assert "| **total** |" in rl_card and "| synthetic/sign |" in rl_card
    # CoT length distribution and filter verdicts, CoT card only
    assert "| rows | min | p50 | p90 | max | mean |" in cot_card and "```text" in cot_card
    assert "| leakage | 1 | 1 | mentions captions (1) |" in cot_card
    assert "| rows | min | p50 |" not in rl_card


def test_no_secrets_anywhere(published):
    result, _, tmp = published
    version_dir = result.cot_dir.parent
    for path in version_dir.rglob("*"):
        if path.is_file() and path.suffix in {".md", ".json", ".jsonl"}:
            text = path.read_text()
            for needle in (SECRET, "sk-abcdefghijklmnop", "10.0.0.5", "/home/alice", "OPENAI_KEY"):
                assert needle not in text, f"{needle} leaked into {path}"
    card = result.cards["cot"].read_text()
    assert "`config_hash`: cfg123" in card and "`llm.reviser.model`: sim/reviser" in card


def test_test_split_is_deterministic_and_shared(tmp_path):
    from datasets import load_from_disk

    store, _ = build_run(tmp_path / "run")
    cfg = PublishConfig(version="v2", test_fraction=0.5)
    r1 = publish_run(store, tmp_path / "out", cfg, run_name="unit-run", lineage={})
    r2 = publish_run(store, tmp_path / "out", cfg, run_name="unit-run", lineage={})
    assert r1.version == r2.version and r1.content_hash == r2.content_hash  # same rows, same folder
    rl, cot = load_from_disk(str(r2.rl_dir)), load_from_disk(str(r2.cot_dir))
    assert set(rl) == {"train", "test"}
    split_of = {i: split for split in rl for i in rl[split]["id"]}
    for split in cot:
        assert all(split_of[i] == split for i in cot[split]["id"])  # a sample is in one split everywhere
    meta = front_matter(r2.cards["rl"].read_text())
    assert [f["split"] for f in meta["configs"][0]["data_files"]] == ["train", "test"]
    assert "rl-test" in r2.exports


def test_empty_cot_set_and_push(tmp_path, monkeypatch):
    import pyarrow.parquet as pq
    from datasets import load_from_disk

    store, _ = build_run(tmp_path / "run")
    for shard in store.shards("filter"):
        rows = store.read_shard("filter", shard)
        store.write_shard(
            "filter", shard, [{**r, "status": "rejected", "reason": "length: too short"} for r in rows]
        )
    pushed = []
    import curation.publish.hub as hub

    monkeypatch.setattr(
        hub, "push_to_hub", lambda folder, repo, token_env, private: pushed.append((folder, repo))
    )
    cfg = PublishConfig(version="v3", push_to_hub="me/videorft", hub_token_env="MY_TOKEN")
    result = publish_run(RunStore(store.run_dir), tmp_path / "out", cfg, run_name="r", lineage={})
    assert result.cot_rows == 0 and result.rl_rows == 5
    assert load_from_disk(str(result.cot_dir))["train"].num_rows == 0
    # The empty Parquet file keeps the full schema (datasets' load_dataset refuses empty splits:
    # "corresponds to no data"; pyarrow, pandas and load_from_disk read it).
    table = pq.read_table(result.cot_dir / "data" / "train-00000-of-00001.parquet")
    assert table.num_rows == 0 and "prompt_hash_revise" in table.column_names
    assert "_No CoT rows._" in result.cards["cot"].read_text()
    assert pushed == [(result.cot_dir, "me/videorft-cot"), (result.rl_dir, "me/videorft-rl")]


def test_kept_row_without_revise_text_is_counted_not_published(tmp_path):
    """A filter-ok row whose revise row is gone (a stale filter table) stays out of the CoT set, counted."""
    store, s = build_run(tmp_path / "run")
    revise0 = store.read_shard("revise", 0)
    store.write_shard("revise", 0, [r for r in revise0 if r["id"] != s["mc_ok"].id])
    result = publish_run(store, tmp_path / "out", PublishConfig(version="v1"), run_name="r", lineage={})
    assert (result.cot_rows, result.rl_rows) == (1, 5)
    meta = json.loads((result.cot_dir.parent / "publish.json").read_text())
    assert meta["not_published_missing_process"] == 1
    from datasets import load_from_disk

    cot = load_from_disk(str(result.cot_dir))
    assert [sid for split in cot.values() for sid in split["id"]] == [s["num_ok"].id]
