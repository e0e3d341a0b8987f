"""Helpers for the LLM stage tests: a fake gateway with canned answers, samples, frames on disk.

A plain module (not conftest) so tests import the helpers by name: `from stage_fakes import ...`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from curation.llm.gateway import ChatRequest, ChatResult, EndpointConfig, result_from_response
from curation.records import Sample


def completion(
    content: str, *, finish_reason: str = "stop", reasoning: str | None = None, model: str = "fake-vlm"
) -> dict:
    """An OpenAI chat.completion dict, as a server would send it."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "completion_tokens_details": {"reasoning_tokens": 5},
        },
    }


def ok_result(content: str, **kw: Any) -> ChatResult:
    cached = kw.pop("cached", False)
    return result_from_response(
        completion(content, **kw), key="k", cached=cached, attempts=0 if cached else 1
    )


class FakeGateway:
    """Answers `complete` from a list (strings become ok results); records every request."""

    def __init__(self, answers: list[ChatResult | str], model: str = "fake-model") -> None:
        self.answers = list(answers)
        self.model = model
        self.requests: list[ChatRequest] = []

    def endpoint(self, role: str) -> EndpointConfig:
        return EndpointConfig(model=self.model)

    async def complete(self, req: ChatRequest) -> ChatResult:
        self.requests.append(req)
        if not self.answers:
            raise AssertionError("FakeGateway ran out of canned answers")
        answer = self.answers.pop(0)
        return ok_result(answer) if isinstance(answer, str) else answer


def write_jpeg(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    path.write_bytes(buf.getvalue())


def make_sample(i: int = 0, *, data_type: str = "video", problem_type: str = "multiple choice") -> Sample:
    options = ["A. red", "B. blue", "C. green", "D. yellow"] if problem_type == "multiple choice" else []
    return Sample(
        id=f"s{i:04d}",
        media_path=f"videos/clip{i}.mp4" if data_type == "video" else f"images/img{i}.jpg",
        data_type=data_type,
        problem="What color is the ball?" if options else "How many objects are there?",
        solution="A" if options else "3",
        problem_type=problem_type,
        data_source="test",
        options=options,
    )


def make_extract(run_dir: Path, sample: Sample, n_frames: int = 3, step: float = 1.0) -> dict[str, Any]:
    """An ok extract row with real JPEG frames under run_dir/frames/<id>/."""
    colors = [(220, 30, 30), (30, 220, 30), (30, 30, 220), (200, 200, 30), (30, 200, 200)]
    n = 1 if sample.data_type == "image" else n_frames
    paths, times = [], []
    for k in range(n):
        rel = f"frames/{sample.id}/{k:03d}.jpg"
        write_jpeg(run_dir / rel, colors[k % len(colors)])
        paths.append(rel)
        times.append(round(0.5 + k * step, 3) if sample.data_type == "video" else 0.0)
    return {
        "id": sample.id,
        "status": "ok",
        "reason": "",
        "duration": n * step,
        "frame_paths": paths,
        "timestamps": times,
    }


def frame_entry(ts: str, caption: str = "A red ball rolls to the left on a grey floor.") -> dict[str, Any]:
    return {
        "timestamp": ts,
        "caption": caption,
        "key_elements": {
            "objects": ["ball"],
            "actions": ["ball rolls left"],
            "scene": "grey floor",
            "notable_features": ["red"],
            "spatial_relations": ["ball on floor"],
            "human_attributes": None,
            "potential_interactions": [],
        },
    }


def video_caption_json(n: int = 3) -> str:
    return json.dumps(
        {
            "video_caption": "A red ball rolls from right to left across a plain grey floor while nothing else moves.",
            "frames": [frame_entry(f"00:00:{k:02d}") for k in range(n)],
        }
    )


def image_caption_json() -> str:
    return json.dumps(
        {
            "caption": "A bar chart with three bars.",
            "objects": [{"id": 1, "type": "bar", "color": "blue", "size": "large", "location": "center"}],
            "text": [{"content": "2019", "location": "bottom"}],
            "scene_context": "bar chart",
            "relations": [{"subject": "bar", "predicate": "above", "object": "axis"}],
        }
    )


def caption_row_for(caption_json: str) -> dict[str, Any]:
    return {"status": "ok", "reason": "", "caption_json": caption_json, "video_caption": "x"}


def draft_row_for(
    reasoning: str = "The video shows a red ball rolling left.", answer: str = "A"
) -> dict[str, Any]:
    return {
        "status": "ok",
        "reason": "",
        "draft": f"<answer>{answer}</answer>",
        "draft_reasoning": reasoning,
        "draft_answer": answer,
    }
