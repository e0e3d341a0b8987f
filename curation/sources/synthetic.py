"""Synthetic source: small procedural videos whose every fact is known, with questions about them.

Coloured circles, squares and triangles on a plain background, encoded as real MP4 files
(OpenCV, mp4v), one per sample. The scene's ground truth goes into `meta` (objects, positions
over time, timed events, rendered text, a reference caption and the facts that lead to the
answer), so a simulated VLM can write a correct structured caption and a correct reasoning chain,
and tests know the right answer exactly.

Tasks, assigned round-robin so any n >= 6 covers all five problem types:
    counting        numerical        "How many red circles appear in the video?"
    motion          multiple choice  direction of motion, or which object starts moving first
    ratio           regression       width ratio of two objects, or ratio of two distances
    ocr             OCR              words drawn into the frames one after another
    description     free-form        one sentence saying what happens
    transformation  multiple choice  what changed between the first and the last frame
                                     (colour, size, position or shape of one object; Reason-RFT)

Same (n, seed) => byte-identical files: every sample draws from its own RNG seeded by
(seed, index), and OpenCV's mp4v writer writes no timestamps.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curation.records import FREE_FORM, MULTIPLE_CHOICE, NUMERICAL, OCR, REGRESSION

TASKS: tuple[str, ...] = ("counting", "motion", "ratio", "ocr", "description", "transformation")
PROBLEM_TYPE_OF_TASK: dict[str, str] = {
    "counting": NUMERICAL,
    "motion": MULTIPLE_CHOICE,
    "ratio": REGRESSION,
    "ocr": OCR,
    "description": FREE_FORM,
    "transformation": MULTIPLE_CHOICE,
}

# BGR, as OpenCV draws. Names are what questions, captions and answers say.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (40, 40, 220),
    "green": (60, 170, 40),
    "blue": (210, 90, 20),
    "yellow": (20, 210, 240),
    "purple": (160, 40, 150),
    "orange": (0, 140, 255),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "light grey": (205, 205, 205),
    "dark grey": (70, 70, 70),
}
DARK_BACKGROUNDS = frozenset({"dark grey"})
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
WORDS: tuple[str, ...] = tuple(
    "RED BLUE CAT DOG SUN MOON TREE FISH STAR BIRD LAKE BOOK CAKE ROCK WIND SHIP KING FROG GOLD RAIN".split()
)
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")

WIDTH, HEIGHT = 320, 240
FPS_CHOICES = (8, 10, 12)
SECONDS_CHOICES = (2, 3, 4, 5)
KEY_TIME_STEP = 0.5  # seconds between the positions recorded in meta
_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX (kept numeric so importing this module does not need cv2)
_VIDEO_NAME = re.compile(r"^\d{5}_[a-z]+\.mp4$")


# --------------------------------------------------------------------------- scene model


@dataclass
class Thing:
    """One shape on screen. `size` is its nominal width in pixels (circle diameter, square side,
    triangle base). `keys` are (time, x, y) centre positions, linear in between; `changes` are
    (time, attribute, value) applied from that time on."""

    id: str
    shape: str
    colour: str
    size: int
    keys: list[tuple[float, float, float]]
    appears_at: float = 0.0
    changes: list[tuple[float, str, Any]] = field(default_factory=list)

    @property
    def look(self) -> str:
        return f"{self.colour} {self.shape}"

    def state(self, t: float) -> dict[str, Any] | None:
        if t + 1e-9 < self.appears_at:
            return None
        out = {"shape": self.shape, "colour": self.colour, "size": self.size}
        for when, attr, value in self.changes:
            if t + 1e-9 >= when:
                out[attr] = value
        out["x"], out["y"] = _interpolate(self.keys, t)
        return out


@dataclass
class Caption:
    """Words drawn into the frames: each (time, word) appears then stays, laid out as one line."""

    words: list[tuple[float, str]]
    x: int
    y: int
    scale: float
    colour: str


@dataclass
class Scene:
    task: str
    variant: str
    fps: int
    frame_count: int
    background: str
    things: list[Thing]
    events: list[dict[str, Any]] = field(default_factory=list)
    caption_text: Caption | None = None
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps

    def time(self, frame: int) -> float:
        return frame / self.fps

    def thing(self, thing_id: str) -> Thing:
        return next(t for t in self.things if t.id == thing_id)


@dataclass
class Question:
    problem: str
    solution: str
    options: list[str]
    caption: str
    facts: list[str]


def _interpolate(keys: list[tuple[float, float, float]], t: float) -> tuple[int, int]:
    if t <= keys[0][0]:
        return round(keys[0][1]), round(keys[0][2])
    for (t0, x0, y0), (t1, x1, y1) in zip(keys, keys[1:], strict=False):
        if t <= t1:
            a = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
            return round(x0 + a * (x1 - x0)), round(y0 + a * (y1 - y0))
    return round(keys[-1][1]), round(keys[-1][2])


# --------------------------------------------------------------------------- public entry point


def generate(out_dir: Path, n: int, seed: int = 0, *, tasks: Sequence[str] | None = None) -> Path:
    """Write `n` videos to out_dir/videos/ and their questions to out_dir/annotations.jsonl.

    Returns the annotations path. `tasks` restricts (and orders) the round-robin, default all of
    TASKS. Stale videos from an earlier, larger run in the same folder are removed.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    task_cycle = tuple(tasks) if tasks else TASKS
    unknown = [t for t in task_cycle if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown synthetic task(s) {unknown}; known: {', '.join(TASKS)}")
    out_dir = Path(out_dir)
    video_dir = out_dir / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)

    lines: list[str] = []
    written: set[str] = set()
    for index in range(n):
        task = task_cycle[index % len(task_cycle)]
        rng = random.Random(f"videorft-synthetic/{seed}/{index}")
        scene, question = BUILDERS[task](rng)
        name = f"{index:05d}_{task}.mp4"
        render(scene, video_dir / name)
        written.add(name)
        record = {
            "media_path": f"videos/{name}",
            "data_type": "video",
            "problem": question.problem,
            "options": question.options,
            "solution": question.solution,
            "problem_type": PROBLEM_TYPE_OF_TASK[task],
            "data_source": f"synthetic/{task}",
            "meta": scene_meta(scene, question, seed=seed, index=index),
        }
        lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True))

    for stale in video_dir.iterdir():
        if _VIDEO_NAME.match(stale.name) and stale.name not in written:
            stale.unlink()
    annotations = out_dir / "annotations.jsonl"
    tmp = annotations.with_name(".annotations.jsonl.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, annotations)
    return annotations


def scene_meta(scene: Scene, question: Question, *, seed: int, index: int) -> dict[str, Any]:
    """The ground truth a simulated VLM needs: everything visible, when, and where."""
    last = scene.time(scene.frame_count - 1)
    key_times = [round(k * KEY_TIME_STEP, 3) for k in range(int(last / KEY_TIME_STEP) + 1)]
    if key_times[-1] < round(last, 3):
        key_times.append(round(last, 3))
    positions: dict[str, list[dict[str, Any]]] = {}
    for thing in scene.things:
        track = []
        for t in key_times:
            state = thing.state(t)
            if state is not None:
                track.append({"t": t, "x": state["x"], "y": state["y"]})
        positions[thing.id] = track
    text = scene.caption_text
    return {
        "task": scene.task,
        "variant": scene.variant,
        "seed": seed,
        "index": index,
        "width": scene.width,
        "height": scene.height,
        "fps": scene.fps,
        "frame_count": scene.frame_count,
        "duration": round(scene.duration, 3),
        "background": scene.background,
        "objects": [
            {
                "id": t.id,
                "shape": t.shape,
                "colour": t.colour,
                "size": t.size,
                "appears_at": round(t.appears_at, 3),
            }
            for t in scene.things
        ],
        "positions": positions,
        "events": sorted(scene.events, key=lambda e: (e["t"], e.get("object", ""))),
        "text": " ".join(word for _, word in text.words) if text else "",
        "text_colour": text.colour if text else "",
        "caption": question.caption,
        "facts": question.facts,
    }


# --------------------------------------------------------------------------- rendering


def render(scene: Scene, path: Path) -> None:
    """Encode the scene with OpenCV's mp4v writer; written to a temp name, then renamed."""
    import cv2

    tmp = path.with_name(f".tmp-{path.name}")
    writer = cv2.VideoWriter(
        str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), scene.fps, (scene.width, scene.height)
    )
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4v video to {tmp} (FFmpeg backend missing?)")
    try:
        background = np.empty((scene.height, scene.width, 3), np.uint8)
        background[:] = BACKGROUNDS[scene.background]
        for frame_index in range(scene.frame_count):
            writer.write(draw_frame(scene, scene.time(frame_index), background))
    finally:
        writer.release()
    os.replace(tmp, path)


