"""The `curate` Prefect flow: sources → extract → caption → draft → revise → filter → publish.

Thin wrappers only: the logic is in curation/runner.py. One Prefect task per (stage, shard), never
per sample (Prefect costs tens of milliseconds per task run). Shards are pipelined: shard 3 can be
in `draft` while shard 7 is still in `caption`, so both LLM endpoints stay busy, and the gateway
bounds in-flight requests per endpoint across all shard tasks.

Shard tasks are self-contained: they take (recipe, run folder, stage, shard) and rebuild their
context once per process (curation/contexts.py), so any Prefect task runner runs them: threads of
this process, Dask or Ray worker processes, here or on other machines (flows/executors.py). Only
the flow process writes the manifest, from the counts the tasks return; sources, publish and the
report run in the flow process.
"""

from __future__ import annotations

import logging
import os
import queue
import time
import uuid
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Cancelled

from curation.config import Recipe, load_recipe, recipe_from_dict
from curation.contexts import BUILT, release_contexts, shard_context
from curation.progress_files import clear_records
from curation.report.artifacts import artifact_key as _artifact_key
from curation.resume import resume_counts
from curation.run_outcome import check_failed_fraction, exit_status
from curation.runner import (
    LLM_STAGES,
    ROW_STAGES,
    STAGE_VERSIONS,
    CurationContext,
    finalize_stage,
    merge_shard_stats,
    run_config_header,
    run_sources,
    run_stage_shard,
    shard_count,
    stages_between,
)
from curation.stop import (
    Interrupted,
    register_run,
    request_stop,
    requested_signal,
    signal_name,
    unregister_run,
)
from curation.store import RunStore, StageStats
from curation.store import lock as run_lock
from curation.user_errors import check_inputs
from flows.interrupt import (
    ABANDONED,
    RunInterrupted,
    install_stop_handlers,
    interrupt_signal,
    prefect_owns_termination,
    quiet_abandoned_shards,
    shield_local_server,
)
from flows.progress import ProgressReporter


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
def sources_task(ctx: CurationContext) -> StageStats:
    return run_sources(ctx)


@task(name="stage-shard", task_run_name="{stage}-{shard}", cache_policy=NO_CACHE)
def stage_shard_task(
    recipe: dict[str, Any], run_dir: str, stage: str, shard: int, options: dict[str, Any]
) -> Any:
    """One (stage, shard) anywhere: the context comes from plain data, built once per process.
    `options`: run_token (one context per flow run), from_stage, in_flight_share, workdir."""
    with shard_context(
        recipe,
        run_dir,
        from_stage=options.get("from_stage"),
        in_flight_share=int(options.get("in_flight_share", 1)),
        workdir=options.get("workdir"),
        run_token=options.get("run_token", ""),
    ) as ctx:
        try:
            st = run_stage_shard(ctx, stage, shard)
        except Interrupted:
            # The run was stopped: the shard is abandoned (nothing written), not crashed.
            return Cancelled(message=f"{stage} shard {shard} {ABANDONED}")
    # Which process ran it and how many contexts that process built (once per run per process).
    st.llm["worker_pid"] = os.getpid()
    st.llm["contexts_built"] = BUILT["contexts"]
    return st


@task(name="publish", cache_policy=NO_CACHE)
def publish_task(ctx: CurationContext) -> StageStats:
    from curation.publish_step import run_publish

    return run_publish(ctx)


@task(name="report", cache_policy=NO_CACHE)
def report_task(ctx: CurationContext) -> str | None:
    """Write the run's HTML report and post its key figures and path (a report problem never fails
    the run). Not a link: the UI cannot open a `file://` URL (curation/report/artifacts.py)."""
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
    executor: str | None = None,
    workers: int | None = None,
    address: str | None = None,
    wait_for_lock: bool | None = None,
    progress_interval: float | None = None,
) -> dict[str, Any]:
    """Curate a dataset from a recipe (a YAML path, or the recipe as a dict for deployments).
    executor / workers / address / wait_for_lock override run.* (flows/executors.py);
    progress_interval: seconds between progress lines in the run's log (run.progress_interval_s)."""
    logger = get_run_logger()
    rec = resolve_recipe(
        config,
        recipe,
        source=source,
        media_root=media_root,
        runs_dir=runs_dir,
        run=run,
        push_to_hub=push_to_hub,
        executor=executor,
        workers=workers,
        address=address,
        wait_for_lock=wait_for_lock,
        progress_interval=progress_interval,
    )
    check_inputs(rec, stages_between(from_stage, until))
    if not _runner_matches(rec.run.executor):
        # Started as a deployment (or by a caller) with another task runner than the recipe asks
        # for: run the grid in a subflow that has the right one.
        from flows.executors import check_executor, cleanup_temp_dirs, make_task_runner

        check_executor(rec)
        logger.info("starting the %s task runner for the shard tasks", rec.run.executor)
        try:
            return curate_with_runner.with_options(task_runner=make_task_runner(rec.run))(
                recipe=rec.model_dump(mode="json"), until=until, from_stage=from_stage
            )
        finally:
            cleanup_temp_dirs()
    return _curate(rec, until=until, from_stage=from_stage, logger=logger)


