"""Read a synthetic sample's ground truth (`meta`) as a scene the simulated endpoint can describe.

The synthetic generator's `meta` holds the scene: objects with their positions over time, events,
on-screen text, background, duration. This module reads it tolerantly (several spellings of the
same idea are accepted) so the simulator keeps working while the generator evolves, and turns it
into plain-language facts at a given time: where each object is, where it is heading, what
happens, what text is visible.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

# (t, x, y) with x, y normalised to [0, 1] (0, 0 = top left).
Point = tuple[float, float, float]


@dataclass
class SceneObject:
    name: str
    color: str = ""
    shape: str = ""
    track: list[Point] = field(default_factory=list)
    start: float | None = None
    end: float | None = None
    id: str = ""
    # (time, attribute, value): the object's colour/shape/size from that time on.
    changes: list[tuple[float, str, Any]] = field(default_factory=list)

    def name_at(self, t: float) -> str:
        """What the object looks like at t ("blue square" after a red square turned blue)."""
        colour, shape = self.color, self.shape
        for when, attr, value in self.changes:
            if t + 1e-6 >= when:
                if attr == "colour":
                    colour = str(value)
                elif attr == "shape":
                    shape = str(value)
        if colour == self.color and shape == self.shape:
            return self.name
        return " ".join(p for p in (colour, shape) if p) or self.name

    def visible_at(self, t: float) -> bool:
        if self.start is not None and t < self.start - 1e-6:
            return False
        return not (self.end is not None and t > self.end + 1e-6)

    def position_at(self, t: float) -> tuple[float, float] | None:
        if not self.track:
            return None
        if t <= self.track[0][0]:
            return self.track[0][1], self.track[0][2]
        for (t0, x0, y0), (t1, x1, y1) in zip(self.track, self.track[1:], strict=False):
            if t0 <= t <= t1:
                w = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return x0 + w * (x1 - x0), y0 + w * (y1 - y0)
        return self.track[-1][1], self.track[-1][2]

    def motion_at(self, t: float, window: float = 0.5) -> str:
        """Direction of motion around t: "moving right", "moving up and left", ... or "staying still"."""
        a, b = self.position_at(t - window), self.position_at(t + window)
        if a is None or b is None:
            return "staying still"
        return motion_phrase(b[0] - a[0], b[1] - a[1])

    def overall_motion(self) -> str:
        if len(self.track) < 2:
            return "staying still"
        return motion_phrase(self.track[-1][1] - self.track[0][1], self.track[-1][2] - self.track[0][2])


@dataclass
class SceneEvent:
    t: float
    description: str


@dataclass
class Scene:
    task: str = ""
    background: str = ""
    duration: float = 1.0
    objects: list[SceneObject] = field(default_factory=list)
    events: list[SceneEvent] = field(default_factory=list)
    text: str = ""
    text_start: float | None = None
    text_end: float | None = None
    # (time, word) when on-screen text builds up word by word ("text_appears" events).
    text_words: list[tuple[float, str]] = field(default_factory=list)
    # The generator's own one-sentence description and the facts that lead to the answer.
    reference_caption: str = ""
    facts: list[str] = field(default_factory=list)

    def text_at(self, t: float) -> str:
        """The on-screen text visible at t ("" when none)."""
        if not self.text:
            return ""
        if self.text_words:
            return " ".join(w for when, w in self.text_words if t + 1e-6 >= when)
        if self.text_start is not None and t < self.text_start - 1e-6:
            return ""
        if self.text_end is not None and t > self.text_end + 1e-6:
            return ""
        return self.text

    def text_visible_at(self, t: float) -> bool:
        return bool(self.text_at(t))


def motion_phrase(dx: float, dy: float, still: float = 0.03) -> str:
    parts = []
    if abs(dy) >= still:
        parts.append("down" if dy > 0 else "up")
    if abs(dx) >= still:
        parts.append("right" if dx > 0 else "left")
    return "moving " + " and ".join(parts) if parts else "staying still"


def region_phrase(x: float, y: float) -> str:
    """Thirds of the frame: "upper left", "center", "lower right", ..."""
    col = "left" if x < 1 / 3 else ("right" if x > 2 / 3 else "")
    row = "upper" if y < 1 / 3 else ("lower" if y > 2 / 3 else "")
    if not col and not row:
        return "center"
    if not row:
        return f"{col} side"
    if not col:
        return f"{row} middle"
    return f"{row} {col}"


def coarse_time(t: float, duration: float) -> str:
    """VideoRFT asks for coarse time words, never timestamps."""
    if duration <= 0:
        return "during the clip"
    frac = t / duration
    if frac < 1 / 3:
        return "at the beginning"
    if frac < 2 / 3:
        return "around the middle"
    return "toward the end"


def hhmmss(t: float) -> str:
    s = max(0, int(math.floor(t + 1e-6)))
    return f"{s // 3600:02d}:{(s % 3600) // 60:02d}:{s % 60:02d}"


# ---- tolerant reading of meta -------------------------------------------------------------------


def _first(d: dict[str, Any], *names: str, default: Any = None) -> Any:
    for n in names:
        if n in d and d[n] is not None:
            return d[n]
    return default


def _num(value: Any, default: float | None = None) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _color_name(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and len(value) >= 3:
        return "rgb(" + ",".join(str(int(v)) for v in value[:3]) + ")"
    return ""


def _raw_points(obj: dict[str, Any], meta: dict[str, Any], key: str) -> list[Any]:
    pts = _first(
        obj, "track", "positions", "trajectory", "path", "positions_over_time", "positions over time"
    )
    if pts is None:
        table = _first(meta, "positions", "positions_over_time", "positions over time", "tracks", default={})
        if isinstance(table, dict):
            pts = table.get(key)
    if pts is None and _num(obj.get("x")) is not None and _num(obj.get("y")) is not None:
        pts = [[0.0, obj["x"], obj["y"]]]
    return pts if isinstance(pts, list) else []


def _point(p: Any, index: int, fps: float) -> tuple[float, float, float] | None:
    if isinstance(p, dict):
        t = _num(_first(p, "t", "time", "timestamp", "s"))
        if t is None:
            frame = _num(_first(p, "frame", "f"))
            t = frame / fps if frame is not None else index / fps
        x, y = _num(_first(p, "x", "cx")), _num(_first(p, "y", "cy"))
        if x is None or y is None:
            pos = _first(p, "pos", "position", "xy", "center")
            if isinstance(pos, (list, tuple)) and len(pos) >= 2:
                x, y = _num(pos[0]), _num(pos[1])
    elif isinstance(p, (list, tuple)) and len(p) >= 3:
        t, x, y = _num(p[0]), _num(p[1]), _num(p[2])
    elif isinstance(p, (list, tuple)) and len(p) == 2:
        t, x, y = index / fps, _num(p[0]), _num(p[1])
    else:
        return None
    if t is None or x is None or y is None:
        return None
    return t, x, y


_CHANGE_ATTR = {
    "changes_colour": "colour",
    "changes_color": "colour",
    "changes_shape": "shape",
    "changes_size": "size",
}


def describe_event(ev: dict[str, Any], obj: SceneObject | None, t: float) -> str:
    """A plain sentence fragment for a typed event ("the red circle starts moving left")."""
    kind = str(_first(ev, "type", "kind", default="") or "")
    who = f"the {obj.name_at(t - 1e-3)}" if obj else "an object"
    direction = ev.get("direction")
    if kind == "appears":
        return f"{who} appears"
    if kind == "disappears":
        return f"{who} disappears"
    if kind == "starts_moving":
        return f"{who} starts moving {direction}" if direction else f"{who} starts moving"
    if kind == "stops_moving":
        return f"{who} stops moving"
    if kind == "moves":
        return f"{who} moves {direction}" if direction else f"{who} moves"
    if kind in ("changes_colour", "changes_color"):
        return f"{who} turns {ev.get('to')}"
    if kind == "changes_shape":
        return f"{who} becomes a {ev.get('to')}"
    if kind == "changes_size":
        try:
            grows = float(ev.get("to")) > float(ev.get("from"))
        except (TypeError, ValueError):
            return f"{who} changes size"
        return f"{who} becomes {'larger' if grows else 'smaller'}"
    if kind == "text_appears":
        return f'the word "{ev.get("text")}" appears on screen'
    parts = [str(ev.get(k)) for k in ("subject", "action") if ev.get(k) is not None]
    return " ".join(parts) or (f"{who} {kind.replace('_', ' ')}" if kind else "something changes")


def coarsen_times(text: str, duration: float) -> str:
    """Replace exact times ("at 1.3 s", "until 2 s") with coarse ones, as VideoRFT's CoT must."""

    def at(m: re.Match[str]) -> str:
        phrase = coarse_time(float(m.group(2)), duration)
        return phrase[0].upper() + phrase[1:] if m.group(1) == "A" else phrase

    def bare(m: re.Match[str]) -> str:
        return "the " + {"at the beginning": "beginning", "around the middle": "middle"}.get(
            coarse_time(float(m.group(1)), duration), "end"
        )

    text = re.sub(r"\b([Aa])t (\d+(?:\.\d+)?) s\b", at, text)
    return re.sub(r"\b(\d+(?:\.\d+)?) s\b", bare, text)


