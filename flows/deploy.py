"""`videorft deploy`: register the project's work pools, limits and deployments with a Prefect server.

Order matters and every step is idempotent, so re-running after a change is the normal way to
apply it:

1. work pools from `configs/operations.yaml` (process type; created when missing, their
   concurrency limit set every time: the `gpu` pool's limit is the number of GPU slots behind it);
2. tag concurrency limits that protect each LLM endpoint (`llm:<host>:<port>`, see
   `endpoint_tags`), listed explicitly or derived from curation recipes;
3. every deployment of `prefect.yaml`, read the way `prefect deploy --all` reads it (build steps,
   templated pull steps, schedules, concurrency limits), applied through the client API (see
   `register_deployments` for why not the CLI). The pull step makes process workers run the code
   of this checkout.

It needs a real server (`PREFECT_API_URL`): deployments made against Prefect's temporary local
server vanish with it, so this refuses to run without one.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field

from curation.user_errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PREFECT_FILE = REPO_ROOT / "prefect.yaml"
DEFAULT_OPERATIONS_FILE = REPO_ROOT / "configs" / "operations.yaml"

# Which LLM role each curation stage talks to (curation/stages/*): its shard tasks carry that
# endpoint's tag. Stages not listed (sources, extract, filter, publish) call no remote LLM.
STAGE_ROLES: dict[str, str] = {"caption": "captioner", "draft": "reasoner", "revise": "reviser"}
TAG_PREFIX = "llm:"

log = logging.getLogger("videorft.deploy")


# ---- configs/operations.yaml ----------------------------------------------------------------------


class WorkPoolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = "process"
    description: str | None = None
    # Flow runs in flight across all workers of the pool; None = unlimited.
    concurrency_limit: int | None = Field(default=None, ge=0)


class EndpointLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Shard tasks in flight per endpoint tag, across every flow run on the server.
    default_limit: int = Field(default=4, ge=0)
    # Curation recipes whose endpoints get a tag limit of `default_limit` (paths relative to the repo).
    recipes: list[str] = Field(default_factory=list)
    # Explicit limits, tag -> slots; they win over the derived ones.
    limits: dict[str, int] = Field(default_factory=dict)


class Operations(BaseModel):
    model_config = ConfigDict(extra="forbid")

    work_pools: dict[str, WorkPoolSpec] = Field(default_factory=dict)
    llm_endpoints: EndpointLimits = Field(default_factory=EndpointLimits)


def load_operations(path: str | Path = DEFAULT_OPERATIONS_FILE) -> Operations:
    data = yaml.safe_load(Path(path).read_text()) or {}
    return Operations.model_validate(data)


def load_prefect_file(path: str | Path = DEFAULT_PREFECT_FILE) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict) or not isinstance(data.get("deployments"), list):
        raise ValueError(f"{path}: expected a prefect.yaml with a `deployments:` list")
    return data


# ---- endpoint tags ----------------------------------------------------------------------------------


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def endpoint_tag(endpoint: Any) -> str | None:
    """`llm:<host>:<port>` for an HTTP endpoint (an `EndpointConfig` or its dict), else None.

    One tag per server, not per role or model: the captioner and the reviser usually share one vLLM
    server and must share its limit. In-process backends (no `base_url`) get no tag: they load the
    model inside the flow's own process, there is no shared server to protect.
    """
    base_url = _get(endpoint, "base_url")
    if not base_url:
        return None
    parts = urlsplit(str(base_url))
    if not parts.hostname:
        raise ValueError(f"endpoint base_url {base_url!r} has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{TAG_PREFIX}{parts.hostname}:{port}"


def endpoint_tags(recipe: Any, stage: str | None = None) -> list[str]:
    """The concurrency tags of a curation recipe's LLM endpoints (a `Recipe` or its dict).

    `stage=None`: the tags of every endpoint (what `videorft deploy` creates limits for).
    `stage="caption" | "draft" | "revise"`: the tag of the endpoint that stage's shard tasks call;
    other stages return []. The curate flow gives each LLM shard task these tags, e.g.
    `stage_shard_task.with_options(tags=endpoint_tags(rec, stage)).submit(...)`, so that a tag
    limit `llm:<host>:<port> = N` caps the shard tasks hitting that server across all flow runs.
    """
    endpoints = _get(_get(recipe, "llm", {}), "endpoints", {}) or {}
    if stage is not None:
        role = STAGE_ROLES.get(stage)
        if role is None or role not in endpoints:
            return []
        selected = [endpoints[role]]
    else:
        selected = list(endpoints.values())
    return sorted({t for t in (endpoint_tag(e) for e in selected) if t})


def recipe_endpoint_tags(recipe_path: str | Path) -> list[str]:
    """Tags of a recipe file; `${VAR:-default}` placeholders expand from the environment."""
    from curation.config import expand_env

    data = expand_env(yaml.safe_load(Path(recipe_path).read_text()) or {})
    return endpoint_tags(data)


def tag_limits(ops: Operations, base_dir: Path = REPO_ROOT) -> dict[str, int]:
    """tag -> limit: tags derived from the listed recipes at `default_limit`, then explicit ones."""
    limits: dict[str, int] = {}
    for rel in ops.llm_endpoints.recipes:
        path = Path(rel) if Path(rel).is_absolute() else base_dir / rel
        for tag in recipe_endpoint_tags(path):
            limits[tag] = ops.llm_endpoints.default_limit
    limits.update(ops.llm_endpoints.limits)
    return limits


# ---- applying ---------------------------------------------------------------------------------------


def _require_api_url() -> str:
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise NoPrefectServer(
            "PREFECT_API_URL is not set: deployments on Prefect's temporary server would vanish with it",
            "start a server (`prefect server start`, docs/OPERATIONS.md) and "
            "export PREFECT_API_URL=http://HOST:4200/api",
        )
    return url


class NoPrefectServer(UserError, RuntimeError):
    """`videorft deploy` needs a real Prefect server to register with."""


def default_base_job_template(pool_type: str) -> dict[str, Any]:
    if pool_type != "process":
        raise ValueError(
            f"work pool type {pool_type!r}: `videorft deploy` creates process pools only; create "
            f"Kubernetes/Docker pools with `prefect work-pool create --type ...` (docs/OPERATIONS.md)"
        )
    from prefect.workers.process import ProcessWorker

    return ProcessWorker.get_default_base_job_template()


def ensure_work_pools(pools: Mapping[str, WorkPoolSpec], client: Any) -> dict[str, dict[str, Any]]:
    """Create missing pools; set every pool's concurrency limit (None clears it)."""
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    done: dict[str, dict[str, Any]] = {}
    for name, spec in pools.items():
        try:
            existing = client.read_work_pool(name)
        except ObjectNotFound:
            existing = None
        if existing is None:
            client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type=spec.type,
                    description=spec.description,
                    base_job_template=default_base_job_template(spec.type),
                    concurrency_limit=spec.concurrency_limit,
                )
            )
            action = "created"
        else:
            if existing.type != spec.type:
                log.warning(
                    "work pool %s exists with type %s (operations.yaml says %s); keeping it",
                    name,
                    existing.type,
                    spec.type,
                )
            client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=spec.concurrency_limit))
            action = "updated"
        done[name] = {"action": action, "type": spec.type, "concurrency_limit": spec.concurrency_limit}
        log.info("work pool %s: %s (concurrency limit %s)", name, action, spec.concurrency_limit)
    return done


