"""What the simulated endpoint says, per stage, from a synthetic sample's ground truth. Pure text.

The stage of a request is read from a marker line in its prompt (`[videorft-stage: caption]`,
`... draft]`, `... revise]`; the prompt templates carry them). The answers imitate the VideoRFT
pipeline's models:
- caption: the structured JSON of VideoRFT App. D.1, one frame entry per image sent;
- draft: a five-step cognitive CoT (simulated watching, task understanding, locating moments,
  visual reasoning, reflective answer) ending in `<answer>X</answer>`, possibly with a planted
  wrong answer and planted leakage of the text representation;
- revise: only `<think>…</think>`, leakage removed unless planted to survive, conclusion kept.
"""

from __future__ import annotations

import json
import re
from typing import Any

from curation.records import FREE_FORM, MULTIPLE_CHOICE, NUMERICAL, OCR, REGRESSION
from sim_endpoint.config import Plants
from sim_endpoint.scene import (
    Scene,
    coarse_time,
    coarsen_times,
    events_near,
    hhmmss,
    objects_at,
    region_phrase,
    spatial_relations,
)

STAGES: tuple[str, ...] = ("caption", "draft", "revise")
STAGE_MARKERS: dict[str, str] = {s: f"[videorft-stage: {s}]" for s in STAGES}
# The planted leakage: phrases VideoRFT's draft prompt forbids (they reveal the text source).
LEAK_PHRASES: tuple[str, ...] = (
    "according to the caption",
    "the frame-level metadata shows",
    "at 00:00:0",
    "key elements",
)
GENERIC_NOTE = "(generic simulated answer: this sample is unknown to the videorft simulated endpoint)"

_IMAGE_PART_TYPES = {"image_url", "image", "input_image"}
_SECONDS = re.compile(r"(\d+(?:\.\d+)?)\s*s\b")
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_OPTION_LINE = re.compile(r"^\s*([A-Z])[.)]\s", re.MULTILINE)


# ---- reading the request ------------------------------------------------------------------------


def _parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [p for p in content or [] if isinstance(p, dict)]


def request_text(messages: list[dict[str, Any]], roles: tuple[str, ...] | None = None) -> str:
    chunks = []
    for m in messages:
        if roles is None or m.get("role") in roles:
            chunks += [p.get("text", "") for p in _parts(m) if p.get("type") == "text"]
    return "\n".join(chunks)


def detect_stage(messages: list[dict[str, Any]]) -> str | None:
    """The stage named by a marker line, looked for in system messages first, then anywhere."""
    for roles in (("system", "developer"), None):
        text = request_text(messages, roles)
        for stage, marker in STAGE_MARKERS.items():
            if marker in text:
                return stage
    return None


def count_images(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages for p in _parts(m) if p.get("type") in _IMAGE_PART_TYPES)


def frame_times(messages: list[dict[str, Any]], duration: float) -> list[float]:
    """One timestamp per image part: the last "<number>s" in the text since the previous image.

    Images with no such text get evenly spaced times; a `video_url` part stands for 1-fps frames.
    """
    times: list[float | None] = []
    pending: float | None = None
    for m in messages:
        for p in _parts(m):
            kind = p.get("type")
            if kind == "text":
                found = _SECONDS.findall(p.get("text", ""))
                if found:
                    pending = float(found[-1])
            elif kind in _IMAGE_PART_TYPES:
                times.append(pending)
                pending = None
            elif kind == "video_url":
                times += [float(s) for s in range(max(1, int(duration) + (duration % 1 > 0)))]
    n = len(times)
    return [t if t is not None else (duration * (i + 0.5) / n if n else 0.0) for i, t in enumerate(times)]


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    # Text at ~4 characters a token; an image at a Qwen2.5-VL-like 256 visual tokens.
    return estimate_tokens(request_text(messages)) + 256 * count_images(messages)


# ---- answers --------------------------------------------------------------------------------------


def _fmt_number(value: float, like: str) -> str:
    decimals = len(like.split(".", 1)[1]) if "." in like else 0
    return f"{value:.{decimals}f}"


def option_letters(sample: dict[str, Any]) -> list[str]:
    letters = [str(o).strip()[0] for o in sample.get("options") or [] if str(o).strip()]
    return letters or ["A", "B", "C", "D"]


