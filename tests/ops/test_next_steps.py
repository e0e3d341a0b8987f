"""`videorft curate` ends with where the dataset went and the commands that come next."""

from __future__ import annotations

import flows.curate
from flows import cli
from flows.next_steps import closing_lines

PUB = {
    "version": "v20261203-010203-abcd1234",
    "cot_dir": "/data/pub/videorft/v20261203-010203-abcd1234/cot",
    "rl_dir": "/data/pub/videorft/v20261203-010203-abcd1234/rl",
    "cot_rows": 47,
    "rl_rows": 60,
    "exports": {"cot-train": "/data/pub/videorft/v20261203-010203-abcd1234/cot/videor1/cot-train.jsonl"},
    "cards": {"cot": "/data/pub/videorft/v20261203-010203-abcd1234/cot/README.md"},
}
MANIFEST = {
    "run_name": "nightly",
    "run_dir": "/data/runs/nightly",
    "status": "completed",
    "stages": {},
    "report": "/data/runs/nightly/report.html",
    "recipe": {"source": {"path": "/data/ann/annotations.jsonl", "media_root": None}},
}


def test_new_version_paths_and_next_commands():
    lines = closing_lines({**MANIFEST, "publish": {**PUB, "reused": False}})
    assert lines[0] == f"published: new version {PUB['version']}"
    assert f"  CoT set (SFT), 47 rows: {PUB['cot_dir']}" in lines
    assert f"  RL set (GRPO), 60 rows:  {PUB['rl_dir']}" in lines
    assert "report: /data/runs/nightly/report.html" in lines
    nxt = lines[lines.index("next:") + 1 :]
    assert nxt[0].startswith("  videorft inspect /data/runs/nightly --status rejected")
    assert nxt[1].startswith("  videorft report /data/runs/nightly --serve")
    assert nxt[2] == (
        f"  videorft train sft recipes/qwen2_5_vl_7b/sft.yaml --dataset_name {PUB['cot_dir']} "
        "--media_root /data/ann --output_dir runs/nightly-sft"
    )
    assert nxt[3].startswith(
        f"  videorft train grpo recipes/qwen2_5_vl_7b/grpo.yaml --dataset_name {PUB['rl_dir']}"
    )
    assert nxt[3].endswith("--model_name_or_path runs/nightly-sft")


def test_reused_version_says_so_and_unpublished_run_only_offers_inspect_and_report():
    lines = closing_lines({**MANIFEST, "publish": {**PUB, "reused": True}})
    assert (
        lines[0]
        == f"published: content unchanged, reusing version {PUB['version']} (no new version, latest unchanged)"
    )
    lines = closing_lines(MANIFEST)
    assert not any(line.startswith("published") for line in lines)
    assert not any("videorft train" in line for line in lines) and any(
        "videorft inspect" in line for line in lines
    )


def test_the_cli_prints_them_last(monkeypatch, capsys, tmp_path):
    manifest = {**MANIFEST, "publish": {**PUB, "reused": True}}
    monkeypatch.setattr(flows.curate, "run_curate", lambda *a, **k: manifest)
    assert cli.main(["curate", "recipe.yaml"]) == 0
    out = capsys.readouterr().out.rstrip().splitlines()
    assert out[-1].startswith("  videorft train grpo ") and "reusing version" in "\n".join(out)
