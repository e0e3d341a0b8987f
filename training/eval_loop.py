"""The generation loop of evaluation: resumable, sharded across ranks, with progress.

Files in a task's output folder:
- `eval_state.json`: the settings that decide the answers (model, prompts, frames, decoding). A rerun
  with the same settings resumes; different settings stop with a message naming what changed (answers
  made under other settings are never mixed in silently).
- `partial/rank-<r>.jsonl`: each rank appends its answered rows batch by batch (flushed and fsynced),
  so a killed run loses at most the batch in flight. A rerun reads every partial file (any earlier
  world size) and `predictions.jsonl`, and generates only the rows not answered yet.
- `predictions.jsonl`: written once at the end by the main process, one line per row in row order,
  each row once; the partial files are then removed.

Sharding: every rank reads the answered rows, then (after a barrier, so no rank writes before all
have read) takes every `world`-th pending row from its rank index. At the end the ranks' new records
are gathered on the main process (`accelerate.utils.gather_object`), which merges and writes. With one
process this is the same code with world = 1. Resume across ranks needs the output folder on a shared
filesystem (it always is on one machine).

Media: a row whose media cannot be loaded stops the run with `EvalMediaError` (the answered rows are
kept for the rerun), or, with `skip_bad_media`, is recorded as `status: skipped_media` with its reason
and counted, never scored. Skipped rows are retried by a rerun.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.config import RecipeError
from training.eval_prompts import EvalMediaError, EvalPrompter, PreparedPrompt

logger = logging.getLogger("training.evaluate")

STATE_FILE = "eval_state.json"
PREDICTIONS_FILE = "predictions.jsonl"
PARTIAL_DIR = "partial"
OK = "ok"
SKIPPED_MEDIA = "skipped_media"

Generate = Callable[[Sequence[PreparedPrompt]], list[str]]
Score = Callable[[dict[str, Any], str], dict[str, Any]]


class EvalStateMismatch(RecipeError):
    """The output folder holds answers made under other settings (a user error: the CLI prints it)."""


@dataclass
class EvalTask:
    """One file or split to evaluate: its rows (each with `index` and `key`), where results go."""

    name: str
    rows: list[dict[str, Any]]
    out_dir: Path
    media_root: str | None
    default_style: str  # prompt style for prompt_style "auto"
    info: dict[str, Any] = field(default_factory=dict)  # what the tables say about the source


@dataclass
class Ranks:
    """The process group as evaluation sees it (accelerate's PartialState, or a single process)."""

    index: int = 0
    world: int = 1
    barrier: Callable[[], None] = lambda: None
    gather: Callable[[list[Any]], list[Any]] = lambda items: list(items)

    @property
    def is_main(self) -> bool:
        return self.index == 0

    @classmethod
    def from_state(cls, state: Any) -> Ranks:
        from accelerate.utils import gather_object

        return cls(
            index=int(state.process_index),
            world=int(state.num_processes),
            barrier=state.wait_for_everyone,
            gather=gather_object,
        )


def end_process_group() -> None:
    """Leave the process group cleanly at the end of an evaluation launched on several ranks.

    Exiting with gloo's process group still alive lets its threads meet interpreter teardown, and a
    rank then aborts *after* finishing ("terminate called without an active exception", exit -6),
    which fails the launch even though every prediction was written."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # every rank is done writing before any of them tears the group down
        dist.destroy_process_group()


# ---- the prediction store ------------------------------------------------------------------------


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSON-lines file; a torn last line (a kill mid-write) is ignored."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s: ignoring a torn line (the run was killed while writing it)", path)


class PredictionStore:
    """Answered rows of one task on disk (see the module doc for the layout)."""

    def __init__(self, out_dir: Path, settings: dict[str, Any], ranks: Ranks, *, resume: bool = True):
        self.out_dir = Path(out_dir)
        self.settings = json.loads(json.dumps(settings, default=str))  # as it reads back from disk
        self.ranks = ranks
        self.resume = resume
        self.partial = self.out_dir / PARTIAL_DIR / f"rank-{ranks.index}.jsonl"

    def prepare(self) -> dict[str, dict[str, Any]]:
        """Check the settings, start fresh or resume; returns key -> answered record (status ok)."""
        state_path = self.out_dir / STATE_FILE
        if not self.resume:
            self.ranks.barrier()
            if self.ranks.is_main:
                self.clear()
            self.ranks.barrier()
        elif state_path.exists():
            saved = json.loads(state_path.read_text()).get("settings", {})
            changed = sorted(
                k for k in set(saved) | set(self.settings) if saved.get(k) != self.settings.get(k)
            )
            if changed:
                raise EvalStateMismatch(
                    f"{self.out_dir} holds answers made with other settings ({', '.join(changed)} changed): "
                    "use another output_dir, or --resume false to start over"
                )
        answered = self.answered()
        self.ranks.barrier()  # everyone has read before anyone appends
        if self.ranks.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            tmp = state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"settings": self.settings}, indent=2))
            tmp.replace(state_path)
        return answered

    def clear(self) -> None:
        for name in (STATE_FILE, PREDICTIONS_FILE):
            (self.out_dir / name).unlink(missing_ok=True)
        shutil.rmtree(self.out_dir / PARTIAL_DIR, ignore_errors=True)

    def answered(self) -> dict[str, dict[str, Any]]:
        files = [self.out_dir / PREDICTIONS_FILE, *sorted((self.out_dir / PARTIAL_DIR).glob("rank-*.jsonl"))]
        out: dict[str, dict[str, Any]] = {}
        for path in files:
            if path.exists():
                for record in _read_jsonl(path):
                    if record.get("status", OK) == OK and "key" in record:
                        out[record["key"]] = record
        return out

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        with open(self.partial, "a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def finalize(self, records: Sequence[dict[str, Any]]) -> Path:
        """Main process: all rows, once each, in row order -> predictions.jsonl; partial files removed."""
        path = self.out_dir / PREDICTIONS_FILE
        tmp = path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for record in sorted(records, key=lambda r: r["index"]):
                fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        tmp.replace(path)
        shutil.rmtree(self.out_dir / PARTIAL_DIR, ignore_errors=True)
        return path


# ---- progress -------------------------------------------------------------------------------------


class Progress:
    """One log line per batch: rows done (including resumed ones), rate, ETA."""

    def __init__(self, name: str, total: int, done: int, mine: int, ranks: Ranks):
        self.name, self.total, self.done, self.mine = name, total, done, mine
        self.prefix = f"[rank {ranks.index}/{ranks.world}] " if ranks.world > 1 else ""
        self.new = 0
        self.started = time.perf_counter()

    def update(self, n: int) -> None:
        self.new += n
        elapsed = time.perf_counter() - self.started
        rate = self.new / elapsed if elapsed > 0 else 0.0
        eta = f"{(self.mine - self.new) / rate / 60:.1f} min" if rate > 0 else "?"
        if self.prefix:
            where = f"{self.new}/{self.mine} rows of this rank"
        else:
            where = f"{self.done + self.new}/{self.total} rows"
        logger.info("%s%s: %s, %.2f rows/s, ETA %s", self.prefix, self.name, where, rate, eta)


# ---- the loop -------------------------------------------------------------------------------------


def skipped_record(row: dict[str, Any], reason: str) -> dict[str, Any]:
    return {
        "key": row["key"],
        "index": row["index"],
        "problem_id": row.get("problem_id"),
        "media_path": row.get("media_path"),
        "problem_type": row.get("problem_type"),
        "data_source": row.get("data_source"),
        "status": SKIPPED_MEDIA,
        "reason": reason,
    }


def _prepare_batch(
    prompter: EvalPrompter, rows: Sequence[dict[str, Any]], skip_bad_media: bool
) -> tuple[list[PreparedPrompt], list[dict[str, Any]]]:
    prepared, skipped = [], []
    for row in rows:
        try:
            prepared.append(prompter.build(row))
        except EvalMediaError as exc:
            if not skip_bad_media:
                raise EvalMediaError(
                    f"{exc}. Fix the media (or the media root) and rerun: answered rows are kept; "
                    "or pass --skip_bad_media true to skip and count such rows"
                ) from exc
            logger.warning("skipping %s", exc)
            skipped.append(skipped_record(row, str(exc)))
    return prepared, skipped


def run_task(
    task: EvalTask,
    prompter: EvalPrompter,
    generate: Generate,
    score: Score,
    store: PredictionStore,
    ranks: Ranks,
    *,
    batch_size: int,
    skip_bad_media: bool = False,
    preskipped: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Generate the task's unanswered rows on this rank; on the main process return every row's record.

    `preskipped`: records of rows the media preflight already skipped (not generated, not retried here).
    """
    answered = store.prepare()
    skip_keys = {r["key"] for r in preskipped}
    pending = [r for r in task.rows if r["key"] not in answered and r["key"] not in skip_keys]
    mine = pending[ranks.index :: ranks.world]
    if ranks.is_main:
        logger.info(
            "%s: %d rows, %d already answered, %d to generate%s",
            task.name,
            len(task.rows),
            sum(1 for r in task.rows if r["key"] in answered),
            len(pending),
            f" over {ranks.world} ranks" if ranks.world > 1 else "",
        )
    progress = Progress(task.name, len(task.rows), len(task.rows) - len(pending), len(mine), ranks)
    new: list[dict[str, Any]] = []
    batches = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
    # Decode the next batch's media while the current one generates (decoding 32 frames per video is
    # a large share of a benchmark's time); one batch ahead bounds the memory.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="eval-media") as pool:
        ahead: Future | None = (
            pool.submit(_prepare_batch, prompter, batches[0], skip_bad_media) if batches else None
        )
        for i in range(len(batches)):
            assert ahead is not None
            prepared, skipped = ahead.result()
            ahead = (
                pool.submit(_prepare_batch, prompter, batches[i + 1], skip_bad_media)
                if i + 1 < len(batches)
                else None
            )
            outputs = generate(prepared) if prepared else []
            records = [score(p.row, out) for p, out in zip(prepared, outputs, strict=True)]
            store.append(records + skipped)
            new.extend(records + skipped)
            progress.update(len(batches[i]))
    ranks.barrier()
    gathered = ranks.gather(new)
    if not ranks.is_main:
        return []
    merged: dict[str, dict[str, Any]] = {r["key"]: r for r in preskipped}
    merged.update(answered)
    for record in gathered:
        merged[record["key"]] = record
    keys = {r["key"] for r in task.rows}
    records = [merged[k] for k in keys if k in merged]
    missing = len(keys) - len(records)
    if missing:  # a rank died without raising: never report a partial set as complete
        raise RuntimeError(f"{task.name}: {missing} rows have no answer after generation")
    store.finalize(records)
    return sorted(records, key=lambda r: r["index"])