def ensure_tag_limits(limits: Mapping[str, int], client: Any) -> dict[str, int]:
    """Create or update tag concurrency limits (the API upserts)."""
    for tag, limit in limits.items():
        client.create_concurrency_limit(tag=tag, concurrency_limit=int(limit))
        log.info("tag concurrency limit %s = %d", tag, limit)
    return dict(limits)


def check_pools_declared(prefect_file: dict[str, Any], pools: Iterable[str]) -> None:
    """Every deployment must target a pool that operations.yaml declares (typos fail here)."""
    known = set(pools)
    for dep in prefect_file["deployments"]:
        pool = (dep.get("work_pool") or {}).get("name")
        if pool not in known:
            raise ValueError(
                f"deployment {dep.get('name')!r} targets work pool {pool!r}, not declared in "
                f"configs/operations.yaml (known: {sorted(known)})"
            )


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _schedule(spec: dict[str, Any]) -> Any:
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import construct_schedule

    sched = construct_schedule(
        interval=spec.get("interval"),
        anchor_date=spec.get("anchor_date"),
        cron=spec.get("cron"),
        rrule=spec.get("rrule"),
        timezone=spec.get("timezone"),
    )
    return DeploymentScheduleCreate(
        schedule=sched,
        active=spec.get("active", True),
        parameters=spec.get("parameters") or {},
        slug=spec.get("slug"),
    )


