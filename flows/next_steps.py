"""What `videorft curate` prints last: where the dataset went, and the commands that come next.

Pure functions of the run manifest, so the CLI, the demo and tests print the same thing.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

# The production recipes (recipes/README.md); the tiny ones are for CPU tests.
SFT_RECIPE = "recipes/qwen2_5_vl_7b/sft.yaml"
GRPO_RECIPE = "recipes/qwen2_5_vl_7b/grpo.yaml"


def media_root(manifest: dict[str, Any]) -> str | None:
    """The run's media root as the recipe resolved it (source.media_root, else the source's folder)."""
    source = (manifest.get("recipe") or {}).get("source") or {}
    if source.get("media_root"):
        return str(source["media_root"])
    if source.get("path"):
        return str(Path(source["path"]).expanduser().absolute().parent)
    return None


def published_lines(manifest: dict[str, Any]) -> list[str]:
    pub = manifest.get("publish") or {}
    if not pub:
        return []
    version = pub.get("version")
    if pub.get("reused"):
        head = f"published: content unchanged, reusing version {version} (no new version, latest unchanged)"
    else:
        head = f"published: new version {version}"
    lines = [
        head,
        f"  CoT set (SFT), {pub.get('cot_rows')} rows: {pub.get('cot_dir')}",
        f"  RL set (GRPO), {pub.get('rl_rows')} rows:  {pub.get('rl_dir')}",
    ]
    for name, path in (pub.get("exports") or {}).items():
        # Export names are `<set>-<split>` (Video-R1's JSON array) or `videorft-<set>-<split>`
        # (VideoRFT's JSONL, options inside `problem`): say which trainer reads which file.
        trainer = "VideoRFT JSONL" if name.startswith("videorft-") else "Video-R1 JSON"
        lines.append(f"  {trainer} ({name.removeprefix('videorft-')}): {path}")
    for name, path in (pub.get("cards") or {}).items():
        lines.append(f"  dataset card ({name}): {path}")
    return lines


def next_commands(manifest: dict[str, Any]) -> list[str]:
    """inspect, report, then train on the published sets (SFT, then GRPO from the SFT checkpoint)."""
    run_dir = manifest.get("run_dir")
    if not run_dir:
        return []
    q = shlex.quote
    run = q(str(run_dir))
    cmds = [
        f"videorft inspect {run} --status rejected   # rows and why they were dropped",
        f"videorft report {run} --serve   # the HTML report, over http",
    ]
    pub = manifest.get("publish") or {}
    if pub.get("cot_dir") and pub.get("rl_dir"):
        media = media_root(manifest)
        media_arg = f" --media_root {q(media)}" if media else ""
        sft_out = f"runs/{manifest.get('run_name') or 'run'}-sft"
        cmds += [
            f"videorft train sft {SFT_RECIPE} --dataset_name {q(pub['cot_dir'])}{media_arg}"
            f" --output_dir {q(sft_out)}",
            f"videorft train grpo {GRPO_RECIPE} --dataset_name {q(pub['rl_dir'])}{media_arg}"
            f" --model_name_or_path {q(sft_out)}",
        ]
    return cmds


def closing_lines(manifest: dict[str, Any]) -> list[str]:
    lines = published_lines(manifest)
    if manifest.get("report"):
        lines.append(f"report: {manifest['report']}")
    cmds = next_commands(manifest)
    if cmds:
        lines.append("next:")
        lines += [f"  {c}" for c in cmds]
    return lines