def wrong_answer(sample: dict[str, Any]) -> str:
    """A deterministic wrong answer in the problem type's format."""
    solution = str(sample.get("solution", "")).strip()
    ptype = sample.get("problem_type")
    if ptype == MULTIPLE_CHOICE:
        letters = option_letters(sample)
        i = letters.index(solution) if solution in letters else -1
        return letters[(i + 1) % len(letters)] if len(letters) > 1 else ("B" if solution == "A" else "A")
    if ptype in (NUMERICAL, REGRESSION):
        try:
            value = float(solution.replace(",", ""))
        except ValueError:
            return "0" if solution != "0" else "1"
        off = value + 1 if ptype == NUMERICAL else value * 1.5 + 1
        return _fmt_number(off, solution)
    if ptype == OCR:
        flipped = solution[::-1]
        return flipped if flipped != solution else solution + "X"
    return "nothing in particular happens in the video"


def planted_answer(sample: dict[str, Any], planted: Plants) -> str:
    return wrong_answer(sample) if planted.wrong_answer else str(sample.get("solution", "")).strip()


_FILLER = (
    "The camera stays fixed for the whole clip.",
    "The frame is simple and uncluttered.",
    "Nothing else enters the view.",
    "The lighting does not change.",
)


def fit_words(*sentences: str, lo: int = 20, hi: int = 30) -> str:
    """Whole sentences, in order, while they fit in `hi` words, padded with neutral ones to `lo`.

    VideoRFT's video_caption is 1-2 sentences of about 20-30 words.
    """
    words: list[str] = []
    for sentence in sentences:
        extra = sentence.split()
        if words and len(words) + len(extra) > hi:
            continue
        words += extra
    if len(words) > hi:  # a single sentence longer than the limit: cut it
        words = words[:hi]
        words[-1] = words[-1].rstrip(",;.") + "."
    i = 0
    while len(words) < lo:
        extra = _FILLER[i % len(_FILLER)].split()
        words += extra[: hi - len(words)] if len(words) + len(extra) > hi else extra
        i += 1
    return " ".join(words)


def _a(name: str) -> str:
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def objects_phrase(names: list[str]) -> str:
    """Grouped names in order of first mention: "two green squares and a purple circle"."""
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    parts = [
        _a(n) if k == 1 else f"{_NUMBER_WORDS[k] if k < len(_NUMBER_WORDS) else k} {n}s"
        for n, k in counts.items()
    ]
    return _join(parts) or "a few simple shapes"


def _join(items: list[str]) -> str:
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _background(scene: Scene) -> str:
    return f"plain {scene.background} background" if scene.background else "plain background"


def video_caption(scene: Scene) -> str:
    background = f"The scene has a {_background(scene)}."
    if scene.reference_caption:
        return fit_words(scene.reference_caption, background)
    text = f"A short synthetic clip on a {_background(scene)} showing {objects_phrase([o.name for o in scene.objects])}"
    if scene.events:
        text += f", where {scene.events[0].description} {coarse_time(scene.events[0].t, scene.duration)}"
    elif scene.objects:
        text += f", with the {scene.objects[0].name} {scene.objects[0].overall_motion()}"
    if scene.text:
        text += f' and the text "{scene.text}" on screen'
    return fit_words(text + ".")


def frame_entry(scene: Scene, t: float) -> dict[str, Any]:
    visible = objects_at(scene, t)
    names = [o.name_at(t) for o, _, _ in visible]
    sentences = [
        f"The {name} is in the {region} of the frame, {motion}."
        for name, (_, region, motion) in zip(names, visible, strict=True)
    ]
    if not visible:
        sentences.append("No object is visible at this moment.")
    near = events_near(scene, t)
    sentences += [f"Here {e.description}." for e in near]
    text_on = scene.text_at(t)
    if text_on:
        sentences.append(f'The text "{text_on}" is shown on screen.')
    sentences.append(f"The scene has a {_background(scene)}.")
    features = sorted({name.split()[0] for name in names if len(name.split()) > 1})
    if text_on:
        features.append(f'text "{text_on}"')
    return {
        "timestamp": hhmmss(t),
        "caption": " ".join(sentences),
        "key_elements": {
            "objects": names,
            "actions": [f"{name} {motion}" for name, (_, _, motion) in zip(names, visible, strict=True)]
            + [e.description for e in near],
            "scene": _background(scene),
            "notable_features": features,
            "spatial_relations": spatial_relations(visible, t),
            "human_attributes": None,
            "potential_interactions": [],
        },
    }


def caption_json(scene: Scene, times: list[float]) -> str:
    return json.dumps(
        {"video_caption": video_caption(scene), "frames": [frame_entry(scene, t) for t in times]},
        ensure_ascii=False,
    )


