"""Published rows → conversations, for SFT, GRPO and evaluation (one prompt, one layout).

Rows (published CoT set; the RL set is the same without `process`):
`id`, `media_path` (relative to a media root), `data_type` ("video" | "image"), `problem`,
`options` (list of "A. text" lines, multiple choice only), `problem_type` (Video-R1 spelling),
`process` ("<think>…</think>"), `solution` ("<answer>…</answer>"), `data_source`.

The conversation, everywhere:
- system: `prompts/train/system.txt` (VideoRFT used three different system prompts for SFT, RL and
  evaluation; we use one),
- user: the media part, then `problem` (+ the option lines for multiple choice, unless the problem
  already lists them), then the answer-format sentence of the row's problem type
  (`prompts/train/answer_format/<type>.txt`),
- assistant (SFT target): `process + "\\n" + solution`, as VideoRFT's `sft_video.py`.

Arrow pitfall (ENVIRONMENT.md): message parts stored in a `datasets` column come back with `None`
keys on every part and the Qwen template then renders every text part as a video. So datasets only
ever hold flat columns; conversations with media are built here, at collate / prompt time, as plain
Python objects (`build_messages`, `SFTCollator`, `grpo_transform`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from curation.records import MULTIPLE_CHOICE, normalize_problem_type
from training.media_checks import MediaSkips, RowReplacer, keep_or_replace, replacing_transform
from training.video_io import MediaLoader

REPO_ROOT = Path(__file__).resolve().parents[1]
PROMPTS_DIR = REPO_ROOT / "prompts" / "train"
SYSTEM_PROMPT_FILE = PROMPTS_DIR / "system.txt"
ANSWER_FORMAT_DIR = PROMPTS_DIR / "answer_format"

_ANSWER_RE = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)
_OPTION_LINE_RE = re.compile(r"^\s*\(?([A-Z])[.)]\s", re.MULTILINE)

MEDIA_COLUMNS = ("media_path", "data_type")


# ---- prompts ------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip()


def load_system_prompt(path: str | Path | None = None) -> str:
    return _read(str(path or SYSTEM_PROMPT_FILE))


def answer_format_file(problem_type: str, answer_format_dir: str | Path | None = None) -> Path:
    canonical = normalize_problem_type(problem_type)
    if canonical is None:
        raise ValueError(f"unknown problem type {problem_type!r}")
    name = re.sub(r"[\s\-]+", "_", canonical.lower())
    return Path(answer_format_dir or ANSWER_FORMAT_DIR) / f"{name}.txt"


def answer_format_suffix(problem_type: str, answer_format_dir: str | Path | None = None) -> str:
    return _read(str(answer_format_file(problem_type, answer_format_dir)))


def prompt_hashes(
    system_prompt_path: str | Path | None = None, answer_format_dir: str | Path | None = None
) -> dict[str, str]:
    """Content hashes of the training prompts, recorded with every run (prompts are versioned by content)."""
    files = [Path(system_prompt_path or SYSTEM_PROMPT_FILE)]
    files += sorted(Path(answer_format_dir or ANSWER_FORMAT_DIR).glob("*.txt"))
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in files}


@dataclass(frozen=True)
class PromptConfig:
    """Where the system prompt and the answer-format sentences come from (defaults: the repo files)."""

    system_prompt_path: str | None = None
    answer_format_dir: str | None = None

    @property
    def system_prompt(self) -> str:
        return load_system_prompt(self.system_prompt_path)

    def suffix(self, problem_type: str) -> str:
        return answer_format_suffix(problem_type, self.answer_format_dir)


# ---- rows → text ----------------------------------------------------------------------------------


def bare_answer(solution: str) -> str:
    """The answer inside `<answer>…</answer>` (published rows), or the string itself (bare solutions)."""
    match = _ANSWER_RE.search(solution or "")
    return match.group(1).strip() if match else (solution or "").strip()


def user_text(row: dict[str, Any], prompts: PromptConfig | None = None) -> str:
    """Problem (+ option lines for multiple choice) + the answer-format sentence."""
    prompts = prompts or PromptConfig()
    problem = (row.get("problem") or "").strip()
    parts = [problem]
    options = [o for o in (row.get("options") or []) if o]
    ptype = normalize_problem_type(row.get("problem_type")) or row.get("problem_type")
    # VideoRFT's files embed the options in `problem`; Video-R1's keep them apart. Never list them twice.
    if ptype == MULTIPLE_CHOICE and options and len(_OPTION_LINE_RE.findall(problem)) < len(options):
        parts.append("\n".join(str(o).strip() for o in options))
    parts.append(prompts.suffix(ptype))
    return "\n".join(parts)


def assistant_target(row: dict[str, Any]) -> str:
    """SFT target: `process + "\\n" + solution` (VideoRFT's sft_video.py)."""
    process = (row.get("process") or "").strip()
    solution = (row.get("solution") or "").strip()
    if not solution.startswith("<answer>"):
        solution = f"<answer>{solution}</answer>"
    return f"{process}\n{solution}" if process else solution


def media_parts(
    row: dict[str, Any],
    loader: MediaLoader | None,
    *,
    frames_as_images: bool = False,
    reference_only: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The content parts for a row's media, and the video metadata (None for images / no media).

    - video, default: one `{"type": "video", "video": frames}` part (frames (T, H, W, 3) uint8);
    - video, `frames_as_images`: one image part per sampled frame (stock TRL image path; no temporal
      M-RoPE, about 2x the visual tokens);
    - image: one image part;
    - `reference_only`: parts carry the resolved file path instead of pixels (GRPO prompts: cheap to
      copy, log and compare; the trainer decodes through the same cached loader).
    """
    media_path = row.get("media_path")
    if not media_path or loader is None:
        return [], None
    data_type = (row.get("data_type") or "video").lower()
    path = loader.path(str(media_path))
    if data_type == "image":
        if reference_only:
            return [{"type": "image", "image": str(path)}], None
        return [{"type": "image", "image": loader.image(path)}], None
    if reference_only:
        return [{"type": "video", "video": str(path)}], None
    clip = loader.clip(path)
    if frames_as_images:
        return [{"type": "image", "image": img} for img in clip.as_images()], None
    return [{"type": "video", "video": clip.frames}], clip.metadata()


def build_messages(
    row: dict[str, Any],
    media: Sequence[dict[str, Any]] = (),
    *,
    prompts: PromptConfig | None = None,
    with_target: bool = False,
) -> list[dict[str, Any]]:
    """System + user (media parts, then the text) [+ assistant target]. Plain Python, never Arrow."""
    prompts = prompts or PromptConfig()
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": [{"type": "text", "text": prompts.system_prompt}]},
        {"role": "user", "content": [*media, {"type": "text", "text": user_text(row, prompts)}]},
    ]
    if with_target:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": assistant_target(row)}]})
    return messages


# ---- datasets -------------------------------------------------------------------------------------


def load_rows(path: str | Path, split: str = "train") -> Any:
    """A `datasets.Dataset` from `load_from_disk` (DatasetDict or Dataset) or parquet/json(l) files.

    `path` may be a saved dataset folder, a folder of parquet/json files, or one file. A DatasetDict
    without the split raises, naming the splits it has.
    """
    import datasets

    p = Path(path)
    if p.is_dir() and ((p / "dataset_dict.json").exists() or (p / "dataset_info.json").exists()):
        loaded = datasets.load_from_disk(str(p))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise KeyError(f"split {split!r} not in {p} (has {sorted(loaded)})")
            return loaded[split]
        return loaded
    if p.is_dir():
        files = sorted(p.glob(f"{split}*.parquet")) or sorted(p.glob(f"{split}*.json*"))
        files = files or sorted(p.glob("*.parquet")) or sorted(p.glob("*.json*"))
        if not files:
            raise FileNotFoundError(f"no dataset, parquet or json files in {p}")
    else:
        files = [p]
    kind = "parquet" if files[0].suffix == ".parquet" else "json"
    return datasets.load_dataset(kind, data_files=[str(f) for f in files], split="train")


def check_columns(dataset: Any, required: Sequence[str]) -> None:
    missing = [c for c in required if c not in dataset.column_names]
    if missing:
        raise ValueError(f"dataset lacks column(s) {missing}; has {dataset.column_names}")


SFT_COLUMNS = ("media_path", "data_type", "problem", "problem_type", "process", "solution")
RL_COLUMNS = ("media_path", "data_type", "problem", "problem_type", "solution")


# ---- SFT collator ---------------------------------------------------------------------------------


def training_chat_template(processor: Any) -> str:
    """The chat template with `{% generation %}` markers (assistant-only masks).

    TRL ships a training variant of Qwen2.5-VL's template and maps the official one to it; a template
    that already has markers is kept.
    """
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if has_generation_markers(processor.chat_template):
        return processor.chat_template
    return get_training_chat_template(processor)


class SFTCollator:
    """Rows → padded model inputs with labels on the assistant turn only.

    Conversations are built here (media decoded through the cached `MediaLoader`), rendered with the
    training chat template and tokenised by `processor.apply_chat_template(..., tokenize=True,
    return_dict=True, return_assistant_tokens_mask=True)`. Labels are the input ids where the
    assistant mask is 1 (the assistant text and its `<|im_end|>`), −100 elsewhere: system, user,
    vision tokens and padding never carry loss (VideoRFT's SFT trained on all of them, issues #40/#91).
    """

    def __init__(
        self,
        processor: Any,
        loader: MediaLoader,
        *,
        prompts: PromptConfig | None = None,
        frames_as_images: bool = False,
        max_length: int | None = None,
        replacer: RowReplacer | None = None,
    ) -> None:
        self.processor = processor
        self.loader = loader
        # Undecodable media: the row leaves the batch, counted (training.media_checks); None raises.
        self.replacer = replacer
        self.prompts = prompts or PromptConfig()
        self.frames_as_images = frames_as_images
        self.max_length = max_length
        self.chat_template = training_chat_template(processor)

    def conversations(self, rows: Sequence[dict[str, Any]]) -> tuple[list[list[dict]], list[dict]]:
        conversations, metadata = [], []
        for row in keep_or_replace(list(rows), self.loader, self.replacer):
            parts, meta = media_parts(row, self.loader, frames_as_images=self.frames_as_images)
            conversations.append(build_messages(row, parts, prompts=self.prompts, with_target=True))
            if meta is not None:
                metadata.append(meta)
        return conversations, metadata

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        conversations, metadata = self.conversations(rows)
        processor_kwargs: dict[str, Any] = {"padding": True}
        if metadata:
            processor_kwargs["video_metadata"] = metadata
        batch = self.processor.apply_chat_template(
            conversations,
            chat_template=self.chat_template,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
            return_tensors="pt",
            processor_kwargs=processor_kwargs,
        )
        assistant_mask = batch.pop("assistant_masks")
        labels = batch["input_ids"].clone()
        labels[assistant_mask != 1] = -100
        labels[batch["attention_mask"] == 0] = -100
        batch["labels"] = labels
        if self.max_length is not None and batch["input_ids"].size(1) > self.max_length:
            # Truncating would cut visual tokens (feature/token mismatch): refuse loudly instead.
            raise ValueError(
                f"a batch is {batch['input_ids'].size(1)} tokens, over max_length={self.max_length}; raise it, "
                "lower the frame count / pixel budget, or filter long samples"
            )
        return dict(batch)


# ---- GRPO prompts ---------------------------------------------------------------------------------


def grpo_transform(
    loader: MediaLoader,
    *,
    prompts: PromptConfig | None = None,
    frames_as_images: bool = False,
) -> Callable[[dict[str, list]], dict[str, list]]:
    """A `Dataset.with_transform` function adding `prompt` (and `images` in frames_as_images mode).

    Applied on access, so nothing conversational is ever written to Arrow. Video mode: the user turn
    carries `{"type": "video", "video": <resolved path>}`; `VideoGRPOTrainer` decodes it (cached) and
    keeps the video tensors for every log-prob forward. `frames_as_images` mode: the prompt is text and
    the sampled frames go in the stock `images` column, which stock TRL handles end to end.
    """
    prompts = prompts or PromptConfig()

    def transform(batch: dict[str, list]) -> dict[str, list]:
        n = len(next(iter(batch.values())))
        rows = [{k: v[i] for k, v in batch.items()} for i in range(n)]
        out = {k: list(v) for k, v in batch.items()}
        out["prompt"] = []
        if frames_as_images:
            out["images"] = []
        for row in rows:
            if frames_as_images:
                parts, _ = media_parts(row, loader, frames_as_images=True)
                images = [p["image"] for p in parts]
                messages = [
                    {"role": "system", "content": prompts.system_prompt},
                    {"role": "user", "content": user_text(row, prompts)},
                ]
                out["images"].append(images)
            else:
                parts, _ = media_parts(row, loader, reference_only=True)
                messages = build_messages(row, parts, prompts=prompts)
            out["prompt"].append(messages)
        return out

    return transform


def with_grpo_prompts(
    dataset: Any,
    loader: MediaLoader,
    *,
    prompts: PromptConfig | None = None,
    frames_as_images: bool = False,
    skips: MediaSkips | None = None,
) -> Any:
    """`dataset` with prompts built on access; with `skips`, a row whose media cannot be loaded is
    swapped for a decodable row of the same split (counted in `skips`) instead of failing a step."""
    check_columns(dataset, RL_COLUMNS)
    transform = grpo_transform(loader, prompts=prompts, frames_as_images=frames_as_images)
    if skips is not None:
        transform = replacing_transform(transform, RowReplacer(dataset, loader, skips))
    return dataset.with_transform(transform)
