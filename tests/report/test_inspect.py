import pytest

from curation.report.inspect import format_rows, format_sample, inspect_rows, inspect_sample
from curation.store import RunStore


def test_rows_filter_by_stage_status_and_limit(small_run):
    run = small_run["store"].run_dir
    failed = inspect_rows(run, status="failed")
    assert [(r["stage"], r["reason"]) for r in failed] == [
        ("extract", "decode error: moov atom not found"),
        ("caption", "invalid JSON after repair"),
    ]
    assert len(inspect_rows(run, stage="sources", limit=None)) == 7
    assert len(inspect_rows(run, limit=3)) == 3
    assert inspect_rows(run, stage="publish") == []  # no table: nothing, not an error
    with pytest.raises(ValueError):
        inspect_rows(run, stage="nope")
    with pytest.raises(ValueError):
        inspect_rows(run, status="weird")


def test_format_rows_rich_and_plain(small_run):
    rows = inspect_rows(small_run["store"].run_dir, status="rejected")
    text = format_rows(rows, color=False)
    assert "unsafe media path" in text and "answer mismatch" in text and "stage" in text
    plain = format_rows(rows, plain=True)
    assert plain.splitlines()[0].split() == ["stage", "id", "status", "reason"]
    assert format_rows([]) == "no rows match\n"


def test_sample_across_all_stages(small_run):
    d = inspect_sample(small_run["store"].run_dir, small_run["kept_id"][:6])  # a prefix is enough
    assert d["id"] == small_run["kept_id"]
    assert d["status"] == "ok" and d["stopped_at"] == "filter"
    assert list(d["stages"]) == ["sources", "extract", "caption", "draft", "revise", "filter"]
    assert len(d["frames"]) == 8 and d["frames"][1] == {
        "path": f"frames/{d['id']}/001.jpg",
        "timestamp": 0.5,
    }
    assert d["caption"]["frames"][0]["key_elements"]["objects"] == ["red ball", "blue cube"]
    assert d["draft"]["answer"] == "3" and d["revision"]["answer"] == "3"
    assert not d["revision"]["text"].startswith("<think>")
    assert any(op == "-" and "visualize" in t for op, t in d["diff"])
    assert d["filter"]["verdicts"]["accuracy"]["kept"] is True
    assert d["llm"]["draft"]["model"] == "deepseek-r1-sim"


def test_failed_sample_has_no_later_stages(small_run):
    d = inspect_sample(small_run["store"].run_dir, small_run["failed_id"])
    assert (d["status"], d["stopped_at"]) == ("failed", "extract")
    assert d["frames"] == [] and d["caption"] is None and d["draft"] is None and d["diff"] is None


def test_unknown_and_ambiguous_ids(small_run):
    run = small_run["store"].run_dir
    with pytest.raises(KeyError, match="no sample"):
        inspect_sample(run, "zzzz")
    with pytest.raises(KeyError, match="ambiguous"):
        inspect_sample(run, "")


def test_format_sample_plain_text_is_readable(small_run):
    d = inspect_sample(small_run["store"].run_dir, small_run["ids"][1])
    text = format_sample(d, color=False, width=100)
    assert "\x1b[" not in text
    for expected in (
        "Which direction does the ball roll?",
        "B. right",
        "revised answer: A",
        "[-",
        "{+",
        "answer mismatch",
        "frames/",
        "red ball, blue cube",
    ):
        assert expected in text, expected
    coloured = format_sample(d, color=True)
    assert "\x1b[" in coloured and "[-" not in coloured


def test_partial_run_without_manifest(tmp_path):
    store = RunStore(tmp_path / "r")
    store.write_shard(
        "sources", 0, [{"id": "abc", "key": "k", "status": "ok", "reason": "", "problem": "Q?"}]
    )
    d = inspect_sample(store.run_dir, "abc")
    assert d["stopped_at"] == "sources" and d["problem"] == "Q?" and d["options"] == []
    assert "Q?" in format_sample(d, color=False)
    with pytest.raises(FileNotFoundError):
        inspect_rows(tmp_path / "missing")