def caption_kind(payload: dict[str, Any], sample: dict[str, Any] | None) -> str:
    """Which description schema ("video" or "image") the caption request wants.

    A known sample says so itself; otherwise the requested JSON schema does (its name or a
    `frames` property); otherwise a single unlabelled image means an image.
    """
    if sample is not None and sample.get("data_type") in ("video", "image"):
        return str(sample["data_type"])
    fmt = payload.get("response_format") or {}
    schema = fmt.get("json_schema") or {} if isinstance(fmt, dict) else {}
    if isinstance(schema, dict) and schema:
        name = str(schema.get("name", ""))
        if "image" in name or "video" in name:
            return "image" if "image" in name else "video"
        props = (schema.get("schema") or {}).get("properties") or {}
        if "frames" in props:
            return "video"
        if "scene_context" in props:
            return "image"
    messages = payload.get("messages") or []
    labelled = any(
        _SECONDS.search(p.get("text", "")) for m in messages for p in _parts(m) if p.get("type") == "text"
    )
    has_video = any(p.get("type") == "video_url" for m in messages for p in _parts(m))
    return "image" if count_images(messages) == 1 and not labelled and not has_video else "video"


def _size_word(size: float | None, width: float | None) -> str:
    if not size or not width:
        return "medium"
    frac = size / width
    return "small" if frac < 0.1 else ("large" if frac > 0.25 else "medium")


def image_description_json(sample: dict[str, Any], scene: Scene) -> str:
    """ImageDescription (VideoRFT App. D.2, general family) of the scene at t = 0."""
    meta = sample.get("meta") or {}
    sizes = {str(o.get("id")): o.get("size") for o in meta.get("objects") or [] if isinstance(o, dict)}
    visible = objects_at(scene, 0.0)
    objects = [
        {
            "id": i + 1,
            "type": o.shape or o.name,
            "color": o.color or "unknown",
            "size": _size_word(sizes.get(o.id), meta.get("width")),
            "location": region,
        }
        for i, (o, region, _) in enumerate(visible)
    ]
    text = scene.text_at(0.0)
    relations = []
    for rel in spatial_relations(visible, 0.0):
        for pred in (" left of ", " right of ", " above ", " below "):
            if pred in rel:
                subject, obj = rel.split(pred, 1)
                relations.append({"subject": subject, "predicate": pred.strip(), "object": obj})
                break
    caption = (
        scene.reference_caption
        or f"An image on a {_background(scene)} showing {objects_phrase([o.name for o, _, _ in visible])}."
    )
    return json.dumps(
        {
            "caption": caption,
            "objects": objects,
            "text": [{"content": text, "location": "center"}] if text else [],
            "scene_context": _background(scene),
            "relations": relations,
        },
        ensure_ascii=False,
    )


def generic_image_description_json() -> str:
    return json.dumps(
        {
            "caption": f"Generic simulated description {GENERIC_NOTE}.",
            "objects": [],
            "text": [],
            "scene_context": "unknown",
            "relations": [],
        }
    )


def generic_caption_json(times: list[float]) -> str:
    caption = fit_words(f"Generic simulated caption {GENERIC_NOTE}: a simple scene with a few objects.")
    frames = [
        {
            "timestamp": hhmmss(t),
            "caption": f"A generic frame {GENERIC_NOTE}.",
            "key_elements": {
                "objects": [],
                "actions": [],
                "scene": "unknown",
                "notable_features": [],
                "spatial_relations": [],
                "human_attributes": None,
                "potential_interactions": [],
            },
        }
        for t in times
    ]
    return json.dumps({"video_caption": caption, "frames": frames}, ensure_ascii=False)


_NEED = {
    MULTIPLE_CHOICE: "I need to pick the single option letter that matches what happens.",
    NUMERICAL: "I need a number, so I should count carefully.",
    OCR: "I need to read the text that appears on screen exactly as written.",
    FREE_FORM: "I need to answer in a short phrase.",
    REGRESSION: "I need to estimate a numeric value as precisely as I can.",
}


