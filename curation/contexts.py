"""Shard-task contexts, rebuilt once per worker process from (recipe, run folder).

A shard task receives plain data (the recipe as a dict, the run folder, the stage, the shard) so it
can run in any process of any machine: a Ray or Dask worker builds the run's `CurationContext`
(gateway with its HTTP clients and cache, prompts, filter models) on its first task and reuses it
for every later task of the same run. No registry that only the flow process has.

Teardown: the flow process closes its own contexts at the end of the run (`release_contexts`);
a worker process closes what it holds when it exits (atexit) and, when it lives on in a shared
cluster, when it has served more runs than it keeps (the least recently used idle context is
closed). Every answer is already on disk when it arrives (curation/llm/cache.py), so a worker that
dies without teardown loses nothing.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from curation.records import stable_hash
from curation.runner import CurationContext, forced_stages

# Contexts kept per process: a worker of a shared cluster may serve several runs in turn.
MAX_CONTEXTS = 2

_LOCK = threading.Lock()
_MEMO: OrderedDict[tuple[Any, ...], CurationContext] = OrderedDict()
_IN_USE: dict[tuple[Any, ...], int] = {}
# How many contexts this process has built (tests and benchmarks read it through the task result).
BUILT = {"contexts": 0}


def _key(recipe: dict[str, Any], run_dir: str, from_stage: str | None, share: int, run_token: str) -> tuple:
    # The run token (one per flow run) keeps a long-lived worker from reusing a context built for an
    # earlier run of the same recipe, whose prompts or media may have changed since.
    return (run_token, stable_hash(recipe, length=16), str(Path(run_dir).resolve()), from_stage, share)


@contextmanager
def shard_context(
    recipe: dict[str, Any],
    run_dir: str,
    *,
    from_stage: str | None = None,
    in_flight_share: int = 1,
    workdir: str | None = None,
    run_token: str = "",
) -> Iterator[CurationContext]:
    """The run's context in this process, built on first use; held (never evicted) while in use."""
    if workdir and os.path.isdir(workdir) and os.getcwd() != workdir:
        # Recipes name prompt folders, media roots and run dirs relative to the checkout the flow
        # runs in; a worker process started elsewhere (a Ray worker's session dir) works from there.
        os.chdir(workdir)
    key = _key(recipe, run_dir, from_stage, in_flight_share, run_token)
    with _LOCK:
        ctx = _MEMO.get(key)
        if ctx is None:
            ctx = _build(recipe, run_dir, from_stage, in_flight_share)
            _MEMO[key] = ctx
            BUILT["contexts"] += 1
        _MEMO.move_to_end(key)
        _IN_USE[key] = _IN_USE.get(key, 0) + 1
        evicted = _evict_idle()
    for old in evicted:
        old.close()
    try:
        yield ctx
    finally:
        with _LOCK:
            _IN_USE[key] -= 1


def _build(recipe: dict[str, Any], run_dir: str, from_stage: str | None, share: int) -> CurationContext:
    from curation.config import recipe_from_dict
    from curation.store import RunStore

    rec = recipe_from_dict(recipe, origin="<shard task>")
    return CurationContext(
        recipe=rec, store=RunStore(Path(run_dir)), forced=forced_stages(from_stage), in_flight_share=share
    )


def _evict_idle() -> list[CurationContext]:
    out = []
    for key in list(_MEMO):
        if len(_MEMO) <= MAX_CONTEXTS:
            break
        if not _IN_USE.get(key):
            out.append(_MEMO.pop(key))
            _IN_USE.pop(key, None)
    return out


def release_contexts(run_dir: str | None = None) -> int:
    """Close this process's idle contexts (of one run folder, or all); returns how many."""
    wanted = str(Path(run_dir).resolve()) if run_dir else None
    with _LOCK:
        keys = [k for k in _MEMO if (wanted is None or k[2] == wanted) and not _IN_USE.get(k)]
        closing = [_MEMO.pop(k) for k in keys]
        for k in keys:
            _IN_USE.pop(k, None)
    for ctx in closing:
        ctx.close()
    return len(closing)


atexit.register(release_contexts)
