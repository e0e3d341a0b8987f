"""Draft stage: a text-only request in the VideoRFT layout; parsing reasoning and answer."""

from __future__ import annotations

import asyncio
import json

import pytest
from stage_fakes import (
    FakeGateway,
    caption_row_for,
    image_caption_json,
    make_sample,
    ok_result,
    video_caption_json,
)

from curation.llm.gateway import ChatResult
from curation.llm.messages import has_media
from curation.stages.draft import DraftConfig, draft_messages, draft_row, parse_draft
from curation.stages.llm_common import ROW_COLUMNS


def run(coro):
    return asyncio.run(coro)


def test_draft_request_is_text_only_in_the_videorft_layout(prompts):
    sample = make_sample(0)
    messages = draft_messages(sample, video_caption_json(3), DraftConfig(), prompts["draft"])
    assert not has_media(messages)
    assert all(isinstance(m["content"], str) for m in messages)
    system, user = messages[0]["content"], messages[1]["content"]
    assert system.startswith("[videorft-stage: draft]")
    assert user.startswith("Video content: A red ball rolls")
    assert "Frame-level metadata:\n[" in user
    assert (
        json.loads(user.split("Frame-level metadata:\n", 1)[1].split("\n\nQuestion:", 1)[0])[0]["timestamp"]
        == "00:00:00"
    )
    assert "Question: What color is the ball?\nOptions:\nA. red\nB. blue\nC. green\nD. yellow" in user
    order = [
        user.index(s)
        for s in (
            "Video content:",
            "Frame-level metadata:",
            "Question:",
            "pondering deeply",
            "single option letter",
        )
    ]
    assert order == sorted(order)
    assert user.rstrip().endswith("<answer> </answer> tags.")


def test_draft_answer_format_follows_the_problem_type(prompts):
    sample = make_sample(1, problem_type="numerical")
    user = draft_messages(sample, video_caption_json(3), DraftConfig(), prompts["draft"])[1]["content"]
    assert "Options:" not in user
    assert user.rstrip().endswith(
        "Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags."
    )


def test_draft_image_variant(prompts):
    sample = make_sample(0, data_type="image")
    messages = draft_messages(sample, image_caption_json(), DraftConfig(), prompts["draft"])
    assert "Simulate visual perception" in messages[0]["content"]
    assert messages[1]["content"].startswith("Image content: A bar chart with three bars.")
    assert "Element-level details:" in messages[1]["content"]


@pytest.mark.parametrize(
    ("content", "reasoning", "expected", "error"),
    [
        # R1 through a reasoning parser: thinking in its own field, answer in content.
        ("<answer>A</answer>", "Let me think. The ball is red.", ("Let me think. The ball is red.", "A"), ""),
        # No tags around the reasoning: the text before <answer> is the reasoning.
        ("Hmm, the ball looks red.\n<answer> A </answer>", None, ("Hmm, the ball looks red.", "A"), ""),
        ("The ball is red. So it is A.", "thinking", ("thinking", ""), "draft has no <answer>"),
        ("<answer></answer>", "thinking", ("thinking", ""), "draft has no <answer>"),
        ("<answer>A</answer>", None, ("", "A"), "draft has no reasoning"),
        (None, None, ("", ""), "draft has no <answer>"),
    ],
)
def test_parse_draft(content, reasoning, expected, error):
    fields, err = parse_draft(content, reasoning)
    assert (fields["draft_reasoning"], fields["draft_answer"]) == expected
    assert err == error


def test_draft_row_with_inline_think(prompts):
    sample = make_sample(0)
    answer = "<think>Let me think... the ball is red at the beginning.</think>\nSo the answer is <answer>A</answer>"
    gw = FakeGateway([answer])
    row = run(draft_row(gw, sample, caption_row_for(video_caption_json(3)), DraftConfig(), prompts["draft"]))
    assert row["status"] == "ok", row["reason"]
    assert set(ROW_COLUMNS) <= set(row)
    assert row["draft_reasoning"] == "Let me think... the ball is red at the beginning."
    assert row["draft_answer"] == "A"
    assert row["draft"] == "So the answer is <answer>A</answer>"
    assert row["raw"] == answer
    req = gw.requests[0]
    assert req.role == "reasoner" and req.tag == sample.id
    assert req.params == {"temperature": 0.6, "top_p": 0.95, "max_tokens": 8192}
    assert not has_media(req.messages)


def test_draft_row_with_reasoning_field(prompts):
    sample = make_sample(0)
    gw = FakeGateway([ok_result("<answer>A</answer>", reasoning="Wait, the ball is red.")])
    row = run(draft_row(gw, sample, caption_row_for(video_caption_json(3)), DraftConfig(), prompts["draft"]))
    assert (row["status"], row["draft_reasoning"], row["draft_answer"]) == (
        "ok",
        "Wait, the ball is red.",
        "A",
    )
    assert row["raw"] == "<think>Wait, the ball is red.</think><answer>A</answer>"
    assert row["reasoning_tokens"] == 5


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("I think it is red.", "draft has no <answer>"),
        (ok_result("<think>long", finish_reason="length"), "truncated output (finish_reason=length)"),
        (
            ChatResult(ok=False, error="timeout after 120s (gave up after 6 attempts)"),
            "llm error: timeout after 120s (gave up after 6 attempts)",
        ),
    ],
)
def test_draft_row_failures(prompts, answer, reason):
    sample = make_sample(0)
    row = run(
        draft_row(
            FakeGateway([answer]),
            sample,
            caption_row_for(video_caption_json(3)),
            DraftConfig(),
            prompts["draft"],
        )
    )
    assert (row["status"], row["reason"]) == ("failed", reason)
    assert {"draft", "draft_reasoning", "draft_answer"} <= set(row)


def test_draft_row_skips_bad_captions(prompts):
    sample = make_sample(0)
    gw = FakeGateway([])
    row = run(draft_row(gw, sample, {"status": "failed", "reason": "x"}, DraftConfig(), prompts["draft"]))
    assert row["reason"] == "caption not ok (failed: x)" and gw.requests == []
    row = run(draft_row(gw, sample, caption_row_for('{"video_caption": 1}'), DraftConfig(), prompts["draft"]))
    assert row["reason"].startswith("caption JSON unreadable:") and gw.requests == []
