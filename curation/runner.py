"""Runs curation stages shard by shard over the run store, independent of any orchestrator.

The Prefect flow (flows/curate.py) is a thin wrapper: one task per (stage, shard). Everything that
decides *what* to compute lives here:

- every stage row gets a content key: hash(stage, stage version, config slice, prompt hash, model,
  the keys of its inputs). A rerun reuses rows whose key already has a result and computes the rest;
  a shard whose rows are all reusable is skipped without being rewritten;
- a shard file is written whole and atomically, so a killed run loses at most the shards in flight
  (and the LLM cache keeps every answer that was already paid for);
- every row that enters a stage leaves it as ok, rejected (reason) or failed (error).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.config import Recipe
from curation.llm.failures import EndpointUnavailable
from curation.records import FAILED, OK, REJECTED, Sample, stable_hash
from curation.store import RunStore, StageStats

log = logging.getLogger("videorft.curate")

# Order matters: each stage reads the ok rows of the one before it.
ROW_STAGES = ("extract", "caption", "draft", "revise", "filter")
STAGES = ("sources", *ROW_STAGES, "publish")
LLM_STAGES = {"caption": "captioner", "draft": "reasoner", "revise": "reviser"}
UPSTREAM = {
    "extract": "sources",
    "caption": "extract",
    "draft": "caption",
    "revise": "draft",
    "filter": "revise",
}
# Bump when a stage's logic changes in a way that must invalidate earlier results.
STAGE_VERSIONS = {"sources": "1", "extract": "1", "caption": "1", "draft": "1", "revise": "1", "filter": "1"}


def stages_between(from_stage: str | None, until: str | None) -> list[str]:
    until = until or STAGES[-1]
    if until not in STAGES:
        raise ValueError(f"unknown stage {until!r}; stages: {', '.join(STAGES)}")
    if from_stage is not None and from_stage not in STAGES:
        raise ValueError(f"unknown stage {from_stage!r}; stages: {', '.join(STAGES)}")
    return list(STAGES[: STAGES.index(until) + 1])


def forced_stages(from_stage: str | None) -> set[str]:
    """`--from STAGE`: that stage and every later one recompute even where keys match."""
    if from_stage is None:
        return set()
    return set(STAGES[STAGES.index(from_stage) :])


# --------------------------------------------------------------------------------------------
# Context: what every shard task of one run shares (recipe, store, gateway, prompts, models).
# --------------------------------------------------------------------------------------------


@dataclass
class CurationContext:
    recipe: Recipe
    store: RunStore
    forced: set[str] = field(default_factory=set)
    # Worker processes sending this run's requests at once: each gets its share of every
    # endpoint's max_in_flight (flows/executors.py), so the bound holds for the whole run.
    in_flight_share: int = 1
    _gateway: Any = None
    _prompts: dict[str, Any] = field(default_factory=dict)
    _key_base: dict[str, list[Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: Any = None

    @property
    def stop(self):
        """Set when the run was asked to stop (curation/stop.py); checked before each shard."""
        if self._stop is None:
            from curation.stop import StopFlag

            self._stop = StopFlag(self.run_dir)
        return self._stop

    @property
    def run_dir(self) -> Path:
        return self.store.run_dir

    @property
    def media_root(self) -> Path:
        return self.recipe.source.resolved_media_root()

    @property
    def gateway(self):
        with self._lock:
            if self._gateway is None:
                from curation.llm.gateway import Gateway

                self._gateway = Gateway(
                    dict(self.recipe.llm.endpoints),
                    cache_path=self.recipe.cache_path,
                    in_flight_share=self.in_flight_share,
                    served_identity=self.served_identity(),
                )
            return self._gateway

    def prompt(self, stage: str):
        with self._lock:
            if stage not in self._prompts:
                from curation.prompts import load_prompt

                cfg = getattr(self.recipe, stage)
                self._prompts[stage] = load_prompt(Path(cfg.prompt_dir))
            return self._prompts[stage]

    def role_for(self, stage: str) -> str:
        # The stage config names its role (captioner/reasoner/reviser); the recipe maps roles to endpoints.
        return getattr(getattr(self.recipe, stage), "role", None) or LLM_STAGES[stage]

    def model_for(self, stage: str) -> str:
        return self.recipe.llm.endpoint(self.role_for(stage)).model

    def served_identity(self) -> dict[str, str]:
        """{role: what its server reported for the model at preflight} (read from the manifest, so a
        context rebuilt in a worker process gets the same cache keys)."""
        checked = self.store.manifest.data.get("llm_endpoints") or {}
        return {role: str(v.get("served_root") or "") for role, v in checked.items() if isinstance(v, dict)}

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.close()
            self._gateway = None


# --------------------------------------------------------------------------------------------
# Sources: stream the annotations into shards (the only stage that sees the whole input).
# --------------------------------------------------------------------------------------------


def run_sources(ctx: CurationContext) -> StageStats:
    """Read the source, validate, drop near-duplicate questions, write `sources` shards.

    Near-duplicate questions on the same video are dropped here rather than after the LLM stages:
    the verdict does not depend on any generated text, and catching them early saves the requests.

    Shards are media-grouped: every question on one media file lands in the same shard (groups in
    order of first appearance, a shard closed before a group would overflow it), so a file is
    decoded once per run even when shards run in different worker processes. Only a file with more
    than `shard_size` questions spans several (consecutive) shards. The rows are held in memory
    until the source is read (about 1-2 KB a row).
    """
    from curation.filters.dedup import DedupIndex
    from curation.sources import read_source

    recipe, store = ctx.recipe, ctx.store
    started = time.time()
    stats = StageStats("sources", started=started)
    shard_size = recipe.run.shard_size
    dedup = DedupIndex(recipe.filters.dedup) if recipe.filters.dedup.enabled else None
    groups: dict[str, list[dict[str, Any]]] = {}
    for src in read_source(recipe.source):
        row: dict[str, Any]
        status, reason = src.status, src.reason
        if src.sample is not None:
            row = src.sample.to_row()
            # Exact duplicate rows are already rejected by the reader; this catches rephrasings.
            if status == OK and dedup is not None:
                dup_of = dedup.check(src.sample)
                if dup_of is not None:
                    status, reason = REJECTED, f"dedup: near-duplicate question of {dup_of} on the same video"
        else:
            row = {"id": stable_hash("rejected-source-row", str(recipe.source.path), src.index)}
        row.update(index=src.index, status=status, reason=reason or "", raw=src.raw)
        row["key"] = stable_hash("sources", STAGE_VERSIONS["sources"], row.get("raw"), row["status"])
        stats.count_row(status, reason or "")
        group = f"media:{src.sample.media_path}" if src.sample is not None else f"row:{row['id']}"
        groups.setdefault(group, []).append(row)
    shard = 0
    for rows in media_grouped_shards(groups.values(), shard_size):
        store.write_shard("sources", shard, rows)
        shard += 1
    if shard == 0:
        store.write_shard("sources", 0, [])
        shard = 1
    store.drop_shards_from("sources", shard)
    stats.shards = shard
    stats.computed = stats.in_
    stats.ended = time.time()
    stats.seconds = stats.ended - started
    return stats


def media_grouped_shards(
    groups: Iterable[list[dict[str, Any]]], shard_size: int
) -> Iterator[list[dict[str, Any]]]:
    """Fill shards with whole groups (the rows of one media file), in order; a group that would
    overflow a non-empty shard starts the next one; a group bigger than a shard is cut into
    shard-sized pieces."""
    buf: list[dict[str, Any]] = []
    for rows in groups:
        if buf and len(buf) + len(rows) > shard_size:
            yield buf
            buf = []
        for start in range(0, len(rows), shard_size):
            piece = rows[start : start + shard_size]
            if len(piece) == shard_size:
                if buf:
                    yield buf
                    buf = []
                yield piece
            else:
                buf.extend(piece)
    if buf:
        yield buf


def shard_count(store: RunStore) -> int:
    return len(store.shards("sources"))


# --------------------------------------------------------------------------------------------
# Row stages: inputs, content keys, processing.
# --------------------------------------------------------------------------------------------


@dataclass
class Item:
    """One sample entering a stage, with the upstream rows the stage needs."""

    sample: Sample
    upstream: dict[str, dict[str, Any]]
    key: str = ""


def _ok_rows_by_id(
    store: RunStore, stage: str, shard: int, columns: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    rows = store.read_shard(stage, shard, columns) or []
    return {r["id"]: r for r in rows if r.get("status") == OK}


# What content keys need of the stages before (stage_key): reading only these keeps counting cheap.
KEY_COLUMNS = ["id", "key", "status"]


def stage_inputs(ctx: CurationContext, stage: str, shard: int, keys_only: bool = False) -> list[Item]:
    """The ok rows of the stage before, joined with what this stage needs, in source order.
    `keys_only`: upstream rows hold only id, key and status (enough for `stage_key`)."""
    store = ctx.store
    sources = [r for r in (store.read_shard("sources", shard) or []) if r.get("status") == OK]
    needs = {
        "extract": [],
        "caption": ["extract"],
        "draft": ["caption"],
        "revise": ["draft", "extract"],
        "filter": ["revise", "draft"],
    }[stage]
    cols = KEY_COLUMNS if keys_only else None
    upstream_tables = {name: _ok_rows_by_id(store, name, shard, cols) for name in needs}
    gate = UPSTREAM[stage]
    items = []
    for row in sources:
        sid = row["id"]
        if gate != "sources" and sid not in upstream_tables[gate]:
            continue
        ups = {name: table[sid] for name, table in upstream_tables.items() if sid in table}
        ups["sources"] = row
        items.append(Item(sample=Sample.from_row(row), upstream=ups))
    return items


def _media_fingerprint(path: Path) -> list[Any]:
    # Size and mtime: a replaced video gets new frames, an untouched one is never decoded twice.
    try:
        st = path.stat()
        return [st.st_size, int(st.st_mtime)]
    except OSError:
        return ["missing"]


def stage_base_material(ctx: CurationContext, stage: str) -> list[Any]:
    """The part of a stage's keys shared by every row: config slice, prompt hash, model.
    Computed once per run and stage (it hashes prompt folders and filter code)."""
    with ctx._lock:
        if stage in ctx._key_base:
            return ctx._key_base[stage]
    recipe = ctx.recipe
    if stage == "extract":
        base: list[Any] = [recipe.video.content_slice()]
    elif stage in LLM_STAGES:
        # key_material() holds the request parameters and the prompt's content hash.
        base = [getattr(recipe, stage).key_material(ctx.prompt(stage)), ctx.model_for(stage)]
        served = ctx.served_identity().get(ctx.role_for(stage))
        if served:  # another checkpoint under the same model name: new rows, not old answers
            base.append({"served": served})
    elif stage == "filter":
        base = [recipe.filters.key_material()]
    else:
        raise ValueError(stage)
    with ctx._lock:
        ctx._key_base[stage] = base
    return base


def stage_key(ctx: CurationContext, stage: str, item: Item) -> str:
    s = item.sample
    material = list(stage_base_material(ctx, stage))
    if stage == "extract":
        from curation.sources import UnsafePathError, resolve_media

        try:
            fp = _media_fingerprint(resolve_media(ctx.media_root, s.media_path)[1])
        except UnsafePathError:
            fp = ["unsafe"]
        material += [s.id, s.media_path, fp]
    else:
        material.append([s.id, s.problem, s.options, s.solution, s.problem_type, s.data_type])
        material += [item.upstream[u]["key"] for u in sorted(item.upstream) if u != "sources"]
    return stable_hash(stage, STAGE_VERSIONS[stage], material, length=24)


# A row whose request was never answered because its endpoint's circuit breaker opened: not written,
# so a rerun computes it (it is neither ok, rejected nor failed: it has not been tried).
PENDING = "pending"


def _process(
    ctx: CurationContext,
    stage: str,
    items: list[Item],
    on_row: Callable[[dict[str, Any]], None] | None = None,
    account: Counter | None = None,
) -> list[dict[str, Any]]:
    """Compute rows for items that had no reusable result. Returns rows in item order.
    `on_row` sees each LLM stage row as it finishes (progress records); `account` counts the
    requests this shard makes."""
    recipe = ctx.recipe
    if not items:
        return []
    if stage == "extract":
        from curation.stages.extract import extract_shard

        return extract_shard([it.sample for it in items], ctx.media_root, ctx.run_dir, recipe.video)
    if stage == "filter":
        from curation.stages.filter import filter_shard, join_filter_input

        joined = [
            join_filter_input(it.upstream["sources"], it.upstream["revise"], it.upstream.get("draft"))
            for it in items
        ]
        return filter_shard(joined, recipe.filters)
    return _process_llm(ctx, stage, items, on_row, account)


def _process_llm(
    ctx: CurationContext,
    stage: str,
    items: list[Item],
    on_row: Callable[[dict[str, Any]], None] | None = None,
    account: Counter | None = None,
) -> list[dict[str, Any]]:
    from curation.stages.caption import caption_row
    from curation.stages.draft import draft_row
    from curation.stages.revise import revise_row

    recipe, gateway, prompt, run_dir = ctx.recipe, ctx.gateway, ctx.prompt(stage), ctx.run_dir

    def coro(it: Item):
        u = it.upstream
        if stage == "caption":
            return caption_row(gateway, it.sample, u["extract"], run_dir, recipe.caption, prompt)
        if stage == "draft":
            return draft_row(gateway, it.sample, u["caption"], recipe.draft, prompt)
        return revise_row(gateway, it.sample, u["extract"], u["draft"], run_dir, recipe.revise, prompt)

    async def guarded(it: Item) -> dict[str, Any]:
        # A bug or an unexpected answer in one row must not take the shard down with it.
        try:
            row = await coro(it)
        except EndpointUnavailable:  # the endpoint is down, not this row: try it again next run
            return {"status": PENDING, "reason": ""}
        except Exception as err:  # noqa: BLE001 - recorded on the row, never swallowed silently
            log.exception("%s failed for sample %s", stage, it.sample.id)
            row = {"status": FAILED, "reason": f"internal error: {type(err).__name__}: {err}"}
        if on_row is not None:
            on_row(row)
        return row

    # `stop`: once set, no new request goes out and this returns at once (CancelledError); answers
    # already on their way still reach the cache.
    return gateway.run_coroutines([guarded(it) for it in items], stop=ctx.stop, account=account)


def run_stage_shard(ctx: CurationContext, stage: str, shard: int) -> StageStats:
    """Bring one shard of one stage up to date; return its counts."""
    from curation.progress_files import ShardProgress

    store = ctx.store
    ctx.stop.check()  # a stopped run starts no new shard
    started = time.time()
    stats = StageStats(stage, shards=1, started=started)
    items = stage_inputs(ctx, stage, shard)
    for it in items:
        it.key = stage_key(ctx, stage, it)

    existing: dict[str, dict[str, Any]] = {}
    if stage not in ctx.forced:
        for row in store.read_shard(stage, shard) or []:
            if row.get("status") == FAILED and ctx.recipe.run.retry_failed:
                continue
            existing[row["key"]] = row

    todo = [it for it in items if it.key not in existing]
    progress = ShardProgress(ctx.run_dir, stage, shard, total=len(items))
    have_file = store.has_shard(stage, shard)
    stale = have_file and len(existing) != len(items)
    if not todo and have_file and not stale:
        # Everything reusable and the file holds exactly these rows: nothing to write.
        for it in items:
            row = existing[it.key]
            stats.count_row(row["status"], row.get("reason") or "")
        stats.reused = len(items)
        stats.shards_skipped = 1
        stats.ended = time.time()
        stats.seconds = stats.ended - started
        progress.finish(stats.ok, stats.rejected, stats.failed, stats.llm)
        return stats

    progress.reused([existing[it.key] for it in items if it.key in existing])
    account: Counter = Counter()
    try:
        computed = _process(ctx, stage, todo, on_row=progress.row_done, account=account)
        if len(computed) != len(todo):
            raise RuntimeError(f"{stage} returned {len(computed)} rows for {len(todo)} inputs")
    except Exception as err:  # noqa: BLE001
        # Stopped: abandon the shard and write nothing (its answers so far are cached); failing its
        # rows would only make the rerun recompute them.
        ctx.stop.check()
        # A shard-level error (a bug, a missing model) fails its rows with the error, so they stay
        # accounted for and a rerun retries them; the other shards go on.
        log.exception("%s shard %d failed", stage, shard)
        computed = [{"status": FAILED, "reason": f"shard error: {type(err).__name__}: {err}"} for _ in todo]
    _copy_llm_counters(stats, account)
    new_rows = {}
    pending = 0
    for it, row in zip(todo, computed, strict=True):
        if row.get("status") == PENDING:
            pending += 1
            continue
        row = dict(row)
        row["id"] = it.sample.id
        row["key"] = it.key
        row.setdefault("reason", "")
        if row.get("status") not in (OK, REJECTED, FAILED):
            row["reason"] = f"invalid status {row.get('status')!r} from {stage}"
            row["status"] = FAILED
        new_rows[it.key] = row
        for name, counter in (
            ("cache_hits", "llm_cache_hits"),
            ("prompt_tokens", "prompt_tokens"),
            ("completion_tokens", "completion_tokens"),
            ("reasoning_tokens", "reasoning_tokens"),
        ):
            if row.get(name):
                stats.llm[counter] = stats.llm.get(counter, 0) + int(row[name])

    out_rows = []
    for it in items:
        row = new_rows.get(it.key) or existing.get(it.key)
        if row is None:  # pending: left out, so the next run computes it
            continue
        out_rows.append(row)
        stats.count_row(row["status"], row.get("reason") or "")
    stats.reused = len(items) - len(todo)
    stats.computed = len(todo) - pending
    # The answered rows are kept even when some are pending: they were paid for.
    store.write_shard(stage, shard, out_rows)
    stats.ended = time.time()
    stats.seconds = stats.ended - started
    progress.finish(stats.ok, stats.rejected, stats.failed, stats.llm)
    if pending:
        down = ctx.gateway.unavailable()
        log.error("%s shard %d: %d rows left pending, endpoint unavailable", stage, shard, pending)
        raise EndpointUnavailable(*down[0].args) if down else RuntimeError(f"{stage}: {pending} rows pending")
    return stats


def _copy_llm_counters(stats: StageStats, account: Counter) -> None:
    """What the gateway counted for this shard's requests → the stage's manifest counters.

    `llm_requests` are requests sent (cache misses), `llm_retries` the attempts after the first,
    `llm_errors` the failed attempts (each one an error the endpoint answered, or a timeout /
    dropped connection), by kind in `llm_errors_by_kind`. So requests + retries is what the
    endpoint received, and errors what it got wrong.
    """
    stats.llm["llm_requests"] = stats.llm.get("llm_requests", 0) + account.get("requests", 0)
    stats.llm["llm_retries"] = stats.llm.get("llm_retries", 0) + account.get("retries", 0)
    stats.llm["llm_errors"] = stats.llm.get("llm_errors", 0) + account.get("failed_attempts", 0)
    for name, n in account.items():
        if name.startswith("failures:"):
            kind = name.removeprefix("failures:")
            stats.llm_errors_by_kind[kind] = stats.llm_errors_by_kind.get(kind, 0) + n


def iter_samples(store: RunStore) -> Iterator[Sample]:
    for row in store.iter_rows("sources"):
        if row.get("status") == OK:
            yield Sample.from_row(row)


def merge_shard_stats(stage: str, shard_stats: list[StageStats | None]) -> StageStats:
    """One stage's counts over its finished shards (None: a shard that did not finish)."""
    total = StageStats(stage)
    for s in shard_stats:
        if s is not None:
            total.merge(s)
    # Wall time of the stage: shards of different stages overlap, so this is first start → last end.
    total.seconds = (total.ended - total.started) if total.started else 0.0
    return total


