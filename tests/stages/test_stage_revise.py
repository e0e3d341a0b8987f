"""Revise stage: frames + question + draft in; exactly `<think>…</think>` out; the conclusion kept."""

from __future__ import annotations

import asyncio

import pytest
from stage_fakes import FakeGateway, draft_row_for, make_extract, make_sample, ok_result

from curation.llm.gateway import ChatResult
from curation.stages.llm_common import ROW_COLUMNS, build_media
from curation.stages.revise import ReviseConfig, parse_revision, revise_messages, revise_row


def run(coro):
    return asyncio.run(coro)


def test_revise_request_has_frames_question_and_draft(run_dir, prompts):
    sample = make_sample(0)
    extract = make_extract(run_dir, sample, n_frames=3)
    cfg = ReviseConfig()
    messages = revise_messages(
        sample, build_media(sample, extract, run_dir, cfg), draft_row_for(), prompts["revise"]
    )
    assert messages[0]["content"].startswith("[videorft-stage: revise]")
    parts = messages[1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"] * 3 + ["text"]
    text = parts[-1]["text"]
    assert text.startswith("Question: What color is the ball?")
    assert "Draft reasoning:\nThe video shows a red ball rolling left." in text
    assert "Draft answer: A" in text


@pytest.mark.parametrize(
    ("text", "process", "answer", "error"),
    [
        ("<think>I can see a red ball.</think>", "<think>I can see a red ball.</think>", "A", ""),
        (
            "  <think>\nI can see a red ball.\n</think>\n<answer>B</answer>",
            "<think>I can see a red ball.</think>",
            "B",
            "",
        ),
        (
            "I can see a red ball.</think>",
            "<think>I can see a red ball.</think>",
            "A",
            "",
        ),  # opening tag prefilled
        ("The video shows a red ball.", "", "A", "revision has no <think> block"),
        ("<think>  </think>", "", "A", "revision has an empty <think> block"),
        (None, "", "A", "revision has no <think> block"),
    ],
)
def test_parse_revision(text, process, answer, error):
    fields, err = parse_revision(text, "A")
    assert (fields["process"], fields["answer"], err) == (process, answer, error)


def test_revise_row_ok(run_dir, prompts):
    sample = make_sample(0)
    gw = FakeGateway(["<think>The video shows a red ball rolling left at the beginning.</think>"])
    row = run(
        revise_row(
            gw,
            sample,
            make_extract(run_dir, sample),
            draft_row_for(),
            run_dir,
            ReviseConfig(),
            prompts["revise"],
        )
    )
    assert row["status"] == "ok", row["reason"]
    assert set(ROW_COLUMNS) <= set(row)
    assert row["process"] == "<think>The video shows a red ball rolling left at the beginning.</think>"
    assert row["answer"] == "A"
    assert (
        row["revision"]
        == row["raw"]
        == "<think>The video shows a red ball rolling left at the beginning.</think>"
    )
    req = gw.requests[0]
    assert req.role == "reviser" and req.tag == sample.id
    assert sum(p["type"] == "image_url" for p in req.messages[1]["content"]) == 3


def test_revise_row_reads_the_block_the_gateway_split_off(run_dir, prompts):
    # The gateway moves a leading <think> block into reasoning_content; the stage reads the message.
    sample = make_sample(0)
    result = ok_result("<think>I can see it.</think>")
    assert result.content == "" and result.reasoning_content == "I can see it."
    row = run(
        revise_row(
            FakeGateway([result]),
            sample,
            make_extract(run_dir, sample),
            draft_row_for(),
            run_dir,
            ReviseConfig(),
            prompts["revise"],
        )
    )
    assert row["process"] == "<think>I can see it.</think>"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("The video shows a red ball.", "revision has no <think> block"),
        (ok_result("<think>The video", finish_reason="length"), "truncated output (finish_reason=length)"),
        (ChatResult(ok=False, error="http 400: bad request"), "llm error: http 400: bad request"),
    ],
)
def test_revise_row_failures(run_dir, prompts, answer, reason):
    sample = make_sample(0)
    row = run(
        revise_row(
            FakeGateway([answer]),
            sample,
            make_extract(run_dir, sample),
            draft_row_for(),
            run_dir,
            ReviseConfig(),
            prompts["revise"],
        )
    )
    assert (row["status"], row["reason"]) == ("failed", reason)
    assert row["answer"] == "A" and row["process"] == ""


def test_revise_row_skips_failed_drafts(run_dir, prompts):
    sample = make_sample(0)
    gw = FakeGateway([])
    draft = {"status": "failed", "reason": "draft has no <answer>"}
    row = run(
        revise_row(
            gw, sample, make_extract(run_dir, sample), draft, run_dir, ReviseConfig(), prompts["revise"]
        )
    )
    assert row["reason"] == "draft not ok (failed: draft has no <answer>)" and gw.requests == []
