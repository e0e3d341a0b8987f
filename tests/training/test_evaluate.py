"""Evaluation: VideoRFT's prediction rule, our scorers, tables per problem type and data source."""

from __future__ import annotations

import json

import pytest


def test_score_prediction_rules(rows):
    from training.evaluate import score_prediction

    mc, numerical, _, regression, _ = rows
    perfect = score_prediction(mc, "<think>It moves right.</think>\n<answer>B</answer>")
    assert perfect["prediction"] == "B" and perfect["score"] == 1.0 and perfect["format_ok"]
    # No tag: the whole output is the prediction (VideoRFT eval), but it is flagged.
    bare = score_prediction(mc, "B")
    assert bare["prediction"] == "B" and bare["score"] == 1.0 and not bare["has_answer_tag"]
    assert score_prediction(numerical, "<answer>2</answer>")["score"] == 0.0
    # Regression is reported as MRA: |4.4 - 5| / 5 = 0.12 < 1 - θ for θ in 0.50..0.85 -> 8/10.
    reg = score_prediction(regression, "<answer>4.4</answer>")
    assert reg["mra"] == pytest.approx(0.8) and reg["metric"] == reg["mra"]


def test_aggregate_and_markdown(rows):
    from training.evaluate import aggregate, markdown_tables, score_prediction

    records = [score_prediction(r, f"<think>x</think><answer>{r['solution'][8:-9]}</answer>") for r in rows]
    metrics = aggregate(records)
    assert metrics["overall"]["n"] == 5 and metrics["overall"]["metric"] == pytest.approx(1.0)
    assert set(metrics["by_problem_type"]) == {"multiple choice", "numerical", "free-form", "regression"}
    assert metrics["by_problem_type"]["multiple choice"]["n"] == 2
    assert metrics["by_data_source"]["synthetic/count"]["mean_mra"] == pytest.approx(1.0)
    md = markdown_tables(metrics, "t")
    assert "## By problem type" in md and "## By data source" in md and "| synthetic/motion |" in md


@pytest.mark.integration
def test_run_eval_writes_tables(tmp_path, tiny_qwen_dir, tiny_dataset, media_root, repo_root, test_video):
    from training.evaluate import run_eval

    out = tmp_path / "eval"
    metrics = run_eval(
        repo_root / "recipes/tiny/eval.yaml",
        model_name_or_path=str(tiny_qwen_dir),
        dataset_name=str(tiny_dataset),
        media_root=str(media_root),
        output_dir=str(out),
        max_new_tokens=8,
        **test_video,
    )
    assert metrics["overall"]["n"] == 5
    assert (
        json.loads((out / "metrics.json").read_text())["by_data_source"].keys()
        == metrics["by_data_source"].keys()
    )
    assert "| regression |" in (out / "metrics.md").read_text()
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 5 and {"output", "prediction", "score", "metric"} <= set(json.loads(lines[0]))


@pytest.mark.integration
def test_run_eval_scores_a_perfect_model(
    tmp_path, monkeypatch, tiny_qwen_dir, tiny_dataset, media_root, repo_root, test_video
):
    """With generation replaced by the gold CoT, every table reads 100%: the scoring wiring is right."""
    from training import evaluate
    from training.data import assistant_target

    monkeypatch.setattr(
        evaluate.HFGenerator, "__call__", lambda self, batch: [assistant_target(p.row) for p in batch]
    )
    metrics = evaluate.run_eval(
        repo_root / "recipes/tiny/eval.yaml",
        model_name_or_path=str(tiny_qwen_dir),
        dataset_name=str(tiny_dataset),
        media_root=str(media_root),
        output_dir=str(tmp_path / "eval"),
        **test_video,
    )
    assert metrics["overall"]["metric"] == pytest.approx(1.0)
    assert metrics["overall"]["format_rate"] == 1.0
    assert all(s["metric"] == pytest.approx(1.0) for s in metrics["by_problem_type"].values())