def draw_frame(scene: Scene, t: float, background: np.ndarray) -> np.ndarray:
    import cv2

    frame = background.copy()
    for thing in scene.things:
        state = thing.state(t)
        if state is None:
            continue
        colour = COLOURS[state["colour"]]
        x, y, half = state["x"], state["y"], state["size"] / 2
        if state["shape"] == "circle":
            cv2.circle(frame, (x, y), round(half), colour, -1, cv2.LINE_AA)
        elif state["shape"] == "square":
            top_left = (round(x - half), round(y - half))
            bottom_right = (round(x + half) - 1, round(y + half) - 1)
            cv2.rectangle(frame, top_left, bottom_right, colour, -1, cv2.LINE_AA)
        else:
            h = half * math.sqrt(3)  # equilateral: height = base * sqrt(3) / 2
            pts = np.array([[x, y - h / 2], [x - half, y + h / 2], [x + half, y + h / 2]], np.int32)
            cv2.fillPoly(frame, [pts], colour, cv2.LINE_AA)
    text = scene.caption_text
    if text:
        ink = (255, 255, 255) if text.colour == "white" else (0, 0, 0)
        x = text.x
        for when, word in text.words:
            # Each word keeps the place it has in the full line, so earlier words never shift.
            if t + 1e-9 >= when:
                cv2.putText(frame, word, (x, text.y), _FONT, text.scale, ink, 2, cv2.LINE_AA)
            x += _text_width(word + " ", text.scale)
    return frame