def scene_from_meta(meta: dict[str, Any]) -> Scene:
    """Normalise a synthetic sample's `meta` into a Scene (missing parts stay empty)."""
    meta = meta or {}
    fps = _num(meta.get("fps"), 1.0) or 1.0
    width = _num(_first(meta, "width", "w"))
    height = _num(_first(meta, "height", "h"))
    objects: list[SceneObject] = []
    raw_objects = meta.get("objects") or []
    if isinstance(raw_objects, dict):
        raw_objects = [{"name": k, **(v if isinstance(v, dict) else {})} for k, v in raw_objects.items()]
    for i, obj in enumerate(raw_objects):
        if isinstance(obj, str):
            obj = {"name": obj}
        if not isinstance(obj, dict):
            continue
        color = _color_name(_first(obj, "color", "colour", "color_name", default=""))
        shape = str(_first(obj, "shape", "kind", "type", "category", default="") or "")
        name = str(_first(obj, "name", "label", default="") or "").strip()
        if not name:
            name = " ".join(p for p in (color, shape) if p) or f"object {i + 1}"
        key = str(_first(obj, "id", "name", default=i))
        track = [pt for j, p in enumerate(_raw_points(obj, meta, key)) if (pt := _point(p, j, fps))]
        track.sort(key=lambda p: p[0])
        objects.append(
            SceneObject(
                id=str(obj.get("id", "")),
                name=name,
                color=color,
                shape=shape,
                track=track,
                start=_num(_first(obj, "start", "appear", "appears_at", "t_start", "enter")),
                end=_num(_first(obj, "end", "disappear", "disappears_at", "t_end", "exit")),
            )
        )
    # Positions in pixels are normalised by the frame size (or the largest coordinate seen).
    coords = [c for o in objects for (_, x, y) in o.track for c in (x, y)]
    if coords and max(abs(c) for c in coords) > 1.0:
        sx = width or max(abs(x) for o in objects for (_, x, _) in o.track) or 1.0
        sy = height or max(abs(y) for o in objects for (_, _, y) in o.track) or 1.0
        for o in objects:
            o.track = [(t, x / sx, y / sy) for (t, x, y) in o.track]

    by_id = {o.id: o for o in objects if o.id}
    events: list[SceneEvent] = []
    text_words: list[tuple[float, str]] = []
    for i, ev in enumerate(meta.get("events") or []):
        if isinstance(ev, str):
            events.append(SceneEvent(t=float(i), description=ev))
            continue
        if not isinstance(ev, dict):
            continue
        t = _num(_first(ev, "t", "time", "start", "timestamp"))
        if t is None:
            frame = _num(ev.get("frame"))
            t = frame / fps if frame is not None else 0.0
        obj = by_id.get(str(ev.get("object", "")))
        kind = str(_first(ev, "type", "kind", default="") or "")
        if obj is not None and kind in _CHANGE_ATTR:
            obj.changes.append((t, _CHANGE_ATTR[kind], ev.get("to")))
        if kind == "text_appears" and ev.get("text"):
            text_words.append((t, str(ev["text"])))
        desc = _first(ev, "description", "desc", "what") or describe_event(ev, obj, t)
        events.append(SceneEvent(t=t, description=str(desc)))
    events.sort(key=lambda e: e.t)
    for o in objects:
        o.changes.sort(key=lambda c: c[0])

    duration = _num(_first(meta, "duration", "duration_s", "length_s"))
    if duration is None:
        frames = _num(_first(meta, "frame_count", "num_frames", "frames"))
        ends = [p[0] for o in objects for p in o.track] + [e.t for e in events]
        duration = frames / fps if frames else (max(ends) if ends else 1.0)

    text, text_start, text_end = "", None, None
    raw_text = meta.get("text")
    if isinstance(raw_text, str):
        text = raw_text
    elif isinstance(raw_text, dict):
        text = str(_first(raw_text, "content", "text", "value", default="") or "")
        text_start = _num(_first(raw_text, "start", "t_start", "appear"))
        text_end = _num(_first(raw_text, "end", "t_end", "disappear"))
    elif isinstance(raw_text, list):
        text = " ".join(
            str(t.get("content", t.get("text", "")) if isinstance(t, dict) else t) for t in raw_text
        )

    background = _first(meta, "background", "background_color", "bg", default="")
    if isinstance(background, dict):
        background = _first(background, "name", "color", "kind", default="")
    facts = [str(f) for f in meta.get("facts") or [] if f]
    return Scene(
        text_words=sorted(text_words),
        reference_caption=str(meta.get("caption") or ""),
        facts=facts,
        task=str(meta.get("task") or ""),
        background=_color_name(background) if not isinstance(background, str) else background,
        duration=max(float(duration), 0.0),
        objects=objects,
        events=events,
        text=text.strip(),
        text_start=text_start,
        text_end=text_end,
    )


def objects_at(scene: Scene, t: float) -> list[tuple[SceneObject, str, str]]:
    """(object, region, motion) for every object visible at t."""
    out = []
    for o in scene.objects:
        if not o.visible_at(t):
            continue
        pos = o.position_at(t)
        region = region_phrase(*pos) if pos else "frame"
        out.append((o, region, o.motion_at(t)))
    return out


def events_near(scene: Scene, t: float, window: float = 0.5) -> list[SceneEvent]:
    return [e for e in scene.events if abs(e.t - t) <= window]


def spatial_relations(visible: list[tuple[SceneObject, str, str]], t: float) -> list[str]:
    rels = []
    for i, (a, _, _) in enumerate(visible):
        for b, _, _ in visible[i + 1 :]:
            pa, pb = a.position_at(t), b.position_at(t)
            if pa is None or pb is None:
                continue
            dx, dy = pb[0] - pa[0], pb[1] - pa[1]
            na, nb = a.name_at(t), b.name_at(t)
            if abs(dx) >= abs(dy):
                rels.append(f"{na} left of {nb}" if dx > 0 else f"{na} right of {nb}")
            else:
                rels.append(f"{na} above {nb}" if dy > 0 else f"{na} below {nb}")
    return rels
