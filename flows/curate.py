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
from prefect.states import Cancelled
from prefect.task_runners import ThreadPoolTaskRunner

from curation.config import Recipe, load_recipe, recipe_from_dict
from curation.progress_files import clear_records
from curation.report.artifacts import artifact_key as _artifact_key
from curation.resume import resume_counts
from curation.runner import (
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
from curation.stop import (
    Interrupted,
    register_run,
    request_stop,
    requested_signal,
    signal_name,
    unregister_run,
)
from curation.store import RunStore, StageStats
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
def stage_shard_task(run_key: str, stage: str, shard: int) -> Any:
    try:
        return run_stage_shard(_ctx(run_key), stage, shard)
    except Interrupted:
        # The run was stopped: the shard is abandoned (nothing written), not crashed.
        return Cancelled(message=f"{stage} shard {shard} {ABANDONED}")


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
    progress_interval: float | None = None,
) -> dict[str, Any]:
    """Curate a dataset from a recipe (a YAML path, or the recipe as a dict for deployments).
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
        progress_interval=progress_interval,
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
    stages = stages_between(from_stage, until)
    store = RunStore(rec.run_dir)
    ctx = CurationContext(recipe=rec, store=store, forced=forced_stages(from_stage))
    run_key = uuid.uuid4().hex
    _CONTEXTS[run_key] = ctx
    t_flow = time.time()
    register_run(rec.run_dir)
    clear_records(rec.run_dir)
    quiet_abandoned_shards()
    store.manifest.update(**run_config_header(ctx), status="running", stages_requested=stages)
    restore_signals = install_stop_handlers()
    try:
        results: dict[str, StageStats] = {}
        if "sources" in stages:
            results["sources"] = sources_task.submit(run_key).result()
            _post_stage_artifacts(rec.run.name, results["sources"])
            logger.info("sources: %s", _line(results["sources"]))
        n = shard_count(store)
        row_stages = [s for s in ROW_STAGES if s in stages]
        for count in resume_counts(ctx, row_stages):
            logger.info(count.line())
        interval = rec.run.progress_interval_s
        with ProgressReporter(
            rec.run_dir, row_stages, n, lambda line: logger.info("progress %s", line), interval
        ):
            per_stage = _run_shard_grid(run_key, n, row_stages, rec.run.max_parallel_shards)
        for stage in row_stages:
            results[stage] = finalize_stage(ctx, stage, per_stage[stage])
            _post_stage_artifacts(rec.run.name, results[stage])
            logger.info("%s: %s", stage, _line(results[stage]))
        if "publish" in stages:
            ctx.stop.check()  # a run stopped while its last shards finished publishes nothing
            results["publish"] = publish_task.submit(run_key).result()
            logger.info("publish: %s", _line(results["publish"]))
        if rec.run.report:
            report = report_task.submit(run_key).result()
            if report:
                logger.info("report: %s", report)
        store.manifest.update(status="completed", seconds_total=round(time.time() - t_flow, 3))
        return store.manifest.data
    except BaseException as err:
        signum = interrupt_signal(err) or (requested_signal() if ctx.stop.is_set() else None)
        if signum is None:
            store.manifest.update(status="failed", seconds_total=round(time.time() - t_flow, 3))
            raise
        return _interrupted(ctx, signum, t_flow, logger, err)
    finally:
        restore_signals()
        ctx.close()
        _CONTEXTS.pop(run_key, None)
        unregister_run(rec.run_dir)


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
    shield_local_server()
    state = curate.with_options(task_runner=runner)(
        recipe=rec.model_dump(mode="json"), until=until, from_stage=from_stage, return_state=True
    )
    manifest = RunStore(rec.run_dir).manifest.data
    if state.is_cancelled() and manifest.get("status") == "interrupted":
        raise RunInterrupted(requested_signal(), manifest)
    return state.result()
