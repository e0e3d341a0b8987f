"""Leakage: the published CoT must read as if the model watched the video.

The draft reasoner never sees the video, only the structured caption (S_v: an overall caption plus
per-frame captions, "HH:MM:SS" timestamps and key-element JSON). VideoRFT's guidelines: never reveal
that the answer is based on text; never mention captions, descriptions, frame-level metadata or key
elements (say "visual evidence"); refer to time only coarsely ("at the beginning", "toward the end").
The revision is told to fix this; this step catches what survives it.

The list below is curated, not generated: each pattern carries examples it must catch (`leaks`) and
innocent sentences it must let through (`innocent`); `tests/filters/test_leakage.py` checks all of
them against the whole list. Choices where English is ambiguous:

- "caption(s)": always a leak. Burned-in text in a video is "subtitles" / "on-screen text"; losing
  the rare CoT that calls it a caption costs less than publishing "based on the captions".
- "description": only forms that point at a given text ("the provided description", "according to
  the description", "the description states", "as described"). "The video shows a description of
  the recipe" and "the narrator describes" pass: a description *in* the video is visual evidence.
- "frame": frame numbers ("frame 3"), ordinal frames ("the first frame", "the 3rd frame") and
  frame-level vocabulary ("frame-level", "per-frame", "sampled frames") are leaks. A bare "frame"
  ("picture frame", "the frame of the bike", "30 frames per second") passes.
- "key elements": the plural (S_v's field name) and the JSON field names leak; the singular "the key
  element here is ..." is ordinary English and passes.
- Times: HH:MM:SS is always a leak (S_v's format). MM:SS only after a time preposition ("at 0:15",
  "from 1:05") and not followed by am/pm, so clock readings ("the clock shows 3:45") and ratios
  ("16:9") pass. Seconds as positions ("at 2.5s", "3 seconds in", "the 3-second mark") leak;
  durations ("it lasts 3 seconds", "for 2 seconds") pass: questions ask about durations.
- "timestamp" always leaks (S_v's field), even for a dashcam overlay: rare, and "the time shown in
  the corner" says the same without the word.
- "metadata", "JSON", "the provided text", "[Uncertain]" (S_v's uncertainty marker) always leak.
- Blind-reasoning phrases ("I can't see the video", "simulate browsing the video" — the draft
  prompt's step name — and "imagine what the video would show") leak. "Let me picture watching the
  whole video" is how a viewer sets out and passes.
- Echoes of the question are not leaks: a hit is ignored when its text occurs in the question or its
  options, or when the same pattern matches the question itself. "What changed between the first
  and the last frame?" makes "the first frame" part of the answer's vocabulary; a question asking
  what happens at 00:00:05 invites timestamps.

Matching is case-insensitive over `process` and `answer` (the published text).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from curation.filters.base import FilterStep, Verdict
from curation.filters.config import LeakageConfig

# How many matches to keep in the scores (enough to see what tripped, bounded for the table).
MAX_REPORTED_HITS = 5


@dataclass(frozen=True)
class LeakPattern:
    name: str  # unique id (config `disabled_patterns` uses it)
    label: str  # what the reason says: "mentions <label>" (categorical: stats group by it)
    regex: str
    why: str
    leaks: tuple[str, ...]  # must match
    innocent: tuple[str, ...] = ()  # must not match any pattern

    def compile(self) -> re.Pattern[str]:
        return re.compile(self.regex, re.IGNORECASE)


_TIME_PREP = r"(?:at|around|by|from|until|till|to|between|after|before|near|since)"
_APPROX = r"(?:about\s+|around\s+|approximately\s+|roughly\s+|~\s*)?"
_SECONDS = r"(?:s|secs?|seconds?)"
_NUM = r"\d+(?:\.\d+)?"

LEAK_PATTERNS: tuple[LeakPattern, ...] = (
    LeakPattern(
        name="caption",
        label="captions",
        regex=r"\bcaption(?:s|ed|ing)?\b",
        why="S_v's `video_caption` / per-frame `caption`; VideoRFT forbids mentioning captions.",
        leaks=("Based on the captions, the man enters.", "The caption says a dog runs.", "as captioned"),
        innocent=("The captain steers the boat.", "The subtitles read 'hello'."),
    ),
    LeakPattern(
        name="description_given",
        label="descriptions",
        regex=r"\b(?:provided|given|above|textual|text|written|frame|frame-level|per-frame|video|scene|visual"
        r"|detailed)\s+descriptions?\b",
        why="A description that was handed to the reasoner (the pipeline figure's leaked CoT says "
        "'based on the provided descriptions').",
        leaks=(
            "I need to visualize the video based on the provided descriptions.",
            "The frame descriptions mention a cup.",
            "The video description suggests a kitchen.",
        ),
        innocent=(
            "The video shows a description of the recipe on a card.",
            "The narrator describes the route.",
            "He reads a description on the box.",
        ),
    ),
    LeakPattern(
        name="description_source",
        label="descriptions",
        regex=r"\b(?:based\s+on|according\s+to|from|in|per)\s+(?:the\s+|these\s+|this\s+|those\s+)?descriptions?\b",
        why="Citing a description as the source of evidence.",
        leaks=("According to the description, the ball is red.", "From the descriptions, two cars pass."),
    ),
    LeakPattern(
        name="description_says",
        label="descriptions",
        regex=r"\b(?:the|this|these|those)\s+descriptions?\s+(?:says?|said|states?|stated|mentions?|mentioned"
        r"|notes?|noted|indicates?|indicated|suggests?|suggested|describes?|tells?|specifies|specified"
        r"|lists?|listed)\b",
        why="A description doing the talking.",
        leaks=("The description states that she smiles.", "These descriptions mention a bridge."),
    ),
    LeakPattern(
        name="as_described",
        label="descriptions",
        regex=r"\b(?:as|is|are|was|were)\s+described\b",
        why="'as described' / 'is described as' refers back to a text.",
        leaks=("The car, as described, turns left.", "The room is described as dim."),
        innocent=("He described the route to his friend.",),
    ),
    LeakPattern(
        name="metadata",
        label="metadata",
        regex=r"\bmeta[\s-]?data\b",
        why="'frame-level metadata' is the S_v name; no viewer of a video talks about metadata.",
        leaks=("The frame-level metadata lists a cup.", "the meta data shows"),
    ),
    LeakPattern(
        name="key_elements",
        label="key elements",
        regex=r"\bkey[\s_-]+elements\b|\bkey_element\b",
        why="S_v's `key_elements` object (objects, actions, scene, ...). Singular 'key element' is "
        "ordinary English and passes.",
        leaks=("The key elements include a ladder.", "key_elements lists a dog"),
        innocent=("The key element here is the red ball.",),
    ),
    LeakPattern(
        name="schema_fields",
        label="key elements",
        regex=r"\b(?:video_caption|notable_features|spatial_relations|human_attributes|potential_interactions"
        r"|scene_context|text_items|diagram_parts)\b",
        why="Field names of the structured caption JSON.",
        leaks=("Its notable_features include stripes.", "the spatial_relations say the cup is left"),
        innocent=("The spatial relations between the cups change.",),
    ),
    LeakPattern(
        name="frame_number",
        label="frame numbers",
        regex=r"\bframes?\s*(?:#|no\.?|number)?\s*\d+\b",
        why="Frame indices exist only in the sampled-frame list.",
        leaks=("In frame 3 the door opens.", "Frame #2 shows a cat.", "frames 4-6 show the jump"),
        innocent=("The video runs at 30 frames per second.", "A picture frame hangs on the wall."),
    ),
    LeakPattern(
        name="frame_ordinal",
        label="frame numbers",
        regex=r"\b(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|final|next"
        r"|previous|subsequent|initial|\d+(?:st|nd|rd|th))\s+frames?\b",
        why="'the first frame' / 'the 3rd frame' walks the per-frame list; VideoRFT wants 'at the "
        "beginning', 'toward the end'.",
        leaks=("In the first frame a man stands.", "By the last frame it is gone.", "the 3rd frame"),
        innocent=("The frame of the bicycle is red.",),
    ),
    LeakPattern(
        name="frame_level",
        label="frame-level data",
        regex=r"\bframe[\s_-]*(?:level|by[\s-]*frame|index|indices|data)\b|\bper[\s-]frame\b"
        r"|\b(?:sampled|extracted|provided|given)\s+frames?\b",
        why="Vocabulary of the per-frame representation.",
        leaks=("The frame-level details show a cup.", "Per-frame notes mention rain.", "the sampled frames"),
    ),
    LeakPattern(
        name="timestamp_hms",
        label="timestamps",
        regex=r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b",
        why="S_v timestamps are HH:MM:SS; a viewer says 'near the start'.",
        leaks=("At 00:00:15 the man jumps.", "between 00:00:03 and 00:00:05"),
        innocent=("The screen uses a 16:9 ratio.", "The clock on the wall shows 3:45."),
    ),
    LeakPattern(
        name="timestamp_ms",
        label="timestamps",
        regex=_TIME_PREP
        + r"\s+"
        + _APPROX
        + r"\d{1,2}:\d{2}(?:[.,]\d+)?\b(?!\s*(?:[ap]\.?m\b|o'?clock))(?!:)",
        why="MM:SS after a time preposition is a video position; clock readings (am/pm) pass.",
        leaks=("At 0:15 she waves.", "from 1:05 to 1:20 the car waits"),
        innocent=("The meeting starts at 3:45 pm.", "The score is 2:1 at half time."),
    ),
    LeakPattern(
        name="timestamp_word",
        label="timestamps",
        regex=r"\btime[\s-]?stamps?\b",
        why="S_v's `timestamp` field.",
        leaks=("The timestamp shows the event early.", "at the time stamp of the jump"),
    ),
    LeakPattern(
        name="seconds_at",
        label="exact times",
        regex=r"\bat\s+" + _APPROX + r"(?:the\s+)?" + _NUM + r"\s*" + _SECONDS + r"\b",
        why="'at 2.5s' is a position read off the timestamps.",
        leaks=("At 2.5s the ball drops.", "at around 4 seconds she turns"),
        innocent=("The clip lasts 3 seconds.", "He holds the pose for 2 seconds."),
    ),
    LeakPattern(
        name="seconds_in",
        label="exact times",
        # "in" only when the phrase ends there ("3 seconds in, ..."): "5 seconds in the kitchen" is
        # a duration and a place.
        regex=r"\b" + _NUM + r"\s*" + _SECONDS + r"\s+(?:into\b|in\b(?=\s*(?:[,.;:!?)]|$)))",
        why="'3 seconds in' / '2s into the video' is a position.",
        leaks=(
            "About 3 seconds in, the dog barks.",
            "2s into the video a car appears",
            "It falls 4 seconds in.",
        ),
        innocent=("The whole clip is 10 seconds in total.", "She spends 5 seconds in the kitchen."),
    ),
    LeakPattern(
        name="second_mark",
        label="exact times",
        regex=r"\b" + _NUM + r"[\s-]?(?:s|sec|second)\s+mark\b",
        why="'the 3-second mark' is a position.",
        leaks=("At the 3-second mark he falls.", "around the 10 second mark"),
    ),
    LeakPattern(
        name="given_text",
        label="text input",
        regex=r"\b(?:provided|given)\s+(?:text|textual\s+\w+|json|annotations?)\b|\bjson\b"
        r"|\btextual\s+(?:data|information|input|representation|summary|context)\b",
        why="Guideline: never reveal that the answer is based on text.",
        leaks=(
            "The provided text says it rains.",
            "In the JSON, the cup is blue.",
            "the textual information",
        ),
        innocent=("From the given information, the triangle is isosceles.",),
    ),
    LeakPattern(
        name="uncertain_marker",
        label="caption markers",
        regex=r"\[\s*uncertain\s*\]",
        why="S_v marks low-confidence captions with '[Uncertain]'.",
        leaks=("A dog [Uncertain] runs.",),
    ),
    LeakPattern(
        name="blind_reasoning",
        label="blind reasoning",
        regex=r"\b(?:can(?:not|'t|’t)|unable\s+to|don't|do\s+not)\s+(?:actually\s+)?(?:see|watch|view|access)\s+"
        r"the\s+(?:video|clip|footage)\b"
        r"|\bsimulat(?:e|es|ed|ing)\s+(?:browsing|watching|viewing)\s+(?:the\s+)?(?:video|clip|footage)\b"
        r"|\b(?:imagine|imagining|visualize|visualizing)\s+what\s+the\s+(?:video|clip|footage)\s+"
        r"(?:might|would|could)\b",
        why="Admitting the video was not seen, or the draft prompt's 'simulate browsing the video'.",
        leaks=(
            "Since I can't see the video, I rely on the summary.",
            "First, simulate browsing the video.",
            "Let me imagine what the video would show.",
        ),
        innocent=(
            "The video shows the man watching the clip on a phone.",
            "Let me picture watching the whole video from start to end.",
        ),
    ),
)


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


@lru_cache(maxsize=1)
def patterns_fingerprint() -> str:
    """Hash of the built-in list (name + regex): editing it re-judges rows on the next run."""
    payload = json.dumps([(p.name, p.regex) for p in LEAK_PATTERNS])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


class LeakageFilter(FilterStep):
    name = "leakage"

    def __init__(self, config: LeakageConfig):
        super().__init__(config)
        self.config: LeakageConfig = config
        disabled = set(config.disabled_patterns)
        self._patterns: list[tuple[str, str, re.Pattern[str]]] = [
            (p.name, p.label, p.compile()) for p in LEAK_PATTERNS if p.name not in disabled
        ]
        for name, regex in config.extra_patterns.items():
            self._patterns.append((name, name, re.compile(regex, re.IGNORECASE)))

    def find(self, text: str) -> list[tuple[str, str, str]]:
        """Every (pattern name, label, matched text) in `text`, in list order."""
        hits = []
        for name, label, pattern in self._patterns:
            for match in pattern.finditer(text):
                hits.append((name, label, match.group(0)))
        return hits

    def filter(self, row: dict[str, Any]) -> Verdict:
        text = f"{row.get('process') or ''}\n{row.get('answer') or ''}"
        question = _fold(" ".join([str(row.get("problem") or ""), *map(str, row.get("options") or [])]))
        found = self.find(text)
        # What the question itself says (or the kind of thing it says) echoes the question, not the
        # caption.
        asked = {name for name, _, _ in self.find(question)} if found else set()
        hits = [h for h in found if h[0] not in asked and _fold(h[2]) not in question]
        echoes = len(found) - len(hits)
        if not hits:
            return Verdict.ok(leak_count=0, question_echoes=echoes)
        scores = {
            "leak_count": len(hits),
            "question_echoes": echoes,
            "leak_hits": [f"{name}: {matched}" for name, _, matched in hits[:MAX_REPORTED_HITS]],
        }
        return Verdict.drop(f"mentions {hits[0][1]}", **scores)