def _concurrency(value: Any) -> tuple[int | None, Any]:
    """prefect.yaml's `concurrency_limit: N` or `{limit, collision_strategy, grace_period_seconds}`."""
    from prefect.client.schemas.objects import ConcurrencyOptions

    if value is None or isinstance(value, int):
        return value, None
    options = ConcurrencyOptions(
        collision_strategy=value.get("collision_strategy", "ENQUEUE"),
        grace_period_seconds=value.get("grace_period_seconds"),
    )
    return int(value["limit"]), options


def register_deployments(prefect_file: Path, spec: dict[str, Any], client: Any) -> list[str]:
    """Apply every deployment of prefect.yaml through the client API, as `prefect deploy --all` would.

    Same reading of the file: top-level `build` steps run in the file's folder and their outputs
    template the `pull` steps (`{{ repo-dir.stdout }}`), `{{ $ENV }}` placeholders expand, entrypoints
    are relative to the folder, schedules / concurrency_limit / job_variables / parameters as
    documented for prefect.yaml. Why not the CLI itself: with fastapi 0.151-0.154 the Prefect 3.8.8
    server answers 422 to the `limit: null` list requests `prefect deploy` sends (the project now pins
    fastapi<0.151); the client path does not depend on those calls either way.
    Deployments are upserted by (flow, name), schedules replaced: re-running is safe.
    """
    import asyncio

    from prefect.deployments.steps.core import run_steps
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.templating import apply_values

    base = prefect_file.parent
    names: list[str] = []
    with _chdir(base):
        for dep in spec["deployments"]:
            dep = apply_values(dict(dep), os.environ, remove_notset=False)
            build = dep.get("build", spec.get("build")) or []
            pull = dep.get("pull", spec.get("pull")) or []
            outputs = asyncio.run(run_steps(build, {}, print_function=lambda *a, **k: None)) if build else {}
            pull_steps = apply_values(pull, outputs, remove_notset=False)
            entrypoint = dep["entrypoint"]
            flow_obj = load_flow_from_entrypoint(entrypoint)
            limit, options = _concurrency(dep.get("concurrency_limit"))
            pool = dep.get("work_pool") or {}
            flow_id = client.create_flow_from_name(flow_obj.name)
            deployment_id = client.create_deployment(
                flow_id=flow_id,
                name=dep["name"],
                version=dep.get("version"),
                description=dep.get("description") or flow_obj.description,
                tags=dep.get("tags") or [],
                parameters=dep.get("parameters") or {},
                parameter_openapi_schema=parameter_schema(flow_obj).model_dump(exclude_unset=True),
                enforce_parameter_schema=dep.get("enforce_parameter_schema", True),
                entrypoint=entrypoint,
                path=None,
                pull_steps=pull_steps,
                work_pool_name=pool.get("name"),
                work_queue_name=pool.get("work_queue_name"),
                job_variables=pool.get("job_variables") or {},
                schedules=[_schedule(s) for s in dep.get("schedules") or []],
                concurrency_limit=limit,
                concurrency_options=options,
                paused=dep.get("paused"),
            )
            name = f"{flow_obj.name}/{dep['name']}"
            names.append(name)
            log.info("deployment %s (%s) -> pool %s", name, deployment_id, pool.get("name"))
    return names


def deploy_all(
    prefect_file: Path = DEFAULT_PREFECT_FILE,
    operations_file: Path | None = None,
) -> dict[str, Any]:
    """Work pools, tag limits, then every deployment of `prefect_file`, on PREFECT_API_URL's server."""
    prefect_file = Path(prefect_file).resolve()
    operations_file = Path(operations_file or prefect_file.parent / "configs" / "operations.yaml").resolve()
    api_url = _require_api_url()
    ops = load_operations(operations_file)
    spec = load_prefect_file(prefect_file)
    check_pools_declared(spec, ops.work_pools)
    limits = tag_limits(ops, base_dir=prefect_file.parent)

    from prefect import get_client

    with get_client(sync_client=True) as client:
        pools = ensure_work_pools(ops.work_pools, client)
        tags = ensure_tag_limits(limits, client)
        names = register_deployments(prefect_file, spec, client)
    summary = {"api_url": api_url, "work_pools": pools, "tag_limits": tags, "deployments": names}
    print(f"deployed to {api_url}:")
    for name in names:
        print(f"  {name}")
    pool_text = ", ".join(f"{k} (limit {v['concurrency_limit']})" for k, v in pools.items())
    print(f"work pools: {pool_text}")
    if tags:
        print("tag limits: " + ", ".join(f"{k}={v}" for k, v in tags.items()))
    print(
        "start workers: prefect worker start --pool cpu   |   prefect worker start --pool gpu  (docs/OPERATIONS.md)"
    )
    return summary
