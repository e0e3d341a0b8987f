"""Provenance in what publish writes, and publishing that does not repeat itself.

- the `model_*` columns, the card and publish.json name the model that *answered* (each response's
  `model` field, kept as the stage rows' `served_model`), next to the one the recipe asked for;
- a set written by the simulated endpoint says "simulated endpoint" in its card's first paragraph
  and in the card's YAML metadata;
- publishing the same rows again reuses the version that holds them (same folder, `latest` untouched)
  and says so; changed rows get a new version.
"""

from __future__ import annotations

import json

import pytest
import yaml
from publish_fixture import build_run

from curation.provenance import stage_provenance
from curation.publish import PublishConfig, publish_run
from curation.store import RunStore

pytestmark = pytest.mark.integration

SIM = "videorft-simulated-endpoint (not a model)"
REAL = "Qwen2.5-VL-72B-Instruct-AWQ"


def _answered_by(store: RunStore, served: dict[str, str], simulated: bool) -> None:
    """Give every LLM row the served name and simulated flag an answering server would have left."""
    for stage, name in served.items():
        for shard in store.shards(stage):
            rows = store.read_shard(stage, shard)
            store.write_shard(
                stage, shard, [{**r, "served_model": name, "simulated": simulated} for r in rows]
            )


def _front_matter(card: str) -> dict:
    _, meta, _ = card.split("---\n", 2)
    return yaml.safe_load(meta)


def _first_paragraph(card: str) -> str:
    body = card.split("---\n", 2)[2]
    paragraphs = [p for p in body.split("\n\n") if p.strip() and not p.lstrip().startswith("#")]
    return paragraphs[0]


def test_simulated_run_says_so_in_card_metadata_and_publish_json(tmp_path):
    store, _ = build_run(tmp_path / "run")
    _answered_by(store, {"caption": SIM, "draft": SIM, "revise": SIM}, simulated=True)
    lineage = {"models": {"caption": {"requested": "sim/captioner", "served": [SIM]}}, "simulated": True}
    result = publish_run(store, tmp_path / "out", PublishConfig(), run_name="r", lineage=lineage)

    for kind in ("cot", "rl"):
        card = result.cards[kind].read_text()
        assert "simulated endpoint" in _first_paragraph(card), _first_paragraph(card)
        meta = _front_matter(card)
        assert meta["videorft"]["simulated_endpoint"] is True
        assert "simulated-endpoint" in meta["tags"]
        assert meta["videorft"]["models"]["revise"] == {"requested": "sim/reviser", "served": [SIM]}
        assert f"| revise | `{SIM}` | `sim/reviser` | `rev0001` |" in card
    publish = json.loads((result.cot_dir.parent / "publish.json").read_text())
    assert publish["provenance"]["simulated"] is True
    assert publish["provenance"]["stages"][0] == {
        "stage": "caption",
        "requested": "sim/captioner",
        "served": [SIM],
    }

    from datasets import load_from_disk

    row = load_from_disk(str(result.cot_dir))["train"][0]
    assert (row["model_caption"], row["model_draft"], row["model_revise"]) == (SIM, SIM, SIM)


def test_real_server_names_what_answered_and_no_simulated_notice(tmp_path):
    store, _ = build_run(tmp_path / "run")
    _answered_by(store, {"caption": REAL, "draft": "deepseek-r1-distill", "revise": REAL}, simulated=False)
    result = publish_run(store, tmp_path / "out", PublishConfig(), run_name="r", lineage={})
    card = result.cards["cot"].read_text()
    assert "simulated" not in card.split("---\n", 2)[2].lower()  # the body: no notice
    meta = _front_matter(card)
    assert meta["videorft"]["simulated_endpoint"] is False
    assert meta["videorft"]["models"]["caption"] == {"requested": "sim/captioner", "served": [REAL]}
    assert f"caption `{REAL}`; draft `deepseek-r1-distill`; revise `{REAL}`" in card


def test_stage_provenance_counts_served_names():
    rows = [
        {"served_model": "m1", "simulated": False},
        {"served_model": "m1", "simulated": False},
        {"served_model": "", "simulated": False},  # a failed row: nothing answered
        {"served_model": SIM, "simulated": None},
    ]
    assert stage_provenance(rows) == {"served_models": {"m1": 2, SIM: 1}, "simulated": True}
    assert stage_provenance([{"served_model": "m1"}])["simulated"] is False


def test_unchanged_rerun_reuses_the_version_and_changed_rows_get_a_new_one(tmp_path):
    store, s = build_run(tmp_path / "run")
    out = tmp_path / "out"
    first = publish_run(store, out, PublishConfig(), run_name="r", lineage={})
    root = out / "videorft"
    latest = root / "latest"
    latest_stat = latest.stat()
    card_before = first.cards["cot"].read_text()
    assert not first.reused

    again = publish_run(store, out, PublishConfig(), run_name="r", lineage={})
    assert again.reused and again.version == first.version and again.cot_dir == first.cot_dir
    assert sorted(p.name for p in root.iterdir()) == sorted([first.version, "latest"])
    assert latest.stat().st_mtime_ns == latest_stat.st_mtime_ns  # not even rewritten
    assert again.cards["cot"].read_text() == card_before
    assert again.to_dict()["reused"] is True

    # One kept CoT is rejected now: different rows, a new version, and `latest` moves to it.
    filt = store.read_shard("filter", 0)
    store.write_shard(
        "filter",
        0,
        [
            {**r, "status": "rejected", "reason": "length: too short"} if r["id"] == s["mc_ok"].id else r
            for r in filt
        ],
    )
    changed = publish_run(store, out, PublishConfig(), run_name="r", lineage={})
    assert not changed.reused and changed.version != first.version
    assert latest.read_text().strip() == changed.version
    assert changed.cot_rows == first.cot_rows - 1

    # Back to the first rows: that version is reused and `latest` names it again.
    store.write_shard("filter", 0, filt)
    back = publish_run(store, out, PublishConfig(), run_name="r", lineage={})
    assert back.reused and back.version == first.version
    assert latest.read_text().strip() == first.version
    assert len([p for p in root.iterdir() if p.is_dir()]) == 2


def test_explicit_version_label_is_respected(tmp_path):
    store, _ = build_run(tmp_path / "run")
    v1 = publish_run(store, tmp_path / "out", PublishConfig(version="v1"), run_name="r", lineage={})
    v2 = publish_run(store, tmp_path / "out", PublishConfig(version="v2"), run_name="r", lineage={})
    assert not v2.reused and v2.version.startswith("v2-") and v1.content_hash == v2.content_hash
    again = publish_run(store, tmp_path / "out", PublishConfig(version="v2"), run_name="r", lineage={})
    assert again.reused and again.version == v2.version
