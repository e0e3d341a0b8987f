"""Evaluation prompts: eval_bench.py's (the benchmarks' default) or ours (training's), and the media check.

Styles (`EvalArguments.prompt_style`):
- `eval_bench`: VideoRFT's `src/eval_bench.py` (bba6099): one user turn, no system prompt, the media,
  then `problem + "\\n" + option lines` (multiple choice) + "\\n" + the instruction + the answer-format
  sentence (`prompts/eval_bench/`). The default for benchmark files, so numbers are comparable.
- `eval_bench_videor1`: Video-R1's `src/eval_bench.py` (59d65c3): the same, with `problem + "Options:\\n"`.
- `train`: the conversation training used (system prompt + `training.data.user_text`), the default for
  held-out rows of a published set (how the model was trained).
- `auto`: `eval_bench` for Video-R1 evaluation files, `train` for published sets.

Never a video question without its video: `EvalPrompter.build` raises `EvalMediaError` when a row's
media cannot be resolved, found or decoded, and checks that the conversation it returns carries a
media part of the row's `data_type`, so no code path can score a question the model did not see.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from curation.records import MULTIPLE_CHOICE, normalize_problem_type
from training.data import PromptConfig, answer_format_file, build_messages, media_parts, prompt_hashes
from training.video_io import MediaLoader

REPO_ROOT = Path(__file__).resolve().parents[1]
EVAL_BENCH_DIR = REPO_ROOT / "prompts" / "eval_bench"
PROMPT_STYLES: tuple[str, ...] = ("auto", "eval_bench", "eval_bench_videor1", "train")
# What each eval_bench.py puts between the problem and the option lines (see prompts/eval_bench/README.md).
_OPTIONS_PREFIX = {"eval_bench": "\n", "eval_bench_videor1": "Options:\n"}


class EvalMediaError(FileNotFoundError):
    """A row's media is missing or undecodable. A FileNotFoundError, so the CLI reports it as a user
    error (one line, exit status 2) instead of a traceback."""


@lru_cache(maxsize=16)
def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip()


def resolve_style(style: str, default: str) -> str:
    if style not in PROMPT_STYLES:
        raise ValueError(f"prompt_style must be one of {PROMPT_STYLES}, got {style!r}")
    return default if style == "auto" else style


def eval_bench_question(row: dict[str, Any], style: str = "eval_bench") -> str:
    """The `question` eval_bench.py formats into its template: options appended for multiple choice."""
    problem = str(row.get("problem") or "")
    if normalize_problem_type(row.get("problem_type")) != MULTIPLE_CHOICE:
        return problem
    return problem + _OPTIONS_PREFIX[style] + "".join(f"{op}\n" for op in row.get("options") or [])


def eval_bench_text(row: dict[str, Any], style: str = "eval_bench", prompt_dir: Path = EVAL_BENCH_DIR) -> str:
    """The user text eval_bench.py sends: question, newline, instruction, one space, answer format."""
    instruction = _read(str(prompt_dir / "instruction.txt"))
    suffix = _read(str(answer_format_file(str(row.get("problem_type")), prompt_dir / "answer_format")))
    return f"{eval_bench_question(row, style)}\n{instruction} {suffix}"


def eval_bench_hashes(prompt_dir: Path = EVAL_BENCH_DIR) -> dict[str, str]:
    files = [prompt_dir / "instruction.txt", *sorted((prompt_dir / "answer_format").glob("*.txt"))]
    return {
        f.relative_to(prompt_dir).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in files
    }


@dataclass
class PreparedPrompt:
    """One row's conversation (plain Python, media decoded) and its video metadata, ready to generate."""

    row: dict[str, Any]
    messages: list[dict[str, Any]]
    video_metadata: dict[str, Any] | None = None
    media: list[dict[str, Any]] = field(default_factory=list)


def describe_row(row: dict[str, Any], source: str = "") -> str:
    pid = row.get("problem_id")
    where = f"{source} row {row.get('index')}" if source else f"row {row.get('index')}"
    return where + (f" (problem_id {pid})" if pid is not None else "")


class EvalPrompter:
    """Builds each row's conversation in one prompt style, with its media loaded through `loader`."""

    def __init__(
        self,
        loader: MediaLoader,
        style: str,
        prompts: PromptConfig | None = None,
        *,
        frames_as_images: bool = False,
        source: str = "",
    ):
        if style not in PROMPT_STYLES[1:]:
            raise ValueError(f"prompt style must be one of {PROMPT_STYLES[1:]}, got {style!r}")
        self.loader = loader
        self.style = style
        self.prompts = prompts or PromptConfig()
        self.frames_as_images = frames_as_images
        self.source = source

    def media_file(self, row: dict[str, Any]) -> Path:
        """The resolved media file of a row (raises EvalMediaError when there is none or it escapes)."""
        media_path = row.get("media_path")
        if not media_path:
            raise EvalMediaError(f"{describe_row(row, self.source)}: no media path")
        try:
            return self.loader.path(str(media_path))
        except ValueError as exc:
            raise EvalMediaError(f"{describe_row(row, self.source)}: {exc}") from None

    def missing_media(self, row: dict[str, Any]) -> str | None:
        """Why the row's media file cannot be opened ("" when it can); a stat, no decoding."""
        try:
            path = self.media_file(row)
        except EvalMediaError as exc:
            return str(exc)
        if not path.is_file():
            return f"{describe_row(row, self.source)}: {row.get('data_type', 'media')} {row.get('media_path')} not found at {path}"
        return None

    def build(self, row: dict[str, Any]) -> PreparedPrompt:
        self.media_file(row)
        try:
            parts, metadata = media_parts(row, self.loader, frames_as_images=self.frames_as_images)
        except Exception as exc:  # noqa: BLE001 - any decoder error means the model cannot see the media
            raise EvalMediaError(
                f"{describe_row(row, self.source)}: cannot load {row.get('media_path')}: {type(exc).__name__}: {exc}"
            ) from exc
        self._check_media(row, parts)
        if self.style == "train":
            messages = build_messages(row, parts, prompts=self.prompts)
        else:
            text = eval_bench_text(row, self.style)
            messages = [{"role": "user", "content": [*parts, {"type": "text", "text": text}]}]
        return PreparedPrompt(row=row, messages=messages, video_metadata=metadata, media=parts)

    def _check_media(self, row: dict[str, Any], parts: list[dict[str, Any]]) -> None:
        data_type = str(row.get("data_type") or "video").lower()
        wanted = "image" if data_type == "image" or self.frames_as_images else "video"
        if not any(p.get("type") == wanted and p.get(wanted) is not None for p in parts):
            raise EvalMediaError(f"{describe_row(row, self.source)}: the prompt would carry no {data_type}")

    def describe(self) -> dict[str, Any]:
        """What the tables say about the prompts used."""
        if self.style == "train":
            return {
                "style": "train",
                "system_prompt": self.prompts.system_prompt,
                "hashes": prompt_hashes(self.prompts.system_prompt_path, self.prompts.answer_format_dir),
            }
        return {
            "style": self.style,
            "template": eval_bench_text(
                {"problem": "<question>", "problem_type": MULTIPLE_CHOICE, "options": ["A. …", "B. …"]},
                self.style,
            ),
            "hashes": eval_bench_hashes(),
        }