def _text_width(text: str, scale: float) -> int:
    import cv2

    return cv2.getTextSize(text, _FONT, scale, 2)[0][0]


# --------------------------------------------------------------------------- scene helpers


def _base(rng: random.Random, task: str, variant: str) -> Scene:
    fps = rng.choice(FPS_CHOICES)
    return Scene(
        task=task,
        variant=variant,
        fps=fps,
        frame_count=fps * rng.choice(SECONDS_CHOICES),
        background=rng.choice(sorted(BACKGROUNDS)),
        things=[],
    )


def _looks(rng: random.Random, k: int, exclude: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """k distinct (colour, shape) pairs, so "the red circle" always names one object."""
    pool = [(c, s) for c in sorted(COLOURS) for s in SHAPES if (c, s) not in exclude]
    return rng.sample(pool, k)


def _grid_cells(
    rng: random.Random, k: int, scene: Scene, cell: int = 80, jitter: int = 8
) -> list[tuple[int, int]]:
    """k non-overlapping centres: distinct cells of a grid, jittered."""
    cols, rows = scene.width // cell, scene.height // cell
    cells = rng.sample([(c, r) for r in range(rows) for c in range(cols)], k)
    return [
        (
            c * cell + cell // 2 + rng.randint(-jitter, jitter),
            r * cell + cell // 2 + rng.randint(-jitter, jitter),
        )
        for c, r in cells
    ]


def _frame_between(rng: random.Random, scene: Scene, lo: float, hi: float) -> int:
    """A frame index in [lo, hi] * frame_count; events happen on frame boundaries."""
    first = max(0, round(lo * scene.frame_count))
    last = max(first, min(scene.frame_count - 1, round(hi * scene.frame_count)))
    return rng.randint(first, last)


def _static(thing_id: str, look: tuple[str, str], size: int, xy: tuple[int, int]) -> Thing:
    return Thing(id=thing_id, colour=look[0], shape=look[1], size=size, keys=[(0.0, xy[0], xy[1])])


def _plural(n: int, look: str) -> str:
    return f"{n} {look}" + ("s" if n != 1 else "")


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _secs(t: float) -> str:
    return f"{t:.1f} s"


def _fmt_number(value: float) -> str:
    """Regression answers: two decimals, no trailing zeros ("1.5", "2", "0.67")."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _lettered(options: Sequence[str]) -> list[str]:
    return [f"{chr(ord('A') + i)}. {text}" for i, text in enumerate(options)]


def _a(look: str) -> str:
    return ("an " if look[0] in "aeiou" else "a ") + look


def _path_phrase(direction: str) -> str:
    return {
        "left": "from right to left",
        "right": "from left to right",
        "up": "from the bottom to the top",
        "down": "from the top to the bottom",
    }[direction]


def _motion_keys(
    rng: random.Random, scene: Scene, direction: str, lane: int | None, t0: float, t1: float
) -> list[tuple[float, float, float]]:
    """Keyframes for a move across the frame: still until t0, linear to t1, still after."""
    w, h = scene.width, scene.height
    if direction in ("left", "right"):
        y = lane if lane is not None else rng.randint(50, h - 50)
        a, b = rng.randint(35, 80), rng.randint(w - 80, w - 35)
        start, end = ((a, y), (b, y)) if direction == "right" else ((b, y), (a, y))
    else:
        x = lane if lane is not None else rng.randint(50, w - 50)
        a, b = rng.randint(35, 60), rng.randint(h - 60, h - 35)
        start, end = ((x, b), (x, a)) if direction == "up" else ((x, a), (x, b))
    last = scene.time(scene.frame_count - 1)
    return [(0.0, *start), (t0, *start), (t1, *end), (last, *end)]


def _away_from(
    rng: random.Random, scene: Scene, busy: list[tuple[float, float, float, float]], margin: int = 45
) -> tuple[int, int]:
    """A point at least `margin` px from every busy segment (x0, y0, x1, y1)."""
    for _ in range(200):
        p = (rng.randint(40, scene.width - 40), rng.randint(40, scene.height - 40))
        if all(_dist_to_segment(p, seg) >= margin for seg in busy):
            return p
    return (scene.width // 2, scene.height // 2)


def _dist_to_segment(p: tuple[float, float], seg: tuple[float, float, float, float]) -> float:
    x, y = p
    x0, y0, x1, y1 = seg
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    a = 0.0 if length2 == 0 else max(0.0, min(1.0, ((x - x0) * dx + (y - y0) * dy) / length2))
    return math.hypot(x - (x0 + a * dx), y - (y0 + a * dy))


def _segment(keys: list[tuple[float, float, float]]) -> tuple[float, float, float, float]:
    return (keys[0][1], keys[0][2], keys[-1][1], keys[-1][2])


# --------------------------------------------------------------------------- task builders


def build_counting(rng: random.Random) -> tuple[Scene, Question]:
    scene = _base(rng, "counting", "count")
    colour, shape = rng.choice(sorted(COLOURS)), rng.choice(SHAPES)
    target = rng.randint(1, 5)
    # Distractors share the colour or the shape, so counting needs both attributes.
    near = [(c, shape) for c in sorted(COLOURS) if c != colour] + [(colour, s) for s in SHAPES if s != shape]
    n_distract = rng.randint(1, min(4, 9 - target))
    looks = [(colour, shape)] * target + [rng.choice(near) for _ in range(n_distract)]
    rng.shuffle(looks)
    spots = _grid_cells(rng, len(looks), scene)
    late_cut = scene.frame_count // 2
    for i, (look, xy) in enumerate(zip(looks, spots, strict=True)):
        thing = _static(f"obj{i + 1}", look, rng.choice((28, 32, 36, 40)), xy)
        if rng.random() < 0.5:
            # Objects that appear mid-video: one frame alone can undercount.
            thing.appears_at = scene.time(rng.randint(1, late_cut))
            scene.events.append({"t": round(thing.appears_at, 3), "type": "appears", "object": thing.id})
        scene.things.append(thing)

    counts: dict[str, int] = {}
    for thing in scene.things:
        counts[thing.look] = counts.get(thing.look, 0) + 1
    wanted = f"{colour} {shape}"
    late = [t for t in scene.things if t.appears_at > 0]
    summary = _join([_plural(k, look) for look, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))])
    caption = f"{summary[0].upper()}{summary[1:]} appear on a {scene.background} background"
    if late:
        caption += f"; {len(late)} of them appear{'s' if len(late) == 1 else ''} after the start."
    else:
        caption += ", all from the start."
    facts = [
        f"{_plural(k, look)} appear{'s' if k == 1 else ''} in the video."
        for look, k in sorted(counts.items())
    ]
    facts += [
        f"The {t.look} at ({t.keys[0][1]}, {t.keys[0][2]}) appears at {_secs(t.appears_at)}." for t in late
    ]
    facts.append(f"So the number of {wanted}s is {target}.")
    question = Question(
        problem=f"How many {wanted}s appear in the video?",
        solution=str(target),
        options=[],
        caption=caption,
        facts=facts,
    )
    return scene, question


def build_motion(rng: random.Random) -> tuple[Scene, Question]:
    if rng.random() < 0.5:
        return _motion_direction(rng)
    return _motion_first_mover(rng)


def _motion_direction(rng: random.Random) -> tuple[Scene, Question]:
    scene = _base(rng, "motion", "direction")
    direction = rng.choice(DIRECTIONS)
    looks = _looks(rng, 1 + rng.randint(1, 2))
    t0 = scene.time(_frame_between(rng, scene, 0.0, 0.25))
    t1 = scene.time(_frame_between(rng, scene, 0.7, 0.95))
    mover = Thing(
        "obj1",
        looks[0][1],
        looks[0][0],
        rng.choice((30, 36, 40)),
        _motion_keys(rng, scene, direction, None, t0, t1),
    )
    scene.things.append(mover)
    busy = [_segment(mover.keys)]
    for i, look in enumerate(looks[1:], start=2):
        xy = _away_from(rng, scene, busy)
        scene.things.append(_static(f"obj{i}", look, rng.choice((28, 32, 36)), xy))
        busy.append((xy[0], xy[1], xy[0], xy[1]))
    (_, x0, y0), (_, x1, y1) = mover.keys[1], mover.keys[2]
    scene.events += [
        {
            "t": round(t0, 3),
            "type": "starts_moving",
            "object": "obj1",
            "direction": direction,
            "from": [x0, y0],
            "to": [x1, y1],
        },
        {"t": round(t1, 3), "type": "stops_moving", "object": "obj1"},
    ]
    still = [t.look for t in scene.things[1:]]
    verb = "stays" if len(still) == 1 else "stay"
    caption = (
        f"{_a(mover.look).capitalize()} moves {_path_phrase(direction)} between {_secs(t0)} and {_secs(t1)} "
        f"while {_join(['the ' + s for s in still])} {verb} still."
    )
    options = _lettered(DIRECTIONS)
    facts = [
        f"At {_secs(t0)} the {mover.look} is at ({x0}, {y0}); at {_secs(t1)} it is at ({x1}, {y1}).",
        f"{'x' if direction in ('left', 'right') else 'y'} goes from "
        f"{x0 if direction in ('left', 'right') else y0} to {x1 if direction in ('left', 'right') else y1}, "
        f"so it moves {direction}.",
    ]
    letter = "ABCD"[DIRECTIONS.index(direction)]
    question = Question(f"In which direction does the {mover.look} move?", letter, options, caption, facts)
    return scene, question


def _motion_first_mover(rng: random.Random) -> tuple[Scene, Question]:
    scene = _base(rng, "motion", "first_mover")
    looks = _looks(rng, 2)
    gap = max(2, round(0.8 * scene.fps))  # starts at least 0.8 s apart: visible with 16 frames
    first = _frame_between(rng, scene, 0.0, 0.2)
    second = min(scene.frame_count - 4, first + gap + rng.randint(0, scene.fps // 2))
    lanes = [70, 170]
    rng.shuffle(lanes)
    end = scene.time(scene.frame_count - 2)
    starts = [scene.time(first), scene.time(second)]
    for i, (look, lane, start) in enumerate(zip(looks, lanes, starts, strict=True)):
        direction = rng.choice(("left", "right"))
        keys = _motion_keys(rng, scene, direction, lane, start, end)
        scene.things.append(Thing(f"obj{i + 1}", look[1], look[0], rng.choice((30, 36, 40)), keys))
        scene.events += [
            {
                "t": round(start, 3),
                "type": "starts_moving",
                "object": f"obj{i + 1}",
                "direction": direction,
                "from": [keys[1][1], keys[1][2]],
                "to": [keys[2][1], keys[2][2]],
            },
            {"t": round(end, 3), "type": "stops_moving", "object": f"obj{i + 1}"},
        ]
    early, late = scene.things
    order = [early, late]
    rng.shuffle(order)
    options = _lettered([f"The {t.look}" for t in order] + ["They start moving at the same time"])
    letter = "AB"[order.index(early)]
    caption = (
        f"{_a(early.look).capitalize()} starts moving at {_secs(starts[0])}, "
        f"then {_a(late.look)} starts moving at {_secs(starts[1])}."
    )
    facts = [
        f"The {early.look} starts moving at {_secs(starts[0])}.",
        f"The {late.look} is still until {_secs(starts[1])}.",
        f"So the {early.look} starts first.",
    ]
    return scene, Question("Which object starts moving first?", letter, options, caption, facts)


def build_ratio(rng: random.Random) -> tuple[Scene, Question]:
    if rng.random() < 0.5:
        return _ratio_size(rng)
    return _ratio_distance(rng)


def _ratio_size(rng: random.Random) -> tuple[Scene, Question]:
    scene = _base(rng, "ratio", "width")
    looks = _looks(rng, 2)
    size_a, size_b = rng.sample((24, 30, 36, 40, 48, 54, 60, 72), 2)
    spots = [(rng.randint(60, 110), rng.randint(70, 170)), (rng.randint(210, 260), rng.randint(70, 170))]
    rng.shuffle(spots)
    a = _static("obj1", looks[0], size_a, spots[0])
    b = _static("obj2", looks[1], size_b, spots[1])
    scene.things += [a, b]
    ratio = size_a / size_b
    caption = f"{_a(a.look).capitalize()} {size_a} px wide and {_a(b.look)} {size_b} px wide stay still."
    facts = [
        f"The {a.look} is {size_a} px wide.",
        f"The {b.look} is {size_b} px wide.",
        f"{size_a} / {size_b} = {_fmt_number(ratio)}.",
    ]
    problem = f"What is the ratio of the {a.look}'s width to the {b.look}'s width?"
    return scene, Question(problem, _fmt_number(ratio), [], caption, facts)


def _ratio_distance(rng: random.Random) -> tuple[Scene, Question]:
    scene = _base(rng, "ratio", "distance")
    looks = _looks(rng, 3)
    for _ in range(100):
        spots = _grid_cells(rng, 3, scene, jitter=12)
        d_ab, d_ac = math.dist(spots[0], spots[1]), math.dist(spots[0], spots[2])
        if abs(d_ab - d_ac) > 10:  # equal distances make a dull, guessable "1"
            break
    for i, (look, xy) in enumerate(zip(looks, spots, strict=True)):
        scene.things.append(_static(f"obj{i + 1}", look, rng.choice((28, 32, 36)), xy))
    a, b, c = scene.things
    ratio = d_ab / d_ac
    caption = f"{_a(a.look).capitalize()}, {_a(b.look)} and {_a(c.look)} stay still on a {scene.background} background."
    facts = [
        f"The {a.look} is at {spots[0]}, the {b.look} at {spots[1]}, the {c.look} at {spots[2]}.",
        f"Distance {a.look} to {b.look} = {d_ab:.1f} px; {a.look} to {c.look} = {d_ac:.1f} px.",
        f"{d_ab:.1f} / {d_ac:.1f} = {_fmt_number(ratio)}.",
    ]
    problem = (
        f"What is the ratio of the distance between the {a.look} and the {b.look} "
        f"to the distance between the {a.look} and the {c.look}?"
    )
    return scene, Question(problem, _fmt_number(ratio), [], caption, facts)


def build_ocr(rng: random.Random) -> tuple[Scene, Question]:
    scene = _base(rng, "ocr", "words")
    words = rng.sample(WORDS, rng.randint(2, 3))
    line = " ".join(words)
    scale = 1.2
    while _text_width(line, scale) > scene.width - 40 and scale > 0.5:
        scale = round(scale - 0.1, 2)
    x = (scene.width - _text_width(line, scale)) // 2
    y = rng.randint(130, 190)
    step = scene.frame_count // (len(words) + 1)
    times = [scene.time(i * step) for i in range(len(words))]
    ink = "white" if scene.background in DARK_BACKGROUNDS else "black"
    scene.caption_text = Caption(
        words=list(zip(times, words, strict=True)), x=x, y=y, scale=scale, colour=ink
    )
    for t, word in zip(times, words, strict=True):
        scene.events.append({"t": round(t, 3), "type": "text_appears", "text": word})
    # A small shape drifting along the top: motion the text question must look past.
    look = _looks(rng, 1)[0]
    direction = rng.choice(("left", "right"))
    drifter = Thing(
        "obj1",
        look[1],
        look[0],
        24,
        _motion_keys(rng, scene, direction, 40, 0.0, scene.time(scene.frame_count - 1)),
    )
    scene.things.append(drifter)
    caption = (
        f'The words {_join(words)} appear one by one in {ink} text, reading "{line}", '
        f"while {_a(drifter.look)} drifts {_path_phrase(direction)} along the top."
    )
    facts = [f"At {_secs(t)} the word {word} appears." for t, word in zip(times, words, strict=True)]
    facts.append(f'Read left to right, the text is "{line}".')
    problem = "What text appears in the video? Write the words in the order they appear."
    return scene, Question(problem, line, [], caption, facts)


def build_description(rng: random.Random) -> tuple[Scene, Question]:
    variant = rng.choice(("move_still", "colour_change", "appears"))
    scene = _base(rng, "description", variant)
    looks = _looks(rng, 2)
    size = rng.choice((32, 36, 40))
    if variant == "move_still":
        direction = rng.choice(DIRECTIONS)
        t0 = scene.time(_frame_between(rng, scene, 0.0, 0.2))
        t1 = scene.time(_frame_between(rng, scene, 0.75, 0.95))
        mover = Thing(
            "obj1", looks[0][1], looks[0][0], size, _motion_keys(rng, scene, direction, None, t0, t1)
        )
        still = _static("obj2", looks[1], size, _away_from(rng, scene, [_segment(mover.keys)]))
        scene.things += [mover, still]
        scene.events += [
            {
                "t": round(t0, 3),
                "type": "starts_moving",
                "object": "obj1",
                "direction": direction,
                "from": list(mover.keys[1][1:]),
                "to": list(mover.keys[2][1:]),
            },
            {"t": round(t1, 3), "type": "stops_moving", "object": "obj1"},
        ]
        sentence = f"{_a(mover.look).capitalize()} moves {_path_phrase(direction)} while {_a(still.look)} stays still."
        facts = [
            f"The {mover.look} moves {direction} from {_secs(t0)} to {_secs(t1)}.",
            f"The {still.look} never moves.",
        ]
    elif variant == "colour_change":
        spots = _grid_cells(rng, 2, scene)
        changer = _static("obj1", looks[0], size, spots[0])
        new_colour = rng.choice(
            [c for c in sorted(COLOURS) if c != changer.colour and (c, changer.shape) != looks[1]]
        )
        t = scene.time(_frame_between(rng, scene, 0.35, 0.65))
        changer.changes.append((t, "colour", new_colour))
        other = _static("obj2", looks[1], size, spots[1])
        scene.things += [changer, other]
        scene.events.append(
            {
                "t": round(t, 3),
                "type": "changes_colour",
                "object": "obj1",
                "from": changer.colour,
                "to": new_colour,
            }
        )
        sentence = f"{_a(changer.look).capitalize()} turns {new_colour} while {_a(other.look)} stays still."
        facts = [
            f"At {_secs(t)} the {changer.look} turns {new_colour}.",
            f"The {other.look} does not change.",
        ]
    else:
        spots = _grid_cells(rng, 2, scene)
        first = _static("obj1", looks[0], size, spots[0])
        newcomer = _static("obj2", looks[1], size, spots[1])
        newcomer.appears_at = scene.time(_frame_between(rng, scene, 0.35, 0.65))
        scene.things += [first, newcomer]
        scene.events.append({"t": round(newcomer.appears_at, 3), "type": "appears", "object": "obj2"})
        sentence = f"{_a(newcomer.look).capitalize()} appears next to {_a(first.look)}."
        facts = [
            f"At the start only the {first.look} is visible.",
            f"At {_secs(newcomer.appears_at)} the {newcomer.look} appears.",
        ]
    problem = "Describe what happens in the video in one sentence."
    return scene, Question(problem, sentence, [], sentence, facts)


def build_transformation(rng: random.Random) -> tuple[Scene, Question]:
    change = rng.choice(("colour", "size", "position", "shape"))
    scene = _base(rng, "transformation", change)
    looks = _looks(rng, rng.randint(2, 3))
    spots = _grid_cells(rng, len(looks), scene, cell=80, jitter=4)
    for i, (look, xy) in enumerate(zip(looks, spots, strict=True)):
        scene.things.append(_static(f"obj{i + 1}", look, rng.choice((30, 36, 40)), xy))
    target = rng.choice(scene.things)
    k = _frame_between(rng, scene, 0.35, 0.6)
    t = scene.time(k)
    taken = {(thing.colour, thing.shape) for thing in scene.things}
    # A new look must not copy another object's, or "the red circle" would name two things.
    new_shapes = [s for s in SHAPES if (target.colour, s) not in taken]
    if change == "shape" and not new_shapes:
        change = scene.variant = "size"

    if change == "colour":
        new = rng.choice([c for c in sorted(COLOURS) if (c, target.shape) not in taken])
        target.changes.append((t, "colour", new))
        event = {"type": "changes_colour", "from": target.colour, "to": new}
        truth = f"The {target.look} turned {new}"
    elif change == "shape":
        new = rng.choice(new_shapes)
        target.changes.append((t, "shape", new))
        event = {"type": "changes_shape", "from": target.shape, "to": new}
        truth = f"The {target.look} became a {new}"
    elif change == "size":
        grow = rng.random() < 0.5
        new = round(target.size * (1.6 if grow else 0.55))
        target.changes.append((t, "size", new))
        event = {"type": "changes_size", "from": target.size, "to": new}
        truth = f"The {target.look} became {'larger' if grow else 'smaller'}"
    else:
        x, y = target.keys[0][1], target.keys[0][2]
        room = {"left": x - 30, "right": scene.width - 30 - x, "up": y - 30, "down": scene.height - 30 - y}
        dist = rng.randint(60, 90)
        unit = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
        others = [(th.keys[0][1], th.keys[0][2]) for th in scene.things if th is not target]

        def clear(d: str) -> bool:
            dest = (x + unit[d][0] * dist, y + unit[d][1] * dist)
            return room[d] >= dist and all(math.dist(dest, o) >= 50 for o in others)

        fits = [d for d in DIRECTIONS if clear(d)]
        direction = rng.choice(fits) if fits else max(DIRECTIONS, key=lambda d: room[d])
        dist = min(dist, room[direction])
        dx, dy = unit[direction][0] * dist, unit[direction][1] * dist
        t_end = scene.time(min(scene.frame_count - 1, k + max(2, scene.fps // 2)))
        target.keys = [(0.0, x, y), (t, x, y), (t_end, x + dx, y + dy)]
        event = {
            "type": "moves",
            "direction": direction,
            "from": [x, y],
            "to": [x + dx, y + dy],
            "until": round(t_end, 3),
        }
        truth = f"The {target.look} moved {direction}"
    scene.events.append({"t": round(t, 3), "object": target.id, **event})

    distractors = _false_changes(rng, scene, target, change)
    options_text = [truth, *rng.sample(distractors, 3)]
    rng.shuffle(options_text)
    options = _lettered(options_text)
    letter = "ABCD"[options_text.index(truth)]
    others = [thing.look for thing in scene.things if thing is not target]
    caption = (
        f"{_join([_a(thing.look) for thing in scene.things]).capitalize()} sit on a {scene.background} background; "
        f"at {_secs(t)} {truth[0].lower()}{truth[1:]}."
    )
    facts = [
        f"First frame: {_join([f'the {th.look} at ({th.keys[0][1]}, {th.keys[0][2]}), {th.size} px' for th in scene.things])}.",
        f"At {_secs(t)}: {truth[0].lower()}{truth[1:]}.",
        f"Nothing else changes: {_join(['the ' + o for o in others])} stay{'s' if len(others) == 1 else ''} the same.",
    ]
    problem = "What changed between the first and the last frame of the video?"
    return scene, Question(problem, letter, options, caption, facts)


def _false_changes(rng: random.Random, scene: Scene, target: Thing, change: str) -> list[str]:
    """Plausible statements that are false for this scene (never the true change)."""
    out: list[str] = []
    for thing in scene.things:
        other_colour = rng.choice([c for c in sorted(COLOURS) if c != thing.colour])
        other_shape = rng.choice([s for s in SHAPES if s != thing.shape])
        candidates = {
            "colour": f"The {thing.look} turned {other_colour}",
            "shape": f"The {thing.look} became a {other_shape}",
            "size": f"The {thing.look} became {rng.choice(('larger', 'smaller'))}",
            "position": f"The {thing.look} moved {rng.choice(DIRECTIONS)}",
        }
        for kind, text in candidates.items():
            if thing is target and kind == change:
                continue  # the true change with a wrong value would be a trick, not a distractor
            out.append(text)
    out.append("Nothing changed")
    return sorted(set(out))


BUILDERS = {
    "counting": build_counting,
    "motion": build_motion,
    "ratio": build_ratio,
    "ocr": build_ocr,
    "description": build_description,
    "transformation": build_transformation,
}
