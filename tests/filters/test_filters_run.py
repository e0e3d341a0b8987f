"""run_filters / filter_shard: every step runs, the first failing step names the reason, stats."""

from __future__ import annotations

import json

import pytest
from filters_helpers import make_row, think
from pydantic import ValidationError

from curation.filters import FILTERS, FilterStats, Verdict, build_steps, run_filters
from curation.filters.base import FilterStep
from curation.filters.config import DEFAULT_ORDER, FilterConfig, LengthConfig
from curation.filters.open_ended_agreement import OpenEndedAgreementFilter
from curation.stages.filter import OUTPUT_COLUMNS, filter_shard, join_filter_input


class FakeEncoder:
    def __call__(self, texts):
        import numpy as np

        return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)  # every pair: similarity 1


def steps_with_fake_encoder(cfg: FilterConfig):
    return build_steps(
        cfg, {"open_ended_agreement": OpenEndedAgreementFilter(cfg.open_ended_agreement, FakeEncoder())}
    )


def test_registry_matches_config():
    assert list(FILTERS) == list(DEFAULT_ORDER)
    for name, cls in FILTERS.items():
        assert cls.name == name and hasattr(FilterConfig(), name)


def test_output_rows_reason_is_first_failing_step_and_all_verdicts_present():
    cfg = FilterConfig()
    rows = [
        make_row(id="ok"),
        # wrong answer AND a leak: answer_correctness comes first in the default order
        make_row(
            id="both",
            answer="C",
            process=think(
                "Based on the captions the woman pours flour into the "
                "bowl and then stirs the mixture, so it is C."
            ),
        ),
        make_row(id="short", process=think("B.")),
    ]
    stats = FilterStats()
    out = filter_shard(rows, cfg, stats=stats, steps=steps_with_fake_encoder(cfg))
    assert [r["id"] for r in out] == ["ok", "both", "short"]
    assert all(set(r) == set(OUTPUT_COLUMNS) for r in out)
    assert [r["status"] for r in out] == ["ok", "rejected", "rejected"]
    assert out[0]["reason"] == ""
    assert out[1]["reason"] == "answer_correctness: score < 1 (multiple choice)"
    assert out[2]["reason"] == "length: too short (< 20 tokens)"
    verdicts = json.loads(out[1]["verdicts"])
    assert list(verdicts) == list(DEFAULT_ORDER)  # configured order, every step
    assert verdicts["leakage"] == {"kept": False, "reason": "mentions captions"}
    assert verdicts["format"] == {"kept": True, "reason": ""}
    scores = json.loads(out[1]["scores"])
    assert scores["answer_correctness"]["answer_score"] == 0.0 and scores["leakage"]["leak_count"] == 1
    # stats: per step and per row
    assert stats.rows == 3 and stats.ok == 1 and stats.rejected == 2
    assert stats.first_failure == {"answer_correctness": 1, "length": 1}
    assert stats.steps["leakage"].dropped == {"mentions captions": 1}
    assert stats.steps["format"].kept == 3
    assert stats.to_dict()["steps"]["length"]["dropped"] == {"too short (< 20 tokens)": 1}


def test_order_changes_the_reason_not_the_verdicts():
    row = make_row(
        answer="C",
        process=think(
            "Based on the captions the woman pours flour into the bowl, "
            "then she stirs everything, so the answer is C."
        ),
    )
    cfg = FilterConfig(order=["leakage", "answer_correctness", "format", "repetition", "length"])
    out = run_filters([row], cfg)[0]
    assert out["reason"] == "leakage: mentions captions"
    assert "open_ended_agreement" not in json.loads(out["verdicts"])


def test_disabled_step_does_not_run():
    cfg = FilterConfig(length=LengthConfig(enabled=False), order=["format", "length"])
    out = run_filters([make_row(process=think("B."))], cfg)[0]
    assert out["status"] == "ok" and list(json.loads(out["verdicts"])) == ["format"]


class Exploding(FilterStep):
    name = "format"

    def filter(self, row):
        if row["id"] == "bad":
            raise KeyError("boom")
        return Verdict.ok()


def test_step_error_fails_only_its_row_and_is_recorded():
    cfg = FilterConfig(order=["format", "length"])
    steps = build_steps(cfg, {"format": Exploding(cfg.format)})
    stats = FilterStats()
    out = run_filters([make_row(id="good"), make_row(id="bad")], cfg, steps=steps, stats=stats)
    assert out[0]["status"] == "ok"
    assert out[1]["status"] == "failed" and out[1]["reason"].startswith("format: error: KeyError")
    assert stats.failed == 1 and stats.steps["format"].errors == 1


def test_config_validation_and_key_material():
    with pytest.raises(ValidationError, match="unknown filter step"):
        FilterConfig(order=["format", "nope"])
    with pytest.raises(ValidationError, match="global step"):
        FilterConfig(order=["format", "dedup"])
    with pytest.raises(ValidationError, match="listed twice"):
        FilterConfig(order=["format", "format"])
    with pytest.raises(ValidationError, match="Extra inputs"):
        FilterConfig.model_validate({"length": {"min_tokenz": 3}})
    base = FilterConfig().key_material()
    assert base == FilterConfig().key_material()
    assert FilterConfig(length=LengthConfig(min_tokens=5)).key_material() != base
    assert FilterConfig(order=list(reversed(DEFAULT_ORDER))).key_material() != base
    # dedup acts in the sources stage: it does not re-key the filter stage
    assert FilterConfig.model_validate({"dedup": {"include_options": False}}).key_material() == base
    assert base["leak_patterns"] and base["scoring"]


def test_join_filter_input():
    sample = make_row()
    joined = join_filter_input(sample, {"process": "<think>x</think>", "answer": "B", "draft": "d0"})
    assert joined["process"] == "<think>x</think>" and joined["answer"] == "B" and joined["draft"] == "d0"
    assert joined["solution"] == "B" and joined["problem_type"] == "multiple choice"
