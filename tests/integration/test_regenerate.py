"""Filter → publish end to end: known plants are caught, and regeneration redoes only what changed."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from datasets import load_dataset, load_from_disk

from curation.filters.base import count_tokens, think_text
from flows.curate import run_curate
from sim_endpoint.config import plants
from sim_endpoint.server import SIM_MODEL_NAME, SimConfig, reset_sim_stats, running_sim_server, sim_stats

pytestmark = pytest.mark.integration

SIM = dict(wrong_answer_share=0.25, leak_share=0.5, leak_survives_share=0.5, seed=3)


@pytest.fixture(scope="module")
def sim(synth_dir):
    cfg = SimConfig(annotations=[str(synth_dir / "annotations.jsonl")], **SIM)
    with running_sim_server(cfg) as url:
        yield url, cfg


def test_filters_reject_exactly_the_plants_and_regeneration_is_cheap(
    tmp_path, synth_dir, sim, sim_recipe, repo_root
):
    url, cfg = sim
    runs = tmp_path / "runs"
    recipe = sim_recipe(synth_dir, url, runs, run="regen")
    m1 = run_curate(recipe=recipe)
    run = runs / "regen"

    # ---- the filters catch exactly what was planted -------------------------------------------
    flt = pd.read_parquet(run / "filter")
    expected = {
        sid: (p.wrong_answer or p.leak_survives_revision) for sid in flt["id"] for p in [plants(sid, cfg)]
    }
    assert sum(expected.values()) >= 3 and sum(not v for v in expected.values()) >= 3
    got = dict(zip(flt["id"], flt["status"] == "rejected", strict=True))
    assert got == expected, {
        k: (got[k], flt.set_index("id").loc[k, "reason"]) for k in got if got[k] != expected[k]
    }
    reasons = flt.set_index("id")["reason"]
    for sid in expected:
        p = plants(sid, cfg)
        if p.wrong_answer:
            assert "answer_correctness" in reasons[sid] or "open_ended" in reasons[sid], reasons[sid]
        elif p.leak_survives_revision:
            assert reasons[sid].startswith("leakage"), reasons[sid]
    # Leakage planted in drafts but removed by the reviser is NOT rejected.
    assert any(plants(s, cfg).leak_in_draft and not expected[s] for s in expected)

    # ---- the run posted its artifacts: counts and reasons per stage, a link to the report -------
    from pathlib import Path

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    assert Path(m1["report"]).is_file()
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="regen-")), limit=200, offset=0
        )
    keys = {a.key for a in arts}
    assert {"regen-filter-counts", "regen-filter-reasons", "regen-caption-counts", "regen-report"} <= keys, (
        keys
    )

    # ---- published sets load with datasets, the manifest accounts for every sample -------------
    pub = m1["publish"]
    cot = load_from_disk(pub["cot_dir"])["train"]
    rl = load_from_disk(pub["rl_dir"])["train"]
    assert len(cot) == sum(not v for v in expected.values()) == pub["cot_rows"]
    assert len(rl) == m1["stages"]["sources"]["ok"]
    parquet = load_dataset("parquet", data_files=str(pub["cot_dir"] + "/data/*.parquet"))["train"]
    assert len(parquet) == len(cot)
    for row in cot:
        assert row["process"].startswith("<think>") and row["solution"].startswith("<answer>")
    for stage, d in m1["stages"].items():
        if stage != "publish":
            assert d["in"] == d["ok"] + d["rejected"] + d["failed"], stage

    # ---- provenance: what answered, not what the recipe asked for ---------------------------------
    for stage in ("caption", "draft", "revise"):
        entry = m1["stages"][stage]
        assert list(entry["served_models"]) == [SIM_MODEL_NAME]
        assert sum(entry["served_models"].values()) >= entry["ok"]
        assert entry["simulated"] is True and entry["model"] != SIM_MODEL_NAME
    assert set(cot["model_revise"]) == {SIM_MODEL_NAME}
    card = Path(pub["cards"]["cot"]).read_text()
    assert "simulated endpoint" in card.split("# ", 1)[1].split("\n\n")[1]
    assert json.loads((Path(pub["cot_dir"]).parent / "publish.json").read_text())["provenance"]["simulated"]

    # ---- one filter threshold changed: 0 LLM requests, the published set follows ----------------
    lengths = sorted(count_tokens(think_text(p), "regex") for p in cot["process"])
    new_min = lengths[len(lengths) // 2]
    reset_sim_stats(url)
    recipe2 = sim_recipe(synth_dir, url, runs, run="regen", filters={"length": {"min_tokens": new_min}})
    m2 = run_curate(recipe=recipe2)
    assert sim_stats(url)["requests"] == 0
    for stage in ("caption", "draft", "revise"):
        assert (
            m2["stages"][stage]["llm_requests"] == 0
            and m2["stages"][stage]["reused"] == m1["stages"][stage]["in"]
        )
    assert m2["stages"]["filter"]["computed"] == m2["stages"]["filter"]["in"]
    assert 0 < m2["publish"]["cot_rows"] < m1["publish"]["cot_rows"]
    assert m2["publish"]["version"] != m1["publish"]["version"]
    flt2 = pd.read_parquet(run / "filter")
    assert flt2["reason"].str.startswith("length").any()

    # ---- the revise prompt changed: revise → filter → publish rerun, caption and draft reused -----
    prompt_dir = tmp_path / "revise_v2"
    shutil.copytree(repo_root / "prompts" / "revise", prompt_dir)
    (prompt_dir / "system.md").write_text((prompt_dir / "system.md").read_text() + "\nBe concise.\n")
    reset_sim_stats(url)
    recipe3 = sim_recipe(synth_dir, url, runs, run="regen", revise={"prompt_dir": str(prompt_dir)})
    m3 = run_curate(recipe=recipe3)
    st = sim_stats(url)
    assert st["stages"] == {"revise": m1["stages"]["revise"]["in"]}, st["stages"]
    assert m3["stages"]["caption"]["reused"] == m1["stages"]["caption"]["in"]
    assert m3["stages"]["draft"]["reused"] == m1["stages"]["draft"]["in"]
    assert m3["stages"]["revise"]["computed"] == m1["stages"]["revise"]["in"]
    assert m3["stages"]["filter"]["computed"] == m3["stages"]["filter"]["in"]

    # ---- --from forces a rerun from a stage with nothing else changed ----------------------------
    reset_sim_stats(url)
    m4 = run_curate(recipe=recipe3, from_stage="filter")
    assert sim_stats(url)["requests"] == 0
    assert m4["stages"]["filter"]["computed"] == m4["stages"]["filter"]["in"]
    assert m4["stages"]["revise"]["reused"] == m4["stages"]["revise"]["in"]
    # Same rows as m3 published: that version is reused, no new folder.
    assert m4["publish"]["reused"] is True and m4["publish"]["version"] == m3["publish"]["version"]
    assert m3["publish"]["reused"] is False
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"