def reasoning_steps(sample: dict[str, Any], scene: Scene, planted: Plants) -> list[list[tuple[str, bool]]]:
    """The draft's five steps as sentences, each flagged True when it is planted leakage."""
    answer = planted_answer(sample, planted)
    leak = planted.leak_in_draft
    names = objects_phrase([o.name for o in scene.objects])
    question = (
        str(sample.get("problem", "")).strip().splitlines()[0] if sample.get("problem") else "the question"
    )

    watching = [
        ("Let me picture watching the whole video from start to end.", False),
        (
            f"It is a short clip of about {scene.duration:.0f} seconds on a {_background(scene)}, showing {names}.",
            False,
        ),
    ]
    if leak:
        watching.append((f"According to the caption, the scene contains {names}.", True))

    task = [
        (f'The question asks: "{question}".', False),
        (_NEED.get(sample.get("problem_type"), _NEED[FREE_FORM]), False),
    ]

    locating = []
    if scene.events:
        moments = [f"{coarse_time(e.t, scene.duration)}, when {e.description}" for e in scene.events[:3]]
        locating.append((f"The moments that matter are {_join(moments)}.", False))
        if leak:
            e = scene.events[0]
            locating.append((f"The frame-level metadata shows that at {hhmmss(e.t)} {e.description}.", True))
    else:
        locating.append(
            ("Nothing seems to change over time, so every moment of the clip shows the same scene.", False)
        )
        if leak:
            locating.append(("The frame-level metadata shows the same objects at 00:00:01 and later.", True))

    visual = []
    if scene.facts:
        facts = [coarsen_times(f, scene.duration) for f in scene.facts]
        if planted.wrong_answer:  # the generator's own conclusion would contradict the planted one
            facts = [f for f in facts if not f.startswith("So ")]
        visual += [(f"The video shows this: {facts[0][0].lower()}{facts[0][1:]}", False)] if facts else []
        visual += [(f, False) for f in facts[1:]]
    else:
        for o in scene.objects:
            first = o.position_at(o.track[0][0]) if o.track else None
            last = o.position_at(scene.duration)
            if first and last:
                visual.append(
                    (
                        f"The video shows the {o.name} starting in the {region_phrase(*first)}, "
                        f"{o.overall_motion()}, and ending near the {region_phrase(*last)}.",
                        False,
                    )
                )
            else:
                visual.append((f"The video shows the {o.name} in view.", False))
        if scene.text:
            visual.append((f'Some text appears on screen; it reads "{scene.text}".', False))
    if not visual:
        visual.append(("The video shows a simple scene with little change.", False))
    if leak:
        visual.append((f"The key elements listed for the frames include {names}.", True))

    if planted.wrong_answer:
        closing = f"Putting it together, I am fairly confident the answer is {answer}."
    else:
        closing = f"Checking this again against what I saw, the answer is {answer}."
    reflect = [
        ("Let me double-check that this is consistent with the visual events.", False),
        (closing, False),
    ]
    return [watching, task, locating, visual, reflect]


def render_steps(steps: list[list[tuple[str, bool]]], keep_leaks: bool) -> str:
    return "\n\n".join(" ".join(s for s, is_leak in step if keep_leaks or not is_leak) for step in steps)


def draft_parts(sample: dict[str, Any], scene: Scene, planted: Plants) -> tuple[str, str]:
    """(reasoning, final content) of the simulated reasoning model's draft."""
    reasoning = render_steps(reasoning_steps(sample, scene, planted), keep_leaks=True)
    return reasoning, f"<answer>{planted_answer(sample, planted)}</answer>"


def revise_content(sample: dict[str, Any], scene: Scene, planted: Plants) -> str:
    """The reviser returns only the think block: leakage gone (unless planted), conclusion kept."""
    reasoning = render_steps(
        reasoning_steps(sample, scene, planted), keep_leaks=planted.leak_survives_revision
    )
    return f"<think>{reasoning}</think>"


def strip_leaks(text: str) -> str:
    """Drop every sentence carrying a leak phrase (the generic reviser's only edit)."""
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    return " ".join(s for s in sentences if not any(p in s.lower() for p in LEAK_PHRASES))


def generic_draft_parts(messages: list[dict[str, Any]]) -> tuple[str, str]:
    text = request_text(messages)
    letters = _OPTION_LINE.findall(text)
    answer = letters[0] if letters else "unknown"
    reasoning = (
        f"{GENERIC_NOTE} Let me picture the video. I will consider the question and the visual evidence. "
        f"Without more to go on, my best guess is {answer}."
    )
    return reasoning, f"<answer>{answer}</answer>"


_DRAFT_SECTION = re.compile(r"Draft reasoning:\s*(.*?)(?:\n\s*Draft answer:|\Z)", re.DOTALL)


def generic_revise_content(messages: list[dict[str, Any]]) -> str:
    """The draft it was given (a `<think>` block, or a "Draft reasoning:" section) minus leaks."""
    text = request_text(messages, ("user",))
    drafts = _THINK.findall(text) or _DRAFT_SECTION.findall(text)
    body = strip_leaks(drafts[-1]) if drafts else ""
    return f"<think>{body or GENERIC_NOTE + ' The video shows a simple scene.'}</think>"


def generic_reply() -> str:
    return (
        "This is the videorft simulated endpoint (not a model). The request carried no "
        "[videorft-stage: ...] marker, so this is a generic reply."
    )
