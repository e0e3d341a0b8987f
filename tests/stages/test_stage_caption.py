"""Caption stage: render (format_input), parse (format_output), the repair round, row accounting."""

from __future__ import annotations

import asyncio
import json

import pytest
from stage_fakes import (
    FakeGateway,
    image_caption_json,
    make_extract,
    make_sample,
    ok_result,
    video_caption_json,
)

from curation.llm.gateway import ChatResult
from curation.llm.messages import has_media
from curation.schemas import VideoDescription
from curation.stages.caption import (
    CaptionConfig,
    caption_messages,
    caption_params,
    caption_row,
    extract_json_text,
    parse_caption,
)
from curation.stages.llm_common import ROW_COLUMNS, build_media

GOOD = video_caption_json(3)


def run(coro):
    return asyncio.run(coro)


# ---- format_input -------------------------------------------------------------------------------


def test_caption_request_has_labelled_frames_and_schema(run_dir, prompts):
    sample = make_sample(0)
    extract = make_extract(run_dir, sample, n_frames=3)
    cfg = CaptionConfig()
    media = build_media(sample, extract, run_dir, cfg)
    messages = caption_messages(sample, media, cfg, prompts["caption"])
    assert messages[0]["role"] == "system" and messages[0]["content"].startswith("[videorft-stage: caption]")
    parts = messages[1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"] * 3 + ["text"]
    assert parts[0]["text"] == "Frame at 0.50s:"
    instruction = parts[-1]["text"]
    assert "exactly 3 entries" in instruction
    assert "00:00:00, 00:00:01, 00:00:02" in instruction
    assert "JSON schema" not in instruction  # sent as response_format instead

    params = caption_params(cfg, "video", 3)
    rf = params["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
    assert rf["json_schema"]["name"] == "video_description"
    assert "minItems" not in rf["json_schema"]["schema"]["properties"]["frames"]
    pinned = caption_params(CaptionConfig(pin_frame_count=True), "video", 3)
    assert pinned["response_format"]["json_schema"]["schema"]["properties"]["frames"]["maxItems"] == 3


def test_without_response_format_the_schema_goes_into_the_prompt(run_dir, prompts):
    sample = make_sample(0)
    cfg = CaptionConfig(response_format=False)
    media = build_media(sample, make_extract(run_dir, sample), run_dir, cfg)
    instruction = caption_messages(sample, media, cfg, prompts["caption"])[1]["content"][-1]["text"]
    assert "JSON schema" in instruction and '"key_elements"' in instruction
    assert "response_format" not in caption_params(cfg, "video", 3)


def test_image_uses_the_image_variant(run_dir, prompts):
    sample = make_sample(0, data_type="image")
    cfg = CaptionConfig()
    media = build_media(sample, make_extract(run_dir, sample), run_dir, cfg)
    messages = caption_messages(sample, media, cfg, prompts["caption"])
    assert "vision-language expert" in messages[0]["content"]
    assert [p["type"] for p in messages[1]["content"]] == ["image_url", "text"]
    assert caption_params(cfg, "image", None)["response_format"]["json_schema"]["name"] == "image_description"


def test_max_frames_subsamples_uniformly(run_dir):
    sample = make_sample(0)
    extract = make_extract(run_dir, sample, n_frames=5)
    media = build_media(sample, extract, run_dir, CaptionConfig(max_frames=3))
    assert media.timestamps == [0.5, 2.5, 4.5]


def test_video_url_mode_sends_one_video_part(run_dir, prompts):
    sample = make_sample(0)
    cfg = CaptionConfig(frames_mode="video_url", video_url_prefix="file:///data/media")
    media = build_media(sample, make_extract(run_dir, sample), run_dir, cfg)
    parts = caption_messages(sample, media, cfg, prompts["caption"])[1]["content"]
    assert parts[0] == {"type": "video_url", "video_url": {"url": "file:///data/media/videos/clip0.mp4"}}
    assert [p["type"] for p in parts] == ["video_url", "text"]
    with pytest.raises(ValueError, match="video_url_prefix"):
        CaptionConfig(frames_mode="video_url")


# ---- format_output ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected_error"),
    [
        (GOOD, ""),
        (f"```json\n{GOOD}\n```", ""),  # fenced
        (f"Sure! Here is the description:\n{GOOD}\nHope this helps.", ""),  # chatter around it
        (None, "empty answer"),
        ("   ", "empty answer"),
        ("I cannot describe this video.", "no JSON object in the answer"),
        ('{"video_caption": "x", "frames": [', "not valid JSON"),
        (json.dumps({"video_caption": "x"}), "frames: Field required"),
        (video_caption_json(2), "frame-count mismatch: expected 3 frame entries, got 2"),
    ],
)
def test_parse_caption(text, expected_error):
    description, error = parse_caption(text, "video", 3)
    if expected_error:
        assert description is None and error.startswith(expected_error)
    else:
        assert isinstance(description, VideoDescription) and error == ""
        assert len(description.frames) == 3


def test_parse_caption_rejects_extra_fields_and_bad_timestamps():
    obj = json.loads(GOOD)
    obj["frames"][0]["key_elements"]["mood"] = "happy"
    _, error = parse_caption(json.dumps(obj), "video", 3)
    assert "frames.0.key_elements.mood: Extra inputs are not permitted" in error
    obj = json.loads(GOOD)
    obj["frames"][1]["timestamp"] = "1.5s"
    _, error = parse_caption(json.dumps(obj), "video", 3)
    assert error.startswith("frames.1.timestamp")
    assert "1.5s" not in error  # no model text in reasons


def test_extract_json_text_keeps_only_the_first_object():
    assert extract_json_text('noise {"a": "}"} {"b": 1}') == '{"a": "}"}'
    assert extract_json_text("") == ""


def test_parse_image_caption():
    description, error = parse_caption(image_caption_json(), "image", None)
    assert error == "" and description.caption == "A bar chart with three bars."


# ---- the row ------------------------------------------------------------------------------------


def test_caption_row_ok(run_dir, prompts):
    sample = make_sample(0)
    gw = FakeGateway([ok_result(GOOD, cached=True)])
    row = run(
        caption_row(gw, sample, make_extract(run_dir, sample), run_dir, CaptionConfig(), prompts["caption"])
    )
    assert row["status"] == "ok" and row["reason"] == ""
    assert set(ROW_COLUMNS) <= set(row)
    assert json.loads(row["caption_json"]) == json.loads(GOOD)
    assert row["video_caption"].startswith("A red ball rolls")
    assert row["n_frames"] == 3
    assert row["model"] == "fake-model" and row["prompt_hash"] == prompts["caption"].hash
    # Served from the cache: nothing sent, nothing paid (tokens count only what was paid for).
    assert (row["requests"], row["cache_hits"], row["prompt_tokens"], row["completion_tokens"]) == (
        0,
        1,
        0,
        0,
    )
    assert row["raw"] == GOOD
    req = gw.requests[0]
    assert req.role == "captioner" and req.tag == sample.id
    assert req.params["response_format"]["type"] == "json_schema"
    assert has_media(req.messages)


def test_caption_repair_then_valid(run_dir, prompts):
    sample = make_sample(0)
    bad = "Here you go: {'video_caption': 'oops'}"
    gw = FakeGateway([bad, GOOD])
    row = run(
        caption_row(gw, sample, make_extract(run_dir, sample), run_dir, CaptionConfig(), prompts["caption"])
    )
    assert row["status"] == "ok"
    assert row["requests"] == 2
    assert json.loads(row["raw"]) == [bad, GOOD]  # both answers kept
    repair = gw.requests[1].messages
    assert repair[:2] == gw.requests[0].messages  # the original conversation, unchanged
    assert repair[2] == {"role": "assistant", "content": bad}
    assert repair[3]["role"] == "user"
    assert "not valid JSON" in repair[3]["content"] and "Return only valid JSON" in repair[3]["content"]
    assert "exactly 3 entries" in repair[3]["content"]
    assert gw.requests[1].params == gw.requests[0].params


def test_caption_both_invalid_fails_with_the_validation_error(run_dir, prompts):
    sample = make_sample(0)
    gw = FakeGateway(['{"video_caption": "x"}', '{"video_caption": "y"}'])
    row = run(
        caption_row(gw, sample, make_extract(run_dir, sample), run_dir, CaptionConfig(), prompts["caption"])
    )
    assert row["status"] == "failed"
    assert row["reason"] == "invalid caption JSON: frames: Field required"
    assert row["requests"] == 2
    assert row["caption_json"] == "" and row["video_caption"] == ""
    assert json.loads(row["raw"]) == ['{"video_caption": "x"}', '{"video_caption": "y"}']


def test_caption_frame_count_mismatch_after_repair(run_dir, prompts):
    sample = make_sample(0)
    gw = FakeGateway([video_caption_json(2), video_caption_json(4)])
    row = run(
        caption_row(gw, sample, make_extract(run_dir, sample), run_dir, CaptionConfig(), prompts["caption"])
    )
    assert row["status"] == "failed"
    assert row["reason"] == "frame-count mismatch: expected 3 frame entries, got 4"


def test_caption_without_repair_fails_after_one_request(run_dir, prompts):
    sample = make_sample(0)
    gw = FakeGateway(["nope"])
    cfg = CaptionConfig(repair=False)
    row = run(caption_row(gw, sample, make_extract(run_dir, sample), run_dir, cfg, prompts["caption"]))
    assert (row["status"], row["reason"], row["requests"]) == (
        "failed",
        "invalid caption JSON: no JSON object in the answer",
        1,
    )


def test_caption_endpoint_error_and_truncation(run_dir, prompts):
    sample = make_sample(0)
    extract = make_extract(run_dir, sample)
    gw = FakeGateway([ChatResult(ok=False, error="http 500 (gave up after 6 attempts)", attempts=6)])
    row = run(caption_row(gw, sample, extract, run_dir, CaptionConfig(), prompts["caption"]))
    assert (row["status"], row["reason"]) == ("failed", "llm error: http 500 (gave up after 6 attempts)")
    assert row["raw"] == ""

    gw = FakeGateway([ok_result(GOOD[:50], finish_reason="length")])
    row = run(caption_row(gw, sample, extract, run_dir, CaptionConfig(), prompts["caption"]))
    assert (row["status"], row["reason"]) == ("failed", "truncated output (finish_reason=length)")
    assert row["requests"] == 1  # a truncated answer is not repaired: it would truncate again
    assert row["raw"] == GOOD[:50]


def test_caption_truncated_repair(run_dir, prompts):
    sample = make_sample(0)
    gw = FakeGateway(["not json", ok_result("{", finish_reason="length")])
    row = run(
        caption_row(gw, sample, make_extract(run_dir, sample), run_dir, CaptionConfig(), prompts["caption"])
    )
    assert (row["reason"], row["requests"]) == ("truncated output (finish_reason=length)", 2)


def test_caption_missing_frame_fails_without_a_request(run_dir, prompts):
    sample = make_sample(0)
    extract = make_extract(run_dir, sample)
    (run_dir / extract["frame_paths"][1]).unlink()
    gw = FakeGateway([])
    row = run(caption_row(gw, sample, extract, run_dir, CaptionConfig(), prompts["caption"]))
    assert row["status"] == "failed" and row["reason"].startswith("cannot read frames:")
    assert row["requests"] == 0 and gw.requests == []


def test_caption_failed_extract_is_not_sent(run_dir, prompts):
    sample = make_sample(0)
    gw = FakeGateway([])
    row = run(
        caption_row(
            gw,
            sample,
            {"status": "failed", "reason": "unreadable"},
            run_dir,
            CaptionConfig(),
            prompts["caption"],
        )
    )
    assert row["reason"] == "extract not ok (failed: unreadable)"


def test_image_caption_row(run_dir, prompts):
    sample = make_sample(0, data_type="image")
    gw = FakeGateway([image_caption_json()])
    row = run(
        caption_row(gw, sample, make_extract(run_dir, sample), run_dir, CaptionConfig(), prompts["caption"])
    )
    assert row["status"] == "ok" and row["video_caption"] == "A bar chart with three bars."


def test_key_material_tracks_what_changes_the_request(prompts):
    base = CaptionConfig().key_material(prompts["caption"])
    assert base["prompt_hash"] == prompts["caption"].hash
    assert base == CaptionConfig().key_material()  # the hash is computed from the folder when not given
    assert CaptionConfig(temperature=0.5).key_material(prompts["caption"]) != base
    assert CaptionConfig(response_format=False).key_material(prompts["caption"]) != base
    assert CaptionConfig(max_frames=8).key_material(prompts["caption"]) != base
    assert CaptionConfig(role="other").key_material(prompts["caption"]) == base  # the runner adds the model
    assert "prompt_dir" not in base
    json.dumps(base)  # JSON-serialisable, so it can be hashed
    with pytest.raises(ValueError):
        CaptionConfig(temprature=0.5)  # extra="forbid"
