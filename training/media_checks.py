"""Media problems in training and evaluation: caught before the model loads, skipped and counted after.

Two functions the entry scripts (SFT, GRPO, evaluation) share:

- `run_media_preflight(args, *datasets)`: before any model is loaded, open every media file the
  splits refer to (a deterministic sample of `media_preflight_max_files` on big sets) and fail with
  one message naming the first missing files. A wrong `--media_root` then fails in seconds, naming
  a file, instead of after the model loaded with an error that names none.
- `MediaSkips`: a row whose media cannot be decoded (truncated, zero-byte, not a video: what a few
  hundred of 300K downloaded videos always are) is skipped with a logged warning and counted,
  instead of crashing a step. Each skip is one JSON line in `<output_dir>/media_skips.jsonl`
  (shared by dataloader workers and ranks, so the count is the run's), and the count is logged as
  `media_skipped` with the run's metrics (`MediaSkipCallback`, the train metrics, videorft_run.json).

How a skip keeps a batch whole: SFT drops the row from its batch (a batch left empty takes a
decodable replacement row from the training split); GRPO replaces the row, all G copies alike, by a
decodable row of the same split (a group must stay a group); evaluation leaves the row out of
the scores (`decodable_rows`) and reports how many it left out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from curation.video.errors import VideoError

logger = logging.getLogger(__name__)

SKIPS_FILE = "media_skips.jsonl"
_EXAMPLES = 5  # missing files named in a preflight message


# ---- preflight -----------------------------------------------------------------------------------


class MediaPreflightError(FileNotFoundError):
    """Media files of the split are missing: the message names them and the media root."""


@dataclass
class PreflightReport:
    """What the preflight checked: distinct media files, how many it opened, which were missing."""

    split: str
    media_files: int = 0
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["missing"] = len(self.missing)
        out["empty"] = len(self.empty)
        return out


def _media_paths(dataset: Any) -> list[str]:
    """Distinct `media_path` values of a dataset (a `datasets.Dataset` or a list of row dicts)."""
    if hasattr(dataset, "column_names"):
        if "media_path" not in dataset.column_names:
            return []
        values = dataset["media_path"]
    else:
        values = [row.get("media_path") for row in dataset]
    return sorted({str(v) for v in values if v})


def _sample(paths: list[str], max_files: int | None) -> list[str]:
    """Every path, or `max_files` of them chosen by a hash of the path (the same ones every run)."""
    if max_files is None or len(paths) <= max_files:
        return paths
    return sorted(paths, key=lambda p: hashlib.sha1(p.encode("utf-8")).hexdigest())[:max_files]


def check_media_files(
    dataset: Any, media_root: str | Path | None, *, max_files: int | None = 10000, split: str = "train"
) -> PreflightReport:
    """Open each media file of `dataset` (or a sample of `max_files`); collect the missing and empty ones."""
    from training.video_io import resolve_media_path

    paths = _media_paths(dataset)
    report = PreflightReport(split=split, media_files=len(paths))
    for media_path in _sample(paths, max_files):
        report.checked += 1
        try:
            full = resolve_media_path(media_root, media_path)
            with open(full, "rb") as fh:
                if not fh.read(1):
                    report.empty.append(media_path)
        except (OSError, ValueError):  # missing, a directory, unreadable, or outside the media root
            report.missing.append(media_path)
    return report


def preflight_media(
    dataset: Any,
    media_root: str | Path | None,
    *,
    max_files: int | None = 10000,
    max_missing: float = 0.0,
    split: str = "train",
) -> PreflightReport:
    """`check_media_files`, then fail when more than `max_missing` of the checked files are missing.

    Empty files are not failures here: they are undecodable rows, skipped and counted in training.
    """
    if max_files == 0:
        return PreflightReport(split=split)
    report = check_media_files(dataset, media_root, max_files=max_files, split=split)
    where = (
        f"under media_root {Path(media_root).resolve()}" if media_root is not None else "(no media_root set)"
    )
    if report.missing:
        first = ", ".join(report.missing[:_EXAMPLES]) + (" ..." if len(report.missing) > _EXAMPLES else "")
        share = len(report.missing) / max(report.checked, 1)
        if share > max_missing:
            hint = (
                "none of them exists: is media_root right?"
                if len(report.missing) == report.checked
                else "restore them, fix media_root, or allow a share with media_preflight_max_missing"
            )
            sampled = "" if report.checked == report.media_files else f" (a sample of {report.media_files})"
            raise MediaPreflightError(
                f"media preflight: {len(report.missing)} of {report.checked} media files of the {split} "
                f"split{sampled} are missing {where}: {first}; {hint}"
            )
        logger.warning(
            "media preflight: %d of %d media files of the %s split are missing %s (%s); their rows will be skipped",
            len(report.missing),
            report.checked,
            split,
            where,
            first,
        )
    if report.empty:
        logger.warning(
            "media preflight: %d media files of the %s split are empty (%s); their rows will be skipped",
            len(report.empty),
            split,
            ", ".join(report.empty[:_EXAMPLES]),
        )
    return report


def run_media_preflight(args: Any, *splits: tuple[str, Any]) -> dict[str, Any]:
    """The preflight of an entry script: `splits` are (name, dataset) pairs; `args` carries media_root
    and the `media_preflight_*` settings. Returns the reports (for the run record)."""
    reports = {}
    for name, dataset in splits:
        if dataset is None:
            continue
        reports[name] = preflight_media(
            dataset,
            args.media_root,
            max_files=getattr(args, "media_preflight_max_files", 10000),
            max_missing=getattr(args, "media_preflight_max_missing", 0.0),
            split=name,
        ).to_dict()
    return reports


# ---- skipping undecodable rows -------------------------------------------------------------------


class MediaSkips:
    """Rows skipped because their media could not be loaded: counted, logged, listed in a file.

    Safe across threads; across processes (dataloader workers, ranks) through the JSONL file, one
    line per skip appended with a single write.
    """

    def __init__(self, output_dir: str | Path | None = None) -> None:
        self.path = Path(output_dir) / SKIPS_FILE if output_dir is not None else None
        self.count = 0
        self.reasons: Counter = Counter()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @classmethod
    def for_run(cls, training_args: Any, *, resuming: bool) -> MediaSkips:
        """The run's counter in its output folder; a fresh (not resumed) run starts from zero."""
        skips = cls(training_args.output_dir)
        if not resuming and getattr(training_args, "process_index", 0) == 0:
            skips.reset()
        return skips

    def reset(self) -> None:
        """Start a fresh count (a new run in this output folder; not on resume)."""
        with self._lock:
            self.count = 0
            self.reasons.clear()
        if self.path is not None and self.path.exists():
            self.path.unlink()

    def record(self, row: dict[str, Any], reason: str) -> None:
        with self._lock:
            self.count += 1
            self.reasons[reason.split(":", 1)[0]] += 1
            count = self.count
        logger.warning(
            "skipping row %s: media %s cannot be loaded: %s (%d skipped in this process)",
            row.get("id"),
            row.get("media_path"),
            reason,
            count,
        )
        if self.path is not None:
            line = json.dumps({"id": row.get("id"), "media_path": row.get("media_path"), "reason": reason})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (line + "\n").encode("utf-8"))
            finally:
                os.close(fd)

    def total(self) -> int:
        """Skips of the whole run (every process writing to the file), else of this process."""
        if self.path is None or not self.path.exists():
            return self.count
        with open(self.path, "rb") as fh:
            return sum(1 for line in fh if line.strip())

    def metrics(self) -> dict[str, int]:
        return {"media_skipped": self.total()}


