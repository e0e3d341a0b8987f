"""The simulated endpoint: planted faults are exact and pure, answers follow the ground truth."""

from __future__ import annotations

import json

import httpx
import pytest

from curation.records import sample_id
from sim_endpoint import answers
from sim_endpoint.config import (
    SIM_MODEL_NAME,
    FaultRates,
    SimConfig,
    latency_for,
    plants,
    transport_fault,
)
from sim_endpoint.scene import scene_from_meta
from sim_endpoint.server import load_samples, occupancy, running_sim_server

LEAKS = answers.LEAK_PHRASES


def marked(stage: str, user_parts: list[dict] | str) -> list[dict]:
    return [
        {"role": "system", "content": f"You write video reasoning.\n[videorft-stage: {stage}]\nBe careful."},
        {"role": "user", "content": user_parts},
    ]


def frames_request(times: list[float]) -> list[dict]:
    parts: list[dict] = [{"type": "text", "text": "Describe these frames."}]
    for t in times:
        parts.append({"type": "text", "text": f"Frame at {t:.2f}s:"})
        parts.append({"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}})
    return marked("caption", parts)


@pytest.fixture(scope="module")
def samples(synth_dir) -> dict[str, dict]:
    return load_samples([synth_dir / "annotations.jsonl"])


# ---- planted faults ------------------------------------------------------------------------------


def test_plants_are_pure_and_follow_the_configured_shares():
    cfg = SimConfig(wrong_answer_share=0.2, leak_share=0.3, leak_survives_share=0.5, seed=11)
    ids = [f"sample-{i}" for i in range(3000)]
    planted = [plants(i, cfg) for i in ids]
    assert planted == [plants(i, cfg) for i in ids]
    assert abs(sum(p.wrong_answer for p in planted) / 3000 - 0.2) < 0.03
    assert abs(sum(p.leak_in_draft for p in planted) / 3000 - 0.3) < 0.03
    assert all(p.leak_in_draft for p in planted if p.leak_survives_revision)
    survived = sum(p.leak_survives_revision for p in planted) / sum(p.leak_in_draft for p in planted)
    assert abs(survived - 0.5) < 0.06
    assert planted != [plants(i, cfg.model_copy(update={"seed": 12})) for i in ids]
    none = SimConfig(wrong_answer_share=0, leak_share=0)
    assert not any(plants(i, none).wrong_answer or plants(i, none).leak_in_draft for i in ids[:200])


def test_transport_faults_depend_on_request_and_arrival_only():
    cfg = SimConfig(faults=FaultRates.spread(0.5), seed=1)
    decided = {(f"req{i}", a): transport_fault(f"req{i}", a, cfg) for i in range(400) for a in (1, 2, 3)}
    assert all(transport_fault(r, a, cfg) == kind for (r, a), kind in reversed(decided.items()))
    kinds = list(decided.values())
    assert 0.4 < sum(k is not None for k in kinds) / len(kinds) < 0.6
    assert set(kinds) == {None, "server_error", "rate_limited", "hang", "malformed", "truncated"}
    # A request that failed on its first arrival usually succeeds on a later one.
    assert any(decided[(f"req{i}", 1)] and decided[(f"req{i}", 2)] is None for i in range(400))
    scripted = SimConfig(fault_script=["hang", "ok"], faults=FaultRates(server_error=1.0))
    assert [transport_fault("r", a, scripted) for a in (1, 2, 3)] == ["hang", None, "server_error"]


def test_latency_profiles_keep_their_mean_and_spread():
    """Uniform stays within ± jitter; log-normal keeps the mean and has the long tail of real answers."""
    uniform = SimConfig(latency_s=0.2, jitter_s=0.02)
    lognormal = SimConfig(latency_s=0.2, jitter_s=0.02, latency_sigma=0.5)  # jitter ignored
    u = sorted(latency_for(f"r{i}", 1, uniform) for i in range(4000))
    ln = sorted(latency_for(f"r{i}", 1, lognormal) for i in range(4000))
    assert 0.18 <= u[0] and u[-1] <= 0.22
    assert sum(ln) / len(ln) == pytest.approx(0.2, rel=0.03)
    assert ln[200] < 0.1 and ln[3800] > 0.35  # p5 ~0.39x, p95 ~2x of the mean
    assert (
        latency_for("r1", 1, lognormal) == latency_for("r1", 1, lognormal) != latency_for("r1", 2, lognormal)
    )
    assert latency_for("r1", 1, SimConfig(latency_s=0.0, latency_sigma=0.5)) == 0.0


def test_fault_rates_must_not_exceed_one():
    with pytest.raises(ValueError, match="sum to"):
        FaultRates(server_error=0.6, hang=0.6)


# ---- reading requests ----------------------------------------------------------------------------


def test_stage_is_read_from_the_marker_line():
    assert answers.detect_stage(marked("draft", "q")) == "draft"
    assert answers.detect_stage(frames_request([0.5])) == "caption"
    assert answers.detect_stage([{"role": "user", "content": "hello"}]) is None


def test_frame_times_come_from_the_text_before_each_image():
    assert answers.frame_times(frames_request([0.0, 1.5, 2.25]), 3.0) == [0.0, 1.5, 2.25]
    bare = marked("caption", [{"type": "image_url", "image_url": {"url": "x"}}] * 4)
    assert answers.frame_times(bare, 4.0) == [0.5, 1.5, 2.5, 3.5]  # evenly spread when unlabelled


# ---- answers from ground truth -------------------------------------------------------------------


def test_captions_follow_videorft_schema_and_the_scene(samples):
    for sid, sample in samples.items():
        scene = scene_from_meta(sample["meta"])
        times = [0.0, scene.duration / 2, scene.duration * 0.9]
        caption = json.loads(
            answers.caption_json(scene, answers.frame_times(frames_request(times), scene.duration))
        )
        assert 20 <= len(caption["video_caption"].split()) <= 30, caption["video_caption"]
        assert len(caption["frames"]) == 3
        assert caption["frames"][0]["timestamp"] == "00:00:00"
        first = caption["frames"][0]["key_elements"]
        assert set(first) == {"objects", "actions", "scene", "notable_features", "spatial_relations",
                              "human_attributes", "potential_interactions"}  # fmt: skip
        assert sample["meta"]["background"] in first["scene"]
        visible_at_start = {
            f"{o['colour']} {o['shape']}" for o in sample["meta"]["objects"] if o["appears_at"] == 0
        }
        assert visible_at_start <= set(first["objects"]), (sid, first["objects"])


def test_captions_validate_against_the_caption_stage_schemas(samples):
    schemas = pytest.importorskip("curation.schemas")
    for sample in samples.values():
        scene = scene_from_meta(sample["meta"])
        video = answers.caption_json(scene, [0.0, 1.0])
        assert len(schemas.VideoDescription.model_validate_json(video).frames) == 2
        as_image = {**sample, "data_type": "image"}
        payload = {"messages": marked("caption", [{"type": "image_url", "image_url": {"url": "x"}}])}
        assert answers.caption_kind(payload, as_image) == "image"
        schemas.ImageDescription.model_validate_json(answers.image_description_json(as_image, scene))
    schemas.ImageDescription.model_validate_json(answers.generic_image_description_json())
    schemas.VideoDescription.model_validate_json(answers.generic_caption_json([0.5]))


def test_caption_kind_of_unknown_samples_follows_the_requested_schema():
    one_image = marked("caption", [{"type": "image_url", "image_url": {"url": "x"}}])
    assert answers.caption_kind({"messages": one_image}, None) == "image"
    assert answers.caption_kind({"messages": frames_request([0.5])}, None) == "video"
    wants_video = {"type": "json_schema", "json_schema": {"name": "video_description", "schema": {}}}
    assert answers.caption_kind({"messages": one_image, "response_format": wants_video}, None) == "video"


def test_drafts_have_five_steps_and_the_planted_answer_and_leaks(samples):
    cfg = SimConfig(wrong_answer_share=0.5, leak_share=0.5, leak_survives_share=0.5)
    seen = set()
    for sid, sample in samples.items():
        planted = plants(sid, cfg)
        seen.add((planted.wrong_answer, planted.leak_in_draft))
        scene = scene_from_meta(sample["meta"])
        reasoning, final = answers.draft_parts(sample, scene, planted)
        assert len(reasoning.split("\n\n")) == 5
        answer = final.removeprefix("<answer>").removesuffix("</answer>")
        assert (answer == sample["solution"]) == (not planted.wrong_answer), (sid, answer, sample["solution"])
        assert any(p in reasoning.lower() for p in LEAKS) == planted.leak_in_draft

        revised = answers.revise_content(sample, scene, planted)
        assert revised.startswith("<think>") and revised.endswith("</think>") and "<answer>" not in revised
        assert any(p in revised.lower() for p in LEAKS) == planted.leak_survives_revision
        assert f"the answer is {answer}." in revised  # the conclusion is kept, right or wrong
    assert len(seen) == 4  # every combination was exercised


def test_wrong_answers_score_zero_with_the_shared_scorer(samples):
    scoring = pytest.importorskip("training.scoring")
    for sample in samples.values():
        wrong = answers.wrong_answer(sample)
        score = scoring.score_answer(wrong, sample["solution"], sample["problem_type"])
        assert score < 0.5, (sample["problem_type"], wrong, sample["solution"], score)
        assert scoring.score_answer(sample["solution"], sample["solution"], sample["problem_type"]) > 0.99


def test_generic_reviser_strips_leaks_from_the_draft_it_is_given():
    draft = "The video shows a cat. According to the caption, it is red. So the answer is A."
    expected = "<think>The video shows a cat. So the answer is A.</think>"
    assert answers.generic_revise_content(marked("revise", f"Draft:\n<think>{draft}</think>")) == expected
    sectioned = f"Question: q\n\nDraft reasoning:\n{draft}\n\nDraft answer: A\n\nRevise it."
    assert answers.generic_revise_content(marked("revise", sectioned)) == expected


# ---- over HTTP -----------------------------------------------------------------------------------


@pytest.mark.integration
def test_endpoint_names_itself_and_answers_known_and_unknown_samples(synth_dir, samples):
    cfg = SimConfig(annotations=[synth_dir / "annotations.jsonl"], reasoning_mode="field")
    sid, sample = next(iter(samples.items()))
    assert sid == sample_id(sample["data_source"], sample["media_path"], sample["problem"])
    with running_sim_server(cfg) as url, httpx.Client(trust_env=False, timeout=10) as client:
        models = client.get(f"{url}/models").json()
        assert models["data"][0]["id"] == SIM_MODEL_NAME

        def ask(stage: str, tag: str | None) -> httpx.Response:
            headers = {"X-Videorft-Sample-Id": tag} if tag else {}
            body = {"model": "anything", "messages": marked(stage, sample["problem"])}
            return client.post(f"{url}/chat/completions", json=body, headers=headers)

        known = ask("draft", sid)
        assert known.headers["x-videorft-simulated"] == "true"
        body = known.json()
        assert body["model"] == SIM_MODEL_NAME and "(not a model)" in body["model"]
        message = body["choices"][0]["message"]
        expected = answers.planted_answer(sample, plants(sid, cfg))
        assert message["content"] == f"<answer>{expected}</answer>"
        assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0

        unknown = ask("draft", "no-such-sample").json()["choices"][0]["message"]
        assert answers.GENERIC_NOTE in unknown["reasoning_content"]
        stats = client.get(url.removesuffix("/v1") + "/sim/stats").json()
        assert (
            stats["requests"] == 2
            and stats["unknown_sample"] == 1
            and stats["samples_loaded"] == len(samples)
        )


def test_occupancy_trims_fill_and_drain_and_the_partial_last_second():
    # 4 slots: a 1-second fill, three full seconds, a 1-second drain, then a partial last second.
    busy = [1.0, 4.0, 4.0, 4.0, 2.0, 0.3]
    assert occupancy(busy, capacity=4) == pytest.approx(15 / 20)
    assert occupancy(busy, capacity=4, trim=0.2) == pytest.approx(1.0)  # the middle three seconds
    assert occupancy([], capacity=4) == 0.0 and occupancy(busy, capacity=0) == 0.0


def test_server_reports_how_full_it_was_over_time(synth_dir, samples):
    """Two concurrent requests on a one-slot endpoint: the slot is busy for both latencies in a row."""
    import concurrent.futures

    cfg = SimConfig(annotations=[synth_dir / "annotations.jsonl"], latency_s=0.6, capacity=1)
    sample = next(iter(samples.values()))
    with running_sim_server(cfg) as url, httpx.Client(trust_env=False, timeout=10) as client:

        def ask(i: int) -> int:
            body = {"model": "m", "messages": marked("draft", f"{sample['problem']} {i}")}
            return client.post(f"{url}/chat/completions", json=body).status_code

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            assert list(pool.map(ask, range(2))) == [200, 200]
        stats = client.get(url.removesuffix("/v1") + "/sim/stats").json()
    # 1.2 busy slot-seconds in all, spread over the seconds the slot was in service.
    assert stats["capacity"] == 1 and stats["max_in_service"] == 1
    assert sum(stats["busy_by_second"]) == pytest.approx(1.2, abs=0.1)
    assert max(stats["busy_by_second"]) <= 1.0 + 1e-6


@pytest.mark.integration
def test_server_counts_answers_given_twice_apart_from_refused_arrivals(synth_dir, samples):
    """A re-sent request refused by a fault is an arrival after success, not a second paid answer."""
    cfg = SimConfig(annotations=[synth_dir / "annotations.jsonl"], fault_script=["ok", "server_error", "ok"])
    sample = next(iter(samples.values()))
    with running_sim_server(cfg) as url, httpx.Client(trust_env=False, timeout=10) as client:
        body = {"model": "m", "messages": marked("draft", sample["problem"])}
        codes = [client.post(f"{url}/chat/completions", json=body).status_code for _ in range(3)]
        stats = client.get(url.removesuffix("/v1") + "/sim/stats").json()
    assert codes == [200, 500, 200]
    assert (stats["resent_after_success"], stats["answered_again"]) == (2, 1)
