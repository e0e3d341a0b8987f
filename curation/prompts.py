"""Prompt sets: one folder per LLM stage, loaded as files and versioned by content hash.

A prompt folder holds `system.md` (the system message, sent verbatim), `user.jinja` (the user
message, a Jinja2 template rendered with `StrictUndefined`, so a missing variable is an error and
never an empty string in a paid request) and any stage-specific files (`answer_format/<slug>.txt`,
`user_image.jinja`, `repair.jinja`, ...). Nothing about a prompt lives in Python code.

The hash covers every file of the folder (relative names and bytes): editing any of them changes
`PromptSet.hash`, which enters the stage's content key, so exactly that stage and its descendants
rerun. Dot-files (editor swap files, `.DS_Store`) are ignored so they cannot change a key.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from curation.records import normalize_problem_type

# Repository default prompts (prompts/<stage>/); configs may point anywhere else.
PROMPTS_ROOT = Path(__file__).resolve().parents[1] / "prompts"

SYSTEM_FILE = "system.md"
USER_FILE = "user.jinja"


def _jinja_env() -> jinja2.Environment:
    # StrictUndefined: a typo in a template variable fails the render (and the test) instead of
    # silently sending an empty field. No autoescape: these are prompts, not HTML.
    return jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_ENV = _jinja_env()


@dataclass(frozen=True, eq=False)
class PromptSet:
    """The files of one prompt folder, with helpers to render them.

    `files` maps relative POSIX paths to text; `system` is `system.md`; `user_template` is
    `user.jinja` compiled; `hash` is the first 12 hex digits of sha256 over the files.
    """

    name: str
    path: Path
    system: str
    user_template: jinja2.Template
    files: dict[str, str] = field(repr=False)
    hash: str = ""
    # Compiled extra templates, filled on first use (the set itself stays immutable).
    _compiled: dict[str, jinja2.Template] = field(default_factory=dict, repr=False)

    def text(self, name: str) -> str:
        """Raw text of one file of the set (KeyError naming the set when it is missing)."""
        try:
            return self.files[name]
        except KeyError:
            raise KeyError(f"prompt set {self.name!r} ({self.path}) has no file {name!r}") from None

    def has(self, name: str) -> bool:
        return name in self.files

    def template(self, name: str) -> jinja2.Template:
        if name not in self._compiled:
            self._compiled[name] = _ENV.from_string(self.text(name))
        return self._compiled[name]

    def render(self, name: str, **context: Any) -> str:
        """Render the template file `name` with `context` (StrictUndefined)."""
        return self.template(name).render(**context).strip()

    def render_user(self, **context: Any) -> str:
        return self.user_template.render(**context).strip()


def _prompt_files(folder: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts) or not p.is_file():
            continue
        files[rel.as_posix()] = p.read_bytes()
    return files


def hash_files(files: dict[str, bytes]) -> str:
    """sha256 over (name, length, bytes) of every file in sorted name order; first 12 hex digits.

    Length-prefixing keeps the encoding unambiguous (moving bytes from one file to the next, or
    renaming a file, always changes the hash).
    """
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        encoded = name.encode("utf-8")
        h.update(len(encoded).to_bytes(8, "big") + encoded)
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()[:12]


def prompt_hash(path: str | Path) -> str:
    """The hash `load_prompt(path).hash` would have, without compiling anything.

    Called once per row by `key_material()`, so it is cached on the files' (name, size, mtime):
    a stat per file instead of reading and hashing them; any edit changes the mtime and rehashes.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"prompt folder {folder} does not exist")
    signature = tuple(
        (p.relative_to(folder).as_posix(), st.st_size, st.st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (st := p.stat())
    )
    return _cached_hash(str(folder.resolve()), signature)


@lru_cache(maxsize=64)
def _cached_hash(folder: str, signature: tuple[tuple[str, int, int], ...]) -> str:
    return hash_files(_prompt_files(Path(folder)))


def load_prompt(path: str | Path) -> PromptSet:
    """Load a prompt folder (`system.md` and `user.jinja` required)."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"prompt folder {folder} does not exist")
    raw = _prompt_files(folder)
    for required in (SYSTEM_FILE, USER_FILE):
        if required not in raw:
            raise FileNotFoundError(f"prompt folder {folder} lacks {required}")
    try:
        files = {name: data.decode("utf-8") for name, data in raw.items()}
    except UnicodeDecodeError as exc:
        raise ValueError(f"prompt folder {folder} holds a file that is not UTF-8: {exc}") from exc
    # Compile every template now, so a syntax error shows at load time, not on the first row.
    for name, text in files.items():
        if name.endswith(".jinja"):
            try:
                _ENV.parse(text)
            except jinja2.TemplateSyntaxError as exc:
                raise ValueError(f"{folder / name}:{exc.lineno}: {exc.message}") from exc
    return PromptSet(
        name=folder.name,
        path=folder,
        system=files[SYSTEM_FILE].strip(),
        user_template=_ENV.from_string(files[USER_FILE]),
        files=files,
        hash=hash_files(raw),
    )


def problem_type_slug(problem_type: str) -> str:
    """File-name slug of a problem type: "multiple choice" -> "multiple-choice", "OCR" -> "ocr"."""
    canonical = normalize_problem_type(problem_type)
    if canonical is None:
        raise ValueError(f"unknown problem type {problem_type!r}")
    return canonical.lower().replace(" ", "-")


def answer_format(prompt: PromptSet, problem_type: str) -> str:
    """The answer-format instruction for `problem_type` (`answer_format/<slug>.txt`)."""
    return prompt.text(f"answer_format/{problem_type_slug(problem_type)}.txt").strip()


def stage_marker(stage: str) -> str:
    """The first line of every stage's system prompt; the simulated endpoint routes on it."""
    return f"[videorft-stage: {stage}]"


def format_timestamp(seconds: float, decimals: int = 0) -> str:
    """Seconds -> "HH:MM:SS" (with `decimals` fractional digits when > 0)."""
    if decimals <= 0:
        # Floor, like a clock: at 1 fps the frames at 0.5 s, 1.5 s, 2.5 s read 00:00:00, 01, 02.
        total = int(math.floor(seconds + 1e-6))
        return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"
    scale = 10**decimals
    ticks = int(round(seconds * scale))
    whole, frac = divmod(ticks, scale)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}.{frac:0{decimals}d}"


def frame_timestamps(seconds: list[float]) -> list[str]:
    """HH:MM:SS labels for sampled frame times, as coarse as keeps them distinct.

    VideoRFT samples at 1 fps, where whole seconds suffice; denser sampling gets tenths (then
    hundredths) so that no two frames share a label.
    """
    for decimals in (0, 1, 2, 3):
        labels = [format_timestamp(t, decimals) for t in seconds]
        if len(set(labels)) == len(labels):
            return labels
    return labels
