"""Where the curate flow's shard tasks run: `threads` of the flow process (default), or `dask` /
`ray` worker processes on this machine or on a cluster (`run.executor`, `run.workers`,
`run.address`; `videorft curate --executor ray --workers 2 [--address URL]`).

The stage code does not know which one runs it (datatrove's executors are the model): a shard task
takes (recipe, run folder, stage, shard) and rebuilds its context once per worker process
(curation/contexts.py). Without `--address` a local cluster of `workers` processes is started for
the run and stopped after it; with it, the run joins a running Dask scheduler (`tcp://host:8786`)
or Ray cluster (`auto`, `ray://host:10001`), whose workers must run this checkout at the same path
and see the run folder at the same path (docs/OPERATIONS.md, "Scaling out").
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import TYPE_CHECKING, Any

from curation.user_errors import UserError

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

    from curation.config import Recipe, RunConfig

EXECUTORS = ("threads", "dask", "ray")
# Ray's smallest object store; shard tasks return a few KB of counts, nothing big travels.
_RAY_OBJECT_STORE_BYTES = 80 * 1024 * 1024


def in_flight_share(run: RunConfig) -> int:
    """How many processes may send this run's requests at once; each gets max_in_flight // share.

    Why a static split and not a cross-process semaphore: it needs no shared service (a semaphore
    on a Ray actor or a Dask `Semaphore` would be one more thing to keep alive, and every request
    would pay a round trip to it), and it holds whatever the executor. Its cost: a worker whose
    shards have no requests left cannot lend its share. With processes we started, at most
    min(workers, max_parallel_shards) run tasks at once; on a cluster we joined we do not know how
    many processes it has, but the flow never has more than max_parallel_shards tasks in flight,
    so each of them is a possible process.
    """
    if run.executor == "threads":
        return 1
    if run.address:
        return run.max_parallel_shards
    return max(1, min(run.workers, run.max_parallel_shards))


def check_executor(recipe: Recipe) -> None:
    """Fail before the run starts when the executor cannot work: its extra is not installed, or an
    endpoint's max_in_flight cannot be split between the processes that share it."""
    run = recipe.run
    if run.executor == "threads":
        return
    module = {"dask": "prefect_dask", "ray": "prefect_ray"}[run.executor]
    try:
        __import__(module)
    except ImportError:
        raise UserError(
            f"run.executor is {run.executor!r} but {module.replace('_', '-')} is not installed",
            'install the scale extra: pip install -e ".[scale]" (make setup does)',
        ) from None
    share = in_flight_share(run)
    for role, ep in recipe.llm.endpoints.items():
        if ep.max_in_flight < share:
            raise UserError(
                f"llm.endpoints.{role}.max_in_flight is {ep.max_in_flight}, fewer than the {share} "
                f"worker processes that would share it: the run-wide bound cannot hold",
                "raise max_in_flight, or lower run.workers / run.max_parallel_shards",
            )


def make_task_runner(run: RunConfig) -> TaskRunner:
    """The Prefect task runner for `run.executor` (call inside no flow; the flow enters it)."""
    if run.executor == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=run.max_parallel_shards)
    if run.executor == "dask":
        from prefect_dask import DaskTaskRunner

        if run.address:
            return DaskTaskRunner(address=run.address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": run.workers,
                "processes": True,
                # Shard tasks in one worker share its gateway and context, as threads of the flow do.
                "threads_per_worker": math.ceil(run.max_parallel_shards / run.workers),
                "dashboard_address": None,
                "env": worker_env(),
            }
        )
    if run.executor == "ray":
        from prefect_ray import RayTaskRunner

        if run.address:
            return RayTaskRunner(address=run.address)
        return RayTaskRunner(
            init_kwargs={
                # One CPU per shard task: `workers` tasks (and worker processes) at once.
                "num_cpus": run.workers,
                "include_dashboard": False,
                "object_store_memory": _RAY_OBJECT_STORE_BYTES,
                # A private session folder (short: Ray's sockets live in it); Ray leaves it behind,
                # run_curate removes it after the run (cleanup_temp_dirs).
                "_temp_dir": _ray_temp_dir(),
                "runtime_env": {"env_vars": worker_env()},
                "log_to_driver": False,
            }
        )
    raise UserError(f"run.executor must be one of {', '.join(EXECUTORS)} (got {run.executor!r})")


_TEMP_DIRS: list[str] = []


def _ray_temp_dir() -> str:
    path = tempfile.mkdtemp(prefix="vrft-ray-")
    _TEMP_DIRS.append(path)
    return path


def cleanup_temp_dirs() -> None:
    """Remove the session folders of the local Ray clusters this process started (after shutdown)."""
    import shutil

    while _TEMP_DIRS:
        shutil.rmtree(_TEMP_DIRS.pop(), ignore_errors=True)


def worker_env() -> dict[str, str]:
    """Environment for worker processes we start: the Prefect API the flow reports to.

    Without PREFECT_API_URL a flow runs against a temporary local server; worker processes would
    each start their own (seconds each, and their task runs would not show in the flow's). So the
    temporary server is started here, before the cluster, and its address handed to the workers.
    """
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        from prefect.settings import get_current_settings

        url = str(get_current_settings().api.url or "")
    if not url:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()  # the instance the flow's client will use too
        server.start()
        url = server.api_url
    env = {"PREFECT_API_URL": url}
    for name in ("PREFECT_HOME", "PREFECT_LOGGING_LEVEL", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def describe(run: RunConfig) -> str:
    """One line for the log: what runs the shard tasks."""
    if run.executor == "threads":
        return f"threads of the flow process ({run.max_parallel_shards})"
    where = f"cluster at {run.address}" if run.address else f"{run.workers} local worker processes"
    return f"{run.executor}: {where}, {run.max_parallel_shards} shard tasks at once"


def options_for_flow(run: RunConfig) -> dict[str, Any]:
    """`curate.with_options(**options_for_flow(run))`."""
    return {"task_runner": make_task_runner(run)}
