"""The `curate` Prefect flow: sources → extract → caption → draft → revise → filter → publish.

Thin wrappers only: the logic is in curation/runner.py. One Prefect task per (stage, shard), never
per sample (Prefect costs tens of milliseconds per task run). Shards are pipelined: shard 3 can be
in `draft` while shard 7 is still in `caption`, so both LLM endpoints stay busy, and the gateway
bounds in-flight requests per endpoint across all shard threads.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from curation.config import Recipe, load_recipe, recipe_from_dict
from curation.report.artifacts import artifact_key as _artifact_key
from curation.run_outcome import check_failed_fraction, exit_status
from curation.runner import (
    LLM_STAGES,
    ROW_STAGES,
    STAGE_VERSIONS,
    CurationContext,
    finalize_stage,
    forced_stages,
    run_config_header,
    run_sources,
    run_stage_shard,
    shard_count,
    stages_between,
)
from curation.store import RunStore, StageStats
from curation.user_errors import check_inputs

# Shard tasks run in threads of this process; they find their run's context here rather than
# through task parameters (a recipe object and a gateway are neither hashable nor serialisable).
_CONTEXTS: dict[str, CurationContext] = {}


def _ctx(run_key: str) -> CurationContext:
    return _CONTEXTS[run_key]


def _post_stage_artifacts(run_name: str, st: StageStats) -> None:
    """A table of counts and a markdown of rejection/failure reasons per stage (best effort)."""
    try:
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        d = st.to_dict()
        table = [
            {
                k: d[k]
                for k in (
                    "in",
                    "ok",
                    "rejected",
                    "failed",
                    "reused",
                    "computed",
                    "seconds",
                    "llm_requests",
                    "llm_cache_hits",
                )
            }
        ]
        create_table_artifact(
            key=_artifact_key(run_name, st.stage, "counts"),
            table=table,
            description=f"{st.stage}: rows in and where they went",
        )
        lines = [f"# {st.stage}: reasons", "", "| reason | rows |", "|---|---|"]
        for reason, n in sorted(st.reasons.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {reason.replace('|', '/')} | {n} |")
        if not st.reasons:
            lines.append("| (none) | 0 |")
        create_markdown_artifact(key=_artifact_key(run_name, st.stage, "reasons"), markdown="\n".join(lines))
    except Exception as err:  # noqa: BLE001 - artifacts are a convenience, never a reason to fail a run
        logging.getLogger("videorft.curate").warning("could not post artifacts for %s: %s", st.stage, err)


@task(name="sources", cache_policy=NO_CACHE)
def sources_task(run_key: str) -> StageStats:
    ctx = _ctx(run_key)
    st = run_sources(ctx)
    ctx.store.manifest.set_stage(st, version=STAGE_VERSIONS["sources"])
    return st


@task(name="stage-shard", task_run_name="{stage}-{shard}", cache_policy=NO_CACHE)
def stage_shard_task(run_key: str, stage: str, shard: int) -> StageStats:
    return run_stage_shard(_ctx(run_key), stage, shard)


@task(name="publish", cache_policy=NO_CACHE)
def publish_task(run_key: str) -> StageStats:
    from curation.publish_step import run_publish

    return run_publish(_ctx(run_key))


@task(name="report", cache_policy=NO_CACHE)
def report_task(run_key: str) -> str | None:
    """Write the run's HTML report and post its key figures and path (a report problem never fails
    the run). Not a link: the UI cannot open a `file://` URL (curation/report/artifacts.py)."""
    ctx = _ctx(run_key)
    try:
        from curation.report.artifacts import post_report_artifacts
        from curation.report.html import write_report

        path = write_report(ctx.run_dir)
        ctx.store.manifest.update(report=str(path))
        post_report_artifacts(ctx.recipe.run.name, ctx.store.manifest.data, path.resolve())
        return str(path)
    except Exception as err:  # noqa: BLE001 - the data is published; the report can be rebuilt
        logging.getLogger("videorft.curate").warning("could not write the report: %s", err)
        return None


# No log_prints: dill (used by `datasets` when publishing) captures `dis.dis` output through stdout,
# which log_prints would flood into the flow run's logs.
@flow(name="curate")
def curate(
    config: str | None = None,
    recipe: dict[str, Any] | None = None,
    source: str | None = None,
    media_root: str | None = None,
    runs_dir: str | None = None,
    run: str | None = None,
    until: str | None = None,
    from_stage: str | None = None,
    push_to_hub: str | None = None,
) -> dict[str, Any]:
    """Curate a dataset from a recipe (a YAML path, or the recipe as a dict for deployments)."""
    logger = get_run_logger()
    rec = resolve_recipe(
        config,
        recipe,
        source=source,
        media_root=media_root,
        runs_dir=runs_dir,
        run=run,
        push_to_hub=push_to_hub,
    )
    check_inputs(rec, stages_between(from_stage, until))
    return _curate(rec, until=until, from_stage=from_stage, logger=logger)


def resolve_recipe(config: str | None, recipe: dict[str, Any] | None, **flags: Any) -> Recipe:
    overrides = {
        "source.path": flags.get("source"),
        "source.media_root": flags.get("media_root"),
        "run.runs_dir": flags.get("runs_dir"),
        "run.name": flags.get("run"),
        "publish.push_to_hub": flags.get("push_to_hub"),
        "publish.hub_token_env": flags.get("hub_token_env"),
    }
    if recipe is not None:
        data = dict(recipe)
        for dotted, value in overrides.items():
            if value is not None:
                sect, key = dotted.split(".")
                data.setdefault(sect, {})[key] = value
        return recipe_from_dict(data)
    if config is None:
        raise ValueError("curate needs a recipe: a YAML path (config=) or a dict (recipe=)")
    return load_recipe(config, overrides)


def _curate(rec: Recipe, *, until: str | None, from_stage: str | None, logger: Any) -> dict[str, Any]:
    stages = stages_between(from_stage, until)
    store = RunStore(rec.run_dir)
    ctx = CurationContext(recipe=rec, store=store, forced=forced_stages(from_stage))
    run_key = uuid.uuid4().hex
    _CONTEXTS[run_key] = ctx
    t_flow = time.time()
    store.manifest.update(
        **run_config_header(ctx), status="running", stages_requested=stages, error=None, exit_status=None
    )
    try:
        # Endpoints first: a wrong key, model or URL stops the run in seconds, before anything is paid.
        _preflight(ctx, stages, logger)
        results: dict[str, StageStats] = {}
        if "sources" in stages:
            results["sources"] = sources_task.submit(run_key).result()
            _post_stage_artifacts(rec.run.name, results["sources"])
            logger.info("sources: %s", _line(results["sources"]))
        n = shard_count(store)
        row_stages = [s for s in ROW_STAGES if s in stages]
        per_stage = _run_shard_grid(run_key, n, row_stages, rec.run.max_parallel_shards)
        for stage in row_stages:
            results[stage] = finalize_stage(ctx, stage, per_stage[stage])
            _post_stage_artifacts(rec.run.name, results[stage])
            logger.info("%s: %s", stage, _line(results[stage]))
        for stage in row_stages:  # before publishing: a failed run never publishes
            check_failed_fraction(stage, results[stage].to_dict(), rec.run.max_failed_fraction)
        if "publish" in stages:
            results["publish"] = publish_task.submit(run_key).result()
            logger.info("publish: %s", _line(results["publish"]))
        store.manifest.update(status="completed", seconds_total=round(time.time() - t_flow, 3))
        _report(run_key, logger)
        return store.manifest.data
    except BaseException as err:
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        store.manifest.update(
            status=status,
            error=f"{type(err).__name__}: {err}",
            exit_status=exit_status(err),
            seconds_total=round(time.time() - t_flow, 3),
        )
        if not isinstance(err, KeyboardInterrupt):
            try:  # the report of a failed run says so, and shows where its rows are
                _report(run_key, logger)
            except Exception as report_err:  # noqa: BLE001 - never hide the run's own error
                logger.warning("could not write the report: %s", report_err)
        raise
    finally:
        ctx.close()
        _CONTEXTS.pop(run_key, None)


def _preflight(ctx: CurationContext, stages: list[str], logger: Any) -> None:
    """Check the endpoints of the LLM stages this run includes; record what they serve."""
    from curation.llm.preflight import preflight

    roles = sorted({ctx.role_for(s) for s in LLM_STAGES if s in stages})
    if not roles:
        return
    checked = preflight(ctx.recipe.llm.endpoints, roles)
    ctx.store.manifest.update(llm_endpoints=checked)
    for role, c in checked.items():
        served = f", serving {c['served_root']}" if c.get("served_root") else ""
        logger.info("endpoint %s: %s model %r ok%s", role, c["base_url"], c["model"], served)


def _report(run_key: str, logger: Any) -> None:
    if not _ctx(run_key).recipe.run.report:
        return
    report = report_task.submit(run_key).result()
    if report:
        logger.info("report: %s", report)


def _run_shard_grid(run_key: str, n: int, row_stages: list[str], slots: int) -> dict[str, list[StageStats]]:
    """Run the (stage × shard) grid pipelined: a shard's next stage is submitted when its previous
    one finished, never earlier. (A task submitted with `wait_for` on an unfinished future holds a
    thread of the pool while it waits: submitting the whole grid at once left most of the
    `max_parallel_shards` threads blocked and the endpoints idle.) At most `slots` tasks are in the
    pool at once, and started shards advance before new ones start.
    """
    per_stage: dict[str, list[Any]] = {s: [None] * n for s in row_stages}
    if not row_stages:
        return per_stage
    # LLM shard tasks carry one tag per endpoint (`llm:<host>:<port>`), so a tag concurrency limit
    # on the Prefect server protects each endpoint across all runs (docs/OPERATIONS.md).
    from flows.deploy import endpoint_tags

    recipe = _ctx(run_key).recipe
    tasks = {s: stage_shard_task.with_options(tags=endpoint_tags(recipe, s)) for s in row_stages}
    from flows.progress import current

    bars = current()
    if bars is not None:
        bars.start(row_stages, n)
    pending: dict[Any, tuple[int, int, Any]] = {}  # wrapped future -> (shard, stage index, future)
    ready: list[tuple[int, int, Any]] = []  # (shard, next stage index, upstream future)
    next_shard, error = 0, None
    while pending or (error is None and (ready or next_shard < n)):
        while error is None and len(pending) < slots and (ready or next_shard < n):
            if ready:
                shard, k, prev = ready.pop(0)
            else:
                shard, k, prev = next_shard, 0, None
                next_shard += 1
            stage = row_stages[k]
            fut = tasks[stage].submit(run_key, stage, shard, wait_for=[prev] if prev is not None else None)
            pending[fut.wrapped_future] = (shard, k, fut)
        done, _ = concurrent.futures.wait(list(pending), return_when=concurrent.futures.FIRST_COMPLETED)
        for wrapped in done:
            shard, k, fut = pending.pop(wrapped)
            try:
                per_stage[row_stages[k]][shard] = fut.result()
            except BaseException as err:  # stop submitting, let the shards in flight finish, then raise
                error = error or err
                continue
            if bars is not None:
                bars.advance(row_stages[k])
            if k + 1 < len(row_stages):
                ready.append((shard, k + 1, fut))
    if error is not None:
        raise error
    return per_stage


def _line(st: StageStats) -> str:
    d = st.to_dict()
    extra = (
        f", llm requests {d['llm_requests']}, cache hits {d['llm_cache_hits']}"
        if d["llm_requests"] or d["llm_cache_hits"]
        else ""
    )
    return (
        f"in {d['in']} → ok {d['ok']}, rejected {d['rejected']}, failed {d['failed']} "
        f"(reused {d['reused']}){extra}, {d['seconds']:.1f}s"
    )


def run_curate(
    config: str | Path | None = None,
    *,
    recipe: Recipe | None = None,
    until: str | None = None,
    from_stage: str | None = None,
    **flags: Any,
) -> dict[str, Any]:
    """Entry point for the CLI and tests: runs the flow with as many shard threads as the recipe says."""
    rec = recipe or resolve_recipe(str(config) if config else None, None, **flags)
    # User mistakes fail here, before Prefect starts anything (its temporary server takes seconds).
    check_inputs(rec, stages_between(from_stage, until))
    runner = ThreadPoolTaskRunner(max_workers=rec.run.max_parallel_shards)
    return curate.with_options(task_runner=runner)(
        recipe=rec.model_dump(mode="json"), until=until, from_stage=from_stage
    )
