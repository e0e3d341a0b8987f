"""Card helpers, sanitising, split assignment and the Hub upload call (no network)."""

from __future__ import annotations

from collections import Counter

import pytest

from curation.publish import push_to_hub
from curation.publish.cards import _md_cell, card_metadata, length_stats, size_category, source_table
from curation.publish.collect import sanitize
from curation.publish.config import PublishConfig
from curation.publish.export import videor1_record
from curation.publish.hub import HUB_IGNORE_PATTERNS
from curation.publish.sets import split_of


def test_size_categories():
    assert [size_category(n) for n in (0, 999, 1000, 150_000, 2_000_000)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "100K<n<1M",
        "1M<n<10M",
    ]


def test_length_stats_percentiles_and_histogram():
    stats = length_stats(list(range(1, 101)), bins=10)
    assert (stats["min"], stats["p50"], stats["p90"], stats["max"]) == (1, 50, 90, 100)
    assert [b["count"] for b in stats["histogram"]] == [10] * 10
    assert stats["histogram"][0]["lo"] == 1 and stats["histogram"][-1]["hi"] == 100
    assert length_stats([]) is None
    one = length_stats([7, 7, 7])
    assert one["histogram"] == [{"lo": 7, "hi": 7, "count": 3, "bar": "█" * 40}]


def test_source_table_and_cells():
    t = source_table(Counter({("a", "OCR"): 2, ("b", "numerical"): 1}))
    assert t["types"] == ["OCR", "numerical"] and t["totals"] == [2, 1] and t["total"] == 3
    assert _md_cell("a|b\nc") == "a\\|b c"


def test_card_metadata_configs():
    meta = card_metadata(
        pretty_name="x", license="other", rows=10, splits=["train", "test"], tags=["video", "mine"]
    )
    assert meta["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train-*.parquet"},
        {"split": "test", "path": "data/test-*.parquet"},
    ]
    assert meta["tags"].count("video") == 1 and "mine" in meta["tags"]


def test_sanitize_drops_credentials_urls_paths():
    clean = sanitize(
        {
            "api_key": "sk-123456789abc",
            "hf_token": "x",
            "OPENAI_API_KEY": "y",
            "base_url": "http://h",
            "runs_dir": "/home/u/runs",
            "model": "Qwen/Qwen2.5-VL-72B",
            "note": "Bearer abc.def and hf_abcdefghijkl",
            "nested": [{"password": "p", "keep": 1}],
            "config_hash": "c0",
        }
    )
    assert clean == {
        "model": "Qwen/Qwen2.5-VL-72B",
        "note": "[redacted] and [redacted]",
        "nested": [{"keep": 1}],
        "config_hash": "c0",
    }


def test_split_of_is_stable():
    ids = [f"id{i}" for i in range(400)]
    assert all(split_of(i, 0.0) == "train" for i in ids)
    test = [i for i in ids if split_of(i, 0.25) == "test"]
    assert 60 < len(test) < 140 and test == [i for i in ids if split_of(i, 0.25) == "test"]


def test_videor1_record_spelling_and_path():
    rec = videor1_record(
        {
            "media_path": "v/a.mp4",
            "problem": "q",
            "data_type": "video",
            "problem_type": "mc",
            "options": ["A. x"],
            "solution": "<answer>A</answer>",
            "data_source": "s",
        },
        3,
    )
    assert rec == {
        "problem_id": 3,
        "problem": "q",
        "data_type": "video",
        "problem_type": "multiple choice",
        "options": ["A. x"],
        "solution": "<answer>A</answer>",
        "path": "./v/a.mp4",
        "data_source": "s",
    }


def test_publish_config_validation():
    with pytest.raises(ValueError):
        PublishConfig(name="../evil")
    with pytest.raises(ValueError):
        PublishConfig(version=".hidden")
    with pytest.raises(ValueError):
        PublishConfig.model_validate({"verison": "v1"})


class FakeApi:
    def __init__(self, token=None):
        self.token = token
        self.calls: list[tuple[str, dict]] = []
        FakeApi.instances.append(self)

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", kw))
        return "commit-info"


FakeApi.instances = []


def test_push_to_hub_builds_the_right_calls(tmp_path, monkeypatch):
    import huggingface_hub

    (tmp_path / "README.md").write_text("---\n---\n")
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setenv("MY_TOKEN", "tok-value")
    assert push_to_hub(tmp_path, "me/videorft-cot", token_env="MY_TOKEN") == "commit-info"
    api = FakeApi.instances[-1]
    assert api.token == "tok-value"
    (name1, create), (name2, upload) = api.calls
    assert name1 == "create_repo" and create == {
        "repo_id": "me/videorft-cot",
        "repo_type": "dataset",
        "private": True,
        "exist_ok": True,
        "token": "tok-value",
    }
    assert name2 == "upload_folder"
    assert upload["repo_id"] == "me/videorft-cot" and upload["repo_type"] == "dataset"
    assert upload["folder_path"] == str(tmp_path) and upload["token"] == "tok-value"
    assert upload["ignore_patterns"] == HUB_IGNORE_PATTERNS and "*.arrow" in HUB_IGNORE_PATTERNS


def test_push_to_hub_needs_a_card(tmp_path):
    with pytest.raises(FileNotFoundError):
        push_to_hub(tmp_path, "me/x", api=FakeApi())


def test_load_from_disk_copy_is_streamed_in_batches_and_reads_back(tmp_path):
    """Many Parquet batches become one Arrow shard per split that `load_from_disk` reads, in order."""
    from datasets import load_from_disk

    from curation.publish.sets import RL_SCHEMA, SetWriter

    rows = [
        {
            "id": f"s{i}",
            "media_path": f"v{i}.mp4",
            "data_type": "video",
            "problem": f"q{i}",
            "options": [f"A. {i}", "B. other"] if i % 2 else [],
            "problem_type": "multiple choice" if i % 2 else "numerical",
            "solution": f"<answer>{i}</answer>",
            "data_source": "src",
        }
        for i in range(50)
    ]

    def publish(folder):
        writer = SetWriter(folder, RL_SCHEMA, batch_rows=7)
        for row in rows:
            writer.add("test" if int(row["id"][1:]) % 5 == 0 else "train", row)
        writer.close()
        writer.save_for_load_from_disk()
        return load_from_disk(str(folder))

    dd = publish(tmp_path / "a")
    assert list(dd) == ["train", "test"]
    assert dd["test"].to_list() == [r for r in rows if int(r["id"][1:]) % 5 == 0]
    assert dd["train"].to_list() == [r for r in rows if int(r["id"][1:]) % 5 != 0]
    # Same rows, same fingerprint (caches keyed on it stay valid when a set is republished unchanged).
    again = publish(tmp_path / "b")
    assert again["train"]._fingerprint == dd["train"]._fingerprint != dd["test"]._fingerprint


def test_problem_ids_keep_the_sources_and_never_collide():
    from curation.publish.export import ProblemIds

    ids = ProblemIds(
        [("a", {"problem_id": 40}), ("b", {}), ("c", {"problem_id": "7"}), ("d", {"problem_id": "x"})]
    )
    assert (ids["a"], ids["c"]) == (40, 7)  # the source's own (an int, or a string of digits)
    assert (ids["b"], ids["d"]) == (41, 42)  # after the largest source id, in source order
    plain = ProblemIds([("a", {}), ("b", {})])
    assert (plain["a"], plain["b"]) == (0, 1)