class MediaSkipCallback(TrainerCallback):
    """Adds the run's `media_skipped` count to every logged line (log history, TensorBoard, console).

    Install it with `report_media_skips`: it must run before the reporting callbacks see the line.
    """

    def __init__(self, skips: MediaSkips) -> None:
        self.skips = skips

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any):
        if logs is None or not state.is_world_process_zero:
            return
        logs["media_skipped"] = self.skips.total()
        # Trainer.log appended a copy of the line to the history before calling the callbacks.
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1]["media_skipped"] = logs["media_skipped"]


def report_media_skips(trainer: Any, skips: MediaSkips) -> None:
    """Put a `MediaSkipCallback` first among the trainer's callbacks (before TensorBoard & co.)."""
    trainer.callback_handler.callbacks.insert(0, MediaSkipCallback(skips))


def media_error(row: dict[str, Any], loader: Any) -> str | None:
    """Load the row's media through `loader` (cached, so the step that follows decodes nothing twice);
    the reason it cannot be loaded, or None."""
    media_path = row.get("media_path")
    if not media_path or loader is None:
        return None
    try:
        if (row.get("data_type") or "video").lower() == "image":
            loader.image(str(media_path))
        else:
            loader.clip(str(media_path))
    except VideoError as err:
        return err.reason
    except ValueError as err:  # an unsafe media path (outside the media root)
        return str(err)
    except OSError as err:
        return f"cannot read file: {err.strerror or err}"
    return None