def finalize_stage(ctx: CurationContext, stage: str, shard_stats: list[StageStats]) -> StageStats:
    """Merge shard counts into the manifest; drop shard files the source no longer has."""
    total = merge_shard_stats(stage, shard_stats)
    ctx.store.drop_shards_from(stage, shard_count(ctx.store))
    extra: dict[str, Any] = {"version": STAGE_VERSIONS.get(stage, "1")}
    if stage == "filter":
        extra["filter_steps"] = filter_step_counts(ctx.store)
    if stage in LLM_STAGES:
        from curation.provenance import stage_provenance

        extra["model"] = ctx.model_for(stage)
        extra["prompt_hash"] = ctx.prompt(stage).hash
        # What answered (the responses' `model` names), next to what the recipe asked for.
        extra.update(stage_provenance(ctx.store.iter_rows(stage, columns=["served_model", "simulated"])))
    ctx.store.manifest.set_stage(total, **extra)
    return total


def filter_step_counts(store: RunStore) -> dict[str, dict[str, int]]:
    """Per filter step: rows kept and rows dropped (every step judges every row, datatrove style)."""
    import json

    counts: dict[str, dict[str, int]] = {}
    for row in store.iter_rows("filter", columns=["verdicts"]):
        for step, verdict in json.loads(row.get("verdicts") or "{}").items():
            c = counts.setdefault(step, {"kept": 0, "dropped": 0})
            c["kept" if verdict.get("kept") else "dropped"] += 1
    return counts


def run_config_header(ctx: CurationContext) -> dict[str, Any]:
    """Manifest header: config hash and the recipe (secrets are env var *names*, never values)."""
    recipe_json = ctx.recipe.model_dump(mode="json")
    return {
        "run_name": ctx.recipe.run.name,
        "run_dir": str(ctx.run_dir),
        "config_hash": stable_hash(recipe_json, length=16),
        "recipe": recipe_json,
        "pid": os.getpid(),
    }


def run_until_sync(
    ctx: CurationContext, stages: list[str], on_stage: Callable[[StageStats], None] | None = None
) -> dict[str, StageStats]:
    """Plain sequential execution of the stages (used by tests and benchmarks without Prefect)."""
    results: dict[str, StageStats] = {}
    for stage in stages:
        if stage == "sources":
            st = run_sources(ctx)
            ctx.store.manifest.set_stage(st, version=STAGE_VERSIONS["sources"])
        elif stage == "publish":
            from curation.publish_step import run_publish

            st = run_publish(ctx)
        else:
            shard_stats = [run_stage_shard(ctx, stage, s) for s in range(shard_count(ctx.store))]
            st = finalize_stage(ctx, stage, shard_stats)
        results[stage] = st
        if on_stage:
            on_stage(st)
    return results