@flow(name="curate-shards")
def curate_with_runner(
    recipe: dict[str, Any], until: str | None = None, from_stage: str | None = None
) -> dict[str, Any]:
    """The curate run itself, under the task runner its caller chose (see `curate`)."""
    return _curate(recipe_from_dict(recipe), until=until, from_stage=from_stage, logger=get_run_logger())


def _runner_matches(executor: str) -> bool:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    name = type(ctx.task_runner).__name__ if ctx and ctx.task_runner else ""
    return (
        name
        == {"threads": "ThreadPoolTaskRunner", "dask": "DaskTaskRunner", "ray": "RayTaskRunner"}[executor]
    )


def resolve_recipe(config: str | None, recipe: dict[str, Any] | None, **flags: Any) -> Recipe:
    overrides = {
        "source.path": flags.get("source"),
        "source.media_root": flags.get("media_root"),
        "run.runs_dir": flags.get("runs_dir"),
        "run.name": flags.get("run"),
        "publish.push_to_hub": flags.get("push_to_hub"),
        "publish.hub_token_env": flags.get("hub_token_env"),
        "run.executor": flags.get("executor"),
        "run.workers": flags.get("workers"),
        "run.address": flags.get("address"),
        "run.wait_for_lock": flags.get("wait_for_lock"),
        "run.progress_interval_s": flags.get("progress_interval"),
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
    from flows.executors import in_flight_share

    stages = stages_between(from_stage, until)
    run_dir = str(rec.run_dir.resolve())
    recipe_json = rec.model_dump(mode="json")
    options = {
        "run_token": uuid.uuid4().hex,
        "from_stage": from_stage,
        "in_flight_share": in_flight_share(rec.run),
        "workdir": os.getcwd(),
    }
    # One run folder, one writer (a no-op when run_curate already holds it for this process).
    run_lock.acquire(rec.run_dir, wait=rec.run.wait_for_lock)
    try:
        return _curate_locked(rec, recipe_json, run_dir, options, stages, logger)
    finally:
        run_lock.release(rec.run_dir)
        # This process's contexts of the run (with threads: the shard tasks' too); worker processes
        # close theirs on exit or when a later run needs the room (curation/contexts.py).
        release_contexts(run_dir)


def _curate_locked(
    rec: Recipe,
    recipe_json: dict[str, Any],
    run_dir: str,
    options: dict[str, Any],
    stages: list[str],
    logger: Any,
) -> dict[str, Any]:
    from flows.executors import describe

    t_flow = time.time()
    # The flow's own context: with threads it is the very one the shard tasks use (same key).
    with shard_context(
        recipe_json,
        run_dir,
        from_stage=options["from_stage"],
        in_flight_share=options["in_flight_share"],
        workdir=options["workdir"],
        run_token=options["run_token"],
    ) as ctx:
        store = ctx.store
        register_run(ctx.run_dir)
        clear_records(ctx.run_dir)
        quiet_abandoned_shards()
        restore_signals = install_stop_handlers()
        # Filled shard by shard, also when a shard fails; recorded as partial stage counts if the
        # grid does not finish (a finished grid's stages are finalized, with provenance, below).
        per_stage: dict[str, list[Any]] = {}
        grid_finished = False
        try:
            store.manifest.update(
                **run_config_header(ctx),
                status="running",
                stages_requested=stages,
                executor=rec.run.executor,
                error=None,
                exit_status=None,
            )
            logger.info("shard tasks: %s", describe(rec.run))
            # Endpoints first: a wrong key, model or URL stops the run in seconds, before anything is paid.
            _preflight(ctx, stages, logger)
            results: dict[str, StageStats] = {}
            if "sources" in stages:
                results["sources"] = sources_task(ctx)
                store.manifest.set_stage(results["sources"], version=STAGE_VERSIONS["sources"])
                _post_stage_artifacts(rec.run.name, results["sources"])
                logger.info("sources: %s", _line(results["sources"]))
            n = shard_count(store)
            row_stages = [s for s in ROW_STAGES if s in stages]
            for count in resume_counts(ctx, row_stages):
                logger.info(count.line())
            with ProgressReporter(
                ctx.run_dir,
                row_stages,
                n,
                lambda line: logger.info("progress %s", line),
                rec.run.progress_interval_s,
            ):
                _run_shard_grid(
                    recipe_json, run_dir, options, n, row_stages, rec.run.max_parallel_shards, per_stage
                )
            grid_finished = True
            workers = _pop_worker_pids(per_stage)
            for stage in row_stages:
                results[stage] = finalize_stage(ctx, stage, per_stage[stage])
                _post_stage_artifacts(rec.run.name, results[stage])
                logger.info("%s: %s", stage, _line(results[stage]))
            if row_stages:
                # How many processes ran shard tasks (1 with threads): what the executor really did.
                store.manifest.update(worker_processes=len(workers - {0}))
            for stage in row_stages:  # before publishing: a failed run never publishes
                check_failed_fraction(stage, results[stage].to_dict(), rec.run.max_failed_fraction)
            if "publish" in stages:
                ctx.stop.check()  # a run stopped while its last shards finished publishes nothing
                results["publish"] = publish_task(ctx)
                logger.info("publish: %s", _line(results["publish"]))
            store.manifest.update(status="completed", seconds_total=round(time.time() - t_flow, 3))
            _report(ctx, logger)  # after the status: the report shows how the run ended
            return store.manifest.data
        except BaseException as err:
            signum = interrupt_signal(err) or (requested_signal() if ctx.stop.is_set() else None)
            if not grid_finished:
                _record_partial_stages(ctx, per_stage, logger)
            if signum is not None:
                return _interrupted(ctx, signum, t_flow, logger, err)
            store.manifest.update(
                status="failed",
                error=f"{type(err).__name__}: {err}",
                exit_status=exit_status(err),
                seconds_total=round(time.time() - t_flow, 3),
            )
            try:  # the report of a failed run says so, and shows where its rows are
                _report(ctx, logger)
            except Exception as report_err:  # noqa: BLE001 - never hide the run's own error
                logger.warning("could not write the report: %s", report_err)
            raise
        finally:
            restore_signals()
            unregister_run(ctx.run_dir)


def _interrupted(ctx: CurationContext, signum: int, t_flow: float, logger: Any, err: BaseException) -> Any:
    """Record a stopped run (manifest status and report) and end the flow run as Cancelled.

    The shard tasks still in flight see the stop flag and abandon their shards within a fraction
    of a second; the task runner waits for them when the flow returns. Under a worker, a SIGTERM
    that carries the runner's intent (a cancellation from the UI) goes back to Prefect's engine,
    which sets the state the runner expects.
    """
    request_stop(signum)
    seconds = round(time.time() - t_flow, 3)
    ctx.store.manifest.update(
        status="interrupted",
        interrupted={"signal": signal_name(signum), "after_s": seconds},
        seconds_total=seconds,
    )
    message = (
        f"interrupted by {signal_name(signum)} after {seconds:.1f}s: shards in flight abandoned, "
        "nothing published; rerun the same command to resume"
    )
    logger.warning(message)
    if ctx.recipe.run.report:
        try:  # the report says "interrupted" too; never a reason to stop slowly or loudly
            from curation.report.html import write_report

            # Summary only: embedding samples' thumbnails takes ~15 s at 2,000 samples, and a
            # stop must take seconds (`videorft report RUN` writes the full page).
            ctx.store.manifest.update(report=str(write_report(ctx.run_dir, max_samples=0)))
        except Exception as report_err:  # noqa: BLE001
            logger.warning("could not write the report: %s", report_err)
    if prefect_owns_termination():
        from prefect.exceptions import TerminationSignal

        if isinstance(err, TerminationSignal):
            raise err
        raise TerminationSignal(signum) from err
    return Cancelled(message=message)


def _preflight(ctx: CurationContext, stages: list[str], logger: Any) -> None:
    """Check the endpoints of the LLM stages this run includes; record what they serve (before any
    shard task builds its gateway: the served identity is part of the cache key)."""
    from curation.llm.preflight import preflight

    roles = sorted({ctx.role_for(s) for s in LLM_STAGES if s in stages})
    if not roles:
        return
    checked = preflight(ctx.recipe.llm.endpoints, roles)
    ctx.store.manifest.update(llm_endpoints=checked)
    for role, c in checked.items():
        served = f", serving {c['served_root']}" if c.get("served_root") else ""
        logger.info("endpoint %s: %s model %r ok%s", role, c["base_url"], c["model"], served)


def _report(ctx: CurationContext, logger: Any) -> None:
    if not ctx.recipe.run.report:
        return
    report = report_task(ctx)
    if report:
        logger.info("report: %s", report)


def _pop_worker_pids(per_stage: dict[str, list[Any]]) -> set[int]:
    """The worker processes that ran shard tasks, taken out of the shards' LLM counters."""
    workers: set[int] = set()
    for stats in per_stage.values():
        for st in stats:
            if st is not None:
                workers.add(int(st.llm.pop("worker_pid", 0)))
                st.llm.pop("contexts_built", None)
    return workers


def _record_partial_stages(ctx: CurationContext, per_stage: dict[str, list[Any]], logger: Any) -> None:
    """A run that stops mid-grid (an endpoint down, a stop, a shard error) still records what its
    finished shards did: the manifest's stage entry says `partial`, with shards done of shards in
    all, so a user sees what a night's run got through before it failed. The rows themselves are
    in the run store either way; a rerun takes them up."""
    try:
        _pop_worker_pids(per_stage)
        for stage, stats in per_stage.items():
            done = [st for st in stats if st is not None]
            if not done:
                continue
            total = merge_shard_stats(stage, done)
            ctx.store.manifest.set_stage(
                total,
                version=STAGE_VERSIONS.get(stage, "1"),
                partial=len(done) < len(stats),
                shards_total=len(stats),
            )
            logger.info("%s (%d of %d shards finished): %s", stage, len(done), len(stats), _line(total))
    except Exception as err:  # noqa: BLE001 - never hide the run's own error behind its bookkeeping
        logger.warning("could not record the finished shards' counts: %s", err)


def _run_shard_grid(
    recipe: dict[str, Any],
    run_dir: str,
    options: dict[str, Any],
    n: int,
    row_stages: list[str],
    slots: int,
    per_stage: dict[str, list[Any]],
) -> None:
    """Run the (stage × shard) grid pipelined: a shard's next stage is submitted when its previous
    one finished, never earlier, and without `wait_for` (a task waiting on an unfinished future
    holds a thread of the pool, or, on Ray, blocks a worker in `ray.get()`). At most `slots` tasks
    are in flight at once, and started shards advance before new ones start.

    Completion is observed through Prefect futures' done callbacks, so every task runner works
    (threads, Dask, Ray): no executor-specific future is touched. Each finished shard's stats go
    into `per_stage[stage][shard]` as it finishes (None for shards not finished), so a caller whose
    grid raised still has the finished shards' counts.
    """
    per_stage.update({s: [None] * n for s in row_stages})
    if not row_stages:
        return
    # LLM shard tasks carry one tag per endpoint (`llm:<host>:<port>`), so a tag concurrency limit
    # on the Prefect server protects each endpoint across all runs (docs/OPERATIONS.md).
    from flows.deploy import endpoint_tags

    tasks = {s: stage_shard_task.with_options(tags=endpoint_tags(recipe, s)) for s in row_stages}
    from flows.progress import current

    bars = current()
    if bars is not None:
        bars.start(row_stages, n)
    finished: queue.Queue[Any] = queue.Queue()
    pending: dict[Any, tuple[int, int]] = {}  # future -> (shard, stage index)
    ready: list[tuple[int, int]] = []  # (shard, next stage index)
    next_shard, error = 0, None
    while pending or (error is None and (ready or next_shard < n)):
        while error is None and len(pending) < slots and (ready or next_shard < n):
            if ready:
                shard, k = ready.pop(0)
            else:
                shard, k = next_shard, 0
                next_shard += 1
            stage = row_stages[k]
            fut = tasks[stage].submit(recipe, run_dir, stage, shard, options)
            pending[fut] = (shard, k)
            fut.add_done_callback(finished.put)
        fut = finished.get()
        shard, k = pending.pop(fut)
        try:
            per_stage[row_stages[k]][shard] = fut.result()
        except BaseException as err:  # stop submitting, let the shards in flight finish, then raise
            error = error or err
            continue
        if bars is not None:
            bars.advance(row_stages[k])
        if k + 1 < len(row_stages):
            ready.append((shard, k + 1))
    if error is not None:
        raise error


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
    """Entry point for the CLI and tests: runs the flow with the recipe's executor (threads of this
    process by default; `run.executor` dask / ray: worker processes, flows/executors.py)."""
    from flows.executors import check_executor, cleanup_temp_dirs, make_task_runner

    rec = recipe or resolve_recipe(str(config) if config else None, None, **flags)
    # User mistakes fail here, before Prefect starts anything (its temporary server takes seconds);
    # so does a run folder another run holds.
    check_inputs(rec, stages_between(from_stage, until))
    check_executor(rec)
    run_lock.acquire(rec.run_dir, wait=rec.run.wait_for_lock)
    try:
        runner = make_task_runner(rec.run)
        shield_local_server()
        state = curate.with_options(task_runner=runner)(
            recipe=rec.model_dump(mode="json"), until=until, from_stage=from_stage, return_state=True
        )
        manifest = RunStore(rec.run_dir).manifest.data
        if state.is_cancelled() and manifest.get("status") == "interrupted":
            raise RunInterrupted(requested_signal(), manifest)
        return state.result()
    finally:
        run_lock.release(rec.run_dir)
        release_contexts(str(rec.run_dir.resolve()))
        cleanup_temp_dirs()
