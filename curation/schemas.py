"""The structured ("literal") description the caption stage asks for (VideoRFT App. D.1 / D.2).

One pydantic model per media kind is the single source of truth: the JSON schema sent as
`response_format` is generated from it, answers are validated against it, and the draft stage reads
it back. Keep field names stable: they are what the simulated endpoint (`sim_endpoint/server.py`)
emits and what the draft prompt shows the reasoning model.

Video answer shape::

    {
      "video_caption": "20-30 words on the main theme/action",
      "frames": [
        {"timestamp": "00:00:01",
         "caption": "2-3 sentences, 30-50 words (ends with [Uncertain] when unsure)",
         "key_elements": {
           "objects": [...], "actions": [...], "scene": "kitchen",
           "notable_features": [...], "spatial_relations": [...],
           "human_attributes": {"gender": "male|female|unknown", "clothing": "...", "posture": "..."} | null,
           "potential_interactions": [...]}},
        ...                                    # exactly one entry per sampled frame, in order
      ]
    }

Image answer shape (App. D.2, the "general" family, which covers every source we read): a caption,
objects with attributes and a rough location, visible text, the scene context and relations.

Every field is required and nothing extra is allowed (`extra="forbid"`): that is what OpenAI's
`strict` structured outputs demand, and it makes a model's typo a validation error instead of a
silently missing field.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# "HH:MM:SS", optionally with a fraction when frames are sampled faster than 1 per second.
TIMESTAMP_PATTERN = r"^\d{2}:\d{2}:\d{2}(\.\d{1,3})?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HumanAttributes(_Strict):
    gender: Literal["male", "female", "unknown"]
    clothing: str
    posture: str = Field(description="e.g. standing, sitting, walking")


class KeyElements(_Strict):
    objects: list[str]
    actions: list[str]
    scene: str = Field(description="e.g. kitchen, street, classroom")
    notable_features: list[str] = Field(description="colours, textures, patterns")
    spatial_relations: list[str] = Field(description='e.g. "cup on table"')
    human_attributes: HumanAttributes | None = Field(description="null when no person is visible")
    potential_interactions: list[str]


class FrameDescription(_Strict):
    timestamp: str = Field(pattern=TIMESTAMP_PATTERN, description="HH:MM:SS of the frame")
    caption: str
    key_elements: KeyElements


class VideoDescription(_Strict):
    video_caption: str = Field(description="1-2 sentences, about 20-30 words")
    frames: list[FrameDescription]


class ImageObject(_Strict):
    id: int
    type: str
    color: str
    size: str = Field(description="small, medium or large relative to the image")
    location: str = Field(description='coarse position, e.g. "center", "top left"')


class ImageText(_Strict):
    content: str
    location: str


class Relation(_Strict):
    subject: str
    predicate: str
    object: str


class ImageDescription(_Strict):
    caption: str = Field(description="1-2 sentences on the whole image")
    objects: list[ImageObject]
    text: list[ImageText] = Field(description="visible text; empty when there is none")
    scene_context: str
    relations: list[Relation]


DESCRIPTION_MODELS: dict[str, type[BaseModel]] = {"video": VideoDescription, "image": ImageDescription}
SCHEMA_NAMES: dict[str, str] = {"video": "video_description", "image": "image_description"}


def description_json_schema(data_type: str, n_frames: int | None = None) -> dict[str, Any]:
    """JSON schema of the description for `data_type`.

    With `n_frames`, the `frames` array is pinned to exactly that many items (minItems = maxItems),
    so a server doing guided decoding (vLLM) cannot return the wrong count. Off by default in the
    stage config: not every server accepts array bounds in strict mode.
    """
    schema = copy.deepcopy(_base_schema(data_type))
    if n_frames is not None and data_type == "video":
        schema["properties"]["frames"]["minItems"] = n_frames
        schema["properties"]["frames"]["maxItems"] = n_frames
    return schema


@cache
def _base_schema(data_type: str) -> dict[str, Any]:
    # Generating a schema costs ~1 ms; it is code, constant for the process.
    return DESCRIPTION_MODELS[data_type].model_json_schema()


@cache
def schema_hash(data_type: str) -> str:
    """Short digest of the generated schema: it is part of the request, so part of the content key."""
    text = json.dumps(description_json_schema(data_type), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def summarize_validation_error(exc: ValidationError, limit: int = 3) -> str:
    """`loc: message` for the first few errors, without the offending input values.

    Inputs are left out on purpose: the summary becomes a row `reason` that the manifest counts, so
    it must not carry arbitrary model text; and a model repairing its answer only needs the location.
    """
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    for err in errors[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "<root>"
        parts.append(f"{loc}: {err.get('msg', '')}")
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more
