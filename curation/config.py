"""Curation recipes: one YAML file, validated by pydantic, composed of each module's config slice.

Every slice forbids unknown keys, so a typo fails loudly with the key's dotted path and what was
expected, instead of silently using a default.
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from curation.filters.config import FilterConfig
from curation.llm.gateway import EndpointConfig
from curation.publish.config import PublishConfig
from curation.sources.config import SourceConfig
from curation.stages.caption import CaptionConfig
from curation.stages.draft import DraftConfig
from curation.stages.revise import ReviseConfig
from curation.user_errors import UserError
from curation.video.config import VideoConfig

LLM_ROLES = ("captioner", "reasoner", "reviser")


class RecipeError(UserError, ValueError):
    """A recipe that does not validate; the message names every bad key and what was expected."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint or "configs/demo.yaml shows every section of a recipe")


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "run"
    runs_dir: Path = Path("runs")
    # Samples per shard task: large enough that Prefect's per-task cost (~tens of ms) is noise,
    # small enough that a crash loses little work and memory stays bounded.
    shard_size: int = Field(64, ge=1)
    # Shard tasks in flight at once (in threads or worker processes); LLM concurrency is bounded by
    # the gateway instead.
    max_parallel_shards: int = Field(4, ge=1)
    # What runs the shard tasks (flows/executors.py): threads of the flow process, or Dask / Ray
    # worker processes: `workers` local ones, or those of the cluster at `address` (Dask
    # `tcp://host:8786`, Ray `auto` or `ray://host:10001`).
    executor: Literal["threads", "dask", "ray"] = "threads"
    workers: int = Field(2, ge=1)
    address: str | None = None
    # Another run holding the run folder: wait for it instead of failing at once.
    wait_for_lock: bool = False
    # Rows that failed last time (endpoint down, decoder error) are retried on a rerun; successful
    # LLM answers are never re-paid thanks to the response cache.
    retry_failed: bool = True
    # Write runs/<name>/report.html at the end of every curate run (and post a link artifact).
    report: bool = True
    # Seconds between progress lines per stage in the run's log (also without a terminal: under
    # nohup, a worker or a deployment they are the only sign of life). `--progress-interval`.
    progress_interval_s: float = Field(10.0, gt=0, le=300)
    # A row stage whose failed rows exceed this share of its input fails the run (exit status 1,
    # nothing published). Failed means broken (an error, an unparseable or truncated answer, an
    # unreadable video), not rejected by a filter. 0.5: a healthy run fails a few percent of rows;
    # past half, something systematic is wrong (a context too small, a text-only model, a broken
    # prompt or media root) and publishing what is left would hide it. 1.0 never fails a run.
    max_failed_fraction: float = Field(0.5, ge=0.0, le=1.0)


class LLMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    # Default: <runs_dir>/llm_cache.sqlite, shared by every run under the same runs dir. Stored as the
    # folder <runs_dir>/llm_cache/ (one append-only file per writing process; an old single-file
    # cache at the .sqlite path is imported once), see curation/llm/cache.py.
    cache_path: Path | None = None

    def endpoint(self, role: str) -> EndpointConfig:
        if role not in self.endpoints:
            raise RecipeError(f"llm.endpoints.{role} is missing (roles: {', '.join(LLM_ROLES)})")
        return self.endpoints[role]


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: RunConfig = Field(default_factory=RunConfig)
    source: SourceConfig
    video: VideoConfig = Field(default_factory=VideoConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    caption: CaptionConfig = Field(default_factory=CaptionConfig)
    draft: DraftConfig = Field(default_factory=DraftConfig)
    revise: ReviseConfig = Field(default_factory=ReviseConfig)
    filters: FilterConfig = Field(default_factory=FilterConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.run.runs_dir) / self.run.name

    @property
    def cache_path(self) -> Path:
        return (
            Path(self.llm.cache_path) if self.llm.cache_path else Path(self.run.runs_dir) / "llm_cache.sqlite"
        )


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where `loc` points (a dotted recipe path), for "did you mean" hints."""
    model: Any = Recipe
    free_name = False
    for part in loc:
        if free_name:  # `dict[str, EndpointConfig]` (llm.endpoints.<role>): any name goes here
            free_name = False
            continue
        field = getattr(model, "model_fields", {}).get(str(part))
        if field is None:
            return []
        model = field.annotation
        if typing.get_origin(model) is dict:
            model, free_name = typing.get_args(model)[1], True
    return list(getattr(model, "model_fields", {}))


def _describe(e: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
    if e["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(e["loc"][-1]), _known_keys(tuple(e["loc"][:-1])), n=1)
        return f"{loc}: unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    if e["type"] == "missing":
        return f"{loc}: required key is missing"
    return f"{loc}: {e['msg']} (got {e.get('input')!r})"


def _format_error(err: ValidationError, origin: str) -> str:
    problems = [_describe(e) for e in err.errors()]
    if len(problems) == 1:
        return f"invalid recipe {origin}: {problems[0]}"
    return f"invalid recipe {origin}, {len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems)


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any) -> Any:
    """Expand `${VAR}` and `${VAR:-default}` in string values, so one recipe serves several
    endpoints (e.g. `base_url: ${VLLM_URL:-http://127.0.0.1:8000/v1}`). Secrets never go here:
    endpoints name the env var of their key (`api_key_env`) and the gateway reads it at call time."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1) in os.environ:
                return os.environ[m.group(1)]
            if m.group(2) is not None:
                return m.group(2)
            name = m.group(1)
            raise RecipeError(
                f"recipe uses ${{{name}}} but the environment variable is not set",
                f"export {name}=..., or give it a default in the recipe: ${{{name}:-value}}",
            )

        return _ENV_RE.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    return value


def recipe_from_dict(data: dict[str, Any], origin: str = "<dict>") -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise RecipeError(_format_error(err, origin)) from None


def load_recipe(path: Path | str, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load a YAML recipe; `overrides` are dotted keys (`source.path`) applied before validation."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise RecipeError(
            f"recipe not found: {path}", "give the path of a recipe YAML, e.g. configs/demo.yaml"
        ) from None
    except yaml.YAMLError as err:
        raise RecipeError(f"recipe {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path} must be a mapping at the top level")
    data = expand_env(data)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return recipe_from_dict(data, origin=str(path))
