"""The filters against the simulated endpoint's planted truth on the synthetic dataset.

The simulator plants wrong answers and leakage that survives revision as a pure function of the
sample id (`plants`); the filters must reject exactly those rows and keep every clean one.
"""

from __future__ import annotations

import json

import pytest

from curation.filters import FilterStats, run_filters
from curation.filters.config import FilterConfig
from curation.records import sample_id

pytestmark = pytest.mark.integration


def test_filters_find_exactly_what_the_simulator_planted(synth_dir):
    from sim_endpoint import answers as sim_answers
    from sim_endpoint.config import SimConfig, plants
    from sim_endpoint.scene import scene_from_meta

    ann = synth_dir / "annotations.jsonl"
    cfg = SimConfig(annotations=[str(ann)], leak_share=0.5, leak_survives_share=0.6)
    rows, planted = [], {}
    for line in ann.read_text().splitlines():
        s = json.loads(line)
        s["id"] = s.get("id") or sample_id(s["data_source"], s["media_path"], s["problem"])
        p = plants(s["id"], cfg)
        process = sim_answers.revise_content(s, scene_from_meta(s["meta"]), p)
        rows.append({**s, "process": process, "answer": sim_answers.planted_answer(s, p), "draft": ""})
        planted[s["id"]] = p
    stats = FilterStats()
    out = run_filters(rows, FilterConfig(), stats=stats)
    assert any(p.wrong_answer for p in planted.values()) and any(
        p.leak_survives_revision for p in planted.values()
    )
    for row, res in zip(rows, out, strict=True):
        p = planted[row["id"]]
        verdicts = json.loads(res["verdicts"])
        wrong = not verdicts["answer_correctness"]["kept"] or not verdicts["open_ended_agreement"]["kept"]
        assert wrong == p.wrong_answer, (row["problem_type"], row["answer"], row["solution"], res["scores"])
        assert (not verdicts["leakage"]["kept"]) == p.leak_survives_revision, res["scores"]
        for step in ("format", "length", "repetition"):
            assert verdicts[step]["kept"], (step, verdicts[step], row["process"][:200])
        assert (res["status"] == "ok") == (not p.wrong_answer and not p.leak_survives_revision)
    assert stats.failed == 0