def decodable_rows(rows: Sequence[dict[str, Any]], loader: Any, skips: MediaSkips) -> list[dict[str, Any]]:
    """The rows whose media load; the others are recorded in `skips` (evaluation leaves them out)."""
    kept = []
    for row in rows:
        reason = media_error(row, loader)
        if reason is None:
            kept.append(row)
        else:
            skips.record(row, reason)
    return kept


class RowReplacer:
    """A decodable stand-in for a row whose media cannot be loaded, drawn from `rows` (a split).

    The stand-in is chosen by a hash of the bad row's id, so every copy of a row (GRPO's G
    generations, every epoch) gets the same one. After `max_tries` undecodable candidates in a row
    it gives up loudly: the split is then mostly broken, and skipping would hide it.
    """

    def __init__(self, rows: Any, loader: Any, skips: MediaSkips, max_tries: int = 32) -> None:
        self.rows = rows
        self.loader = loader
        self.skips = skips
        self.max_tries = max_tries

    def __call__(self, row: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        """`row` itself when its media load, else a decodable replacement (the skip is recorded)."""
        reason = media_error(row, self.loader) if reason is None else reason
        if reason is None:
            return row
        self.skips.record(row, reason)
        return self.replacement(row)

    def replacement(self, row: dict[str, Any]) -> dict[str, Any]:
        n = len(self.rows)
        if n == 0:
            raise RuntimeError("no rows to replace an undecodable row with")
        seed = int(hashlib.sha1(str(row.get("id") or row.get("media_path")).encode()).hexdigest()[:12], 16)
        for attempt in range(min(self.max_tries, n)):
            candidate = dict(self.rows[(seed + attempt * 7919) % n])
            if candidate.get("id") == row.get("id"):
                continue
            if media_error(candidate, self.loader) is None:
                return candidate
        raise RuntimeError(
            f"{self.max_tries} rows tried, none with media that can be loaded, to replace row "
            f"{row.get('id')}: most of the split's media are broken (see {SKIPS_FILE})"
        )


def keep_or_replace(
    rows: list[dict[str, Any]], loader: Any, replacer: RowReplacer | None
) -> list[dict[str, Any]]:
    """SFT's rule: drop rows whose media fail; an emptied batch gets one replacement row."""
    if replacer is None:
        return rows
    kept, first_bad = [], None
    for row in rows:
        reason = media_error(row, loader)
        if reason is None:
            kept.append(row)
        else:
            replacer.skips.record(row, reason)
            first_bad = first_bad or row
    if not kept and first_bad is not None:
        kept.append(replacer.replacement(first_bad))
    return kept


def replacing_transform(
    transform: Callable[[dict[str, list]], dict[str, list]], replacer: RowReplacer
) -> Callable[[dict[str, list]], dict[str, list]]:
    """Wrap a `Dataset.with_transform` function: rows with undecodable media are swapped for
    decodable ones (every column) before `transform` builds prompts from them."""

    def wrapped(batch: dict[str, list]) -> dict[str, list]:
        n = len(next(iter(batch.values()))) if batch else 0
        seen: dict[Any, dict[str, Any]] = {}  # GRPO fetches G copies of a row: one check, one skip
        rows = []
        for i in range(n):
            row = {k: v[i] for k, v in batch.items()}
            key = (row.get("id"), row.get("media_path"))
            if key not in seen:
                seen[key] = replacer(row)
            rows.append(seen[key])
        fixed = {k: [row.get(k) for row in rows] for k in batch}
        return transform(fixed)

    return wrapped
