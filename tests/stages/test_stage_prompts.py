"""Prompt sets: loading, hashing, rendering, and the VideoRFT guideline text the stages rely on."""

from __future__ import annotations

import shutil
from pathlib import Path

import jinja2
import pytest

from curation.prompts import (
    PROMPTS_ROOT,
    answer_format,
    frame_timestamps,
    load_prompt,
    problem_type_slug,
    prompt_hash,
    stage_marker,
)
from curation.records import PROBLEM_TYPES


def test_load_prompt_reads_every_file(prompts):
    draft = prompts["draft"]
    assert draft.name == "draft"
    assert draft.system.startswith(stage_marker("draft"))
    assert "answer_format/multiple-choice.txt" in draft.files
    assert len(draft.hash) == 12 and int(draft.hash, 16) >= 0
    assert draft.hash == prompt_hash(PROMPTS_ROOT / "draft")


@pytest.mark.parametrize("stage", ["caption", "draft", "revise"])
def test_every_system_prompt_starts_with_its_stage_marker(prompts, stage):
    prompt = prompts[stage]
    for name, text in prompt.files.items():
        if name.startswith("system"):
            assert text.splitlines()[0] == f"[videorft-stage: {stage}]", name


def test_hash_changes_when_any_file_changes(tmp_path: Path):
    folder = tmp_path / "draft"
    shutil.copytree(PROMPTS_ROOT / "draft", folder)
    before = load_prompt(folder).hash
    assert load_prompt(folder).hash == before  # stable

    fmt = folder / "answer_format" / "ocr.txt"
    fmt.write_text(fmt.read_text() + " Be exact.")
    after_edit = load_prompt(folder).hash
    assert after_edit != before

    (folder / "answer_format" / "ocr.txt").rename(folder / "answer_format" / "ocr2.txt")
    assert load_prompt(folder).hash != after_edit  # renames count too

    (folder / ".user.jinja.swp").write_text("editor junk")
    assert load_prompt(folder).hash == prompt_hash(folder)  # dot-files are ignored
    (folder / ".user.jinja.swp").unlink()


def test_user_template_is_strict(prompts):
    with pytest.raises(jinja2.UndefinedError):
        prompts["draft"].render_user(video_caption="x")  # the other variables are missing


def test_missing_required_file_is_an_error(tmp_path: Path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "system.md").write_text("[videorft-stage: draft]\n")
    with pytest.raises(FileNotFoundError, match="user.jinja"):
        load_prompt(tmp_path / "p")


def test_template_syntax_error_shows_at_load(tmp_path: Path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "system.md").write_text("s")
    (tmp_path / "p" / "user.jinja").write_text("{% if x %}unclosed")
    with pytest.raises(ValueError, match="user.jinja"):
        load_prompt(tmp_path / "p")


@pytest.mark.parametrize("problem_type", PROBLEM_TYPES)
def test_every_problem_type_has_an_answer_format_ending_in_answer_tags(prompts, problem_type):
    text = answer_format(prompts["draft"], problem_type)
    assert "<answer> </answer>" in text
    assert problem_type_slug(problem_type) in {
        "multiple-choice",
        "numerical",
        "ocr",
        "free-form",
        "regression",
    }


def test_draft_guidelines_forbid_leaking_the_text_source(prompts):
    system = prompts["draft"].system
    # The five cognitive steps of VideoRFT's P_cog.
    for step in (
        "Simulate watching the video",
        "Understand the task",
        "Focus on the relevant moments",
        "Reason visually",
        "Answer with reflection",
    ):
        assert step in system
    assert "Never reveal that your knowledge of the video comes from text" in system
    for word in ("caption", "description", "metadata", "frame", "key elements"):
        assert word in system.split("Never say", 1)[1].split("\n", 1)[0]
    for phrase in ("at the beginning", "around the middle", "toward the end"):
        assert phrase in system
    user = prompts["draft"].user_template
    assert user is not None
    assert "as if you were a human pondering deeply" in prompts["draft"].files["user.jinja"]
    assert "self-reflection" in prompts["draft"].files["user.jinja"]


def test_revise_prompt_keeps_conclusion_and_blurs_time(prompts):
    system = prompts["revise"].system
    assert "Fix only the steps that directly conflict with the video" in system
    assert "The video shows..." in system and "I can see..." in system
    assert "broad temporal phrases" in system
    assert "same final conclusion" in system
    assert "<think>[revised reasoning]</think>" in system


def test_caption_prompt_covers_the_literal_representation(prompts):
    system = prompts["caption"].system
    for field in (
        "video_caption",
        "timestamp",
        "key_elements",
        "objects",
        "actions",
        "scene",
        "notable_features",
        "spatial_relations",
        "human_attributes",
        "potential_interactions",
    ):
        assert f'"{field}"' in system
    assert "[Uncertain]" in system
    assert "20-30 words" in system
    assert "exactly as many entries as there are sampled frames" in system


def test_frame_timestamps_are_distinct_and_clock_like():
    assert frame_timestamps([0.5, 1.5, 2.5]) == ["00:00:00", "00:00:01", "00:00:02"]
    assert frame_timestamps([3725.0]) == ["01:02:05"]
    # Two frames per second: whole seconds would collide, so tenths are shown.
    assert frame_timestamps([0.0, 0.5, 1.0]) == ["00:00:00.0", "00:00:00.5", "00:00:01.0"]
