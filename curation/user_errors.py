"""Mistakes a user fixes (a path, a recipe key, a missing variable), told in one line with a hint.

`UserError` is what the CLI prints as `error: …` / `hint: …` and exit status 2, without a traceback
(`videorft --debug` shows it). Anything else that escapes is a bug and keeps its traceback.

`check_inputs` looks at everything a curate run will need from the user's side *before* the flow
starts: starting Prefect's temporary server alone takes seconds, and a missing annotation file
used to surface only after it, inside a task, as a page of traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from curation.config import Recipe


class UserError(Exception):
    """A problem in what the user gave us; `hint` says how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


def print_user_error(err: BaseException, file: TextIO | None = None) -> None:
    """`error: <one line>` and, when known, `hint: <what to do>` on stderr (`--debug`: the traceback)."""
    out = file or sys.stderr
    hint = getattr(err, "hint", "") or (
        "check the path (relative paths are read from the current folder)"
        if isinstance(err, FileNotFoundError)
        else ""
    )
    print(f"error: {err}", file=out)
    if hint:
        print(f"hint: {hint}", file=out)


_LLM_STAGES = {"caption": "captioner", "draft": "reasoner", "revise": "reviser"}


def check_inputs(recipe: Recipe, stages: Iterable[str]) -> None:
    """Raise UserError for the first input of `stages` that cannot work; return None when all can."""
    stages = set(stages)
    if "sources" in stages:
        check_source(recipe)
    if "extract" in stages:
        root = recipe.source.resolved_media_root()
        if not root.is_dir():
            raise UserError(
                f"media root not found: {root}"
                if not root.exists()
                else f"media root is not a folder: {root}",
                "pass --media-root FOLDER (or set source.media_root): the folder the annotation's media "
                "paths are relative to; by default it is the annotation file's folder",
            )
    for stage, default_role in _LLM_STAGES.items():
        if stage not in stages:
            continue
        cfg = getattr(recipe, stage)
        role = getattr(cfg, "role", None) or default_role
        endpoint = recipe.llm.endpoints.get(role)
        if endpoint is None:
            raise UserError(
                f"the {stage} stage needs an LLM endpoint for role {role!r}, and llm.endpoints has none",
                f"add llm.endpoints.{role} to the recipe (configs/demo.yaml and configs/vllm.yaml show how)",
            )
        if endpoint.api_key_env and endpoint.api_key_env not in os.environ:
            raise UserError(
                f"environment variable {endpoint.api_key_env} is not set "
                f"(llm.endpoints.{role}.api_key_env names it)",
                f"export {endpoint.api_key_env}=<your key>, or remove api_key_env for a server without a key",
            )
        prompt_dir = Path(cfg.prompt_dir)
        missing = [f for f in ("system.md", "user.jinja") if not (prompt_dir / f).is_file()]
        if missing:
            what = "does not exist" if not prompt_dir.is_dir() else f"lacks {', '.join(missing)}"
            raise UserError(
                f"prompt folder of the {stage} stage {what}: {prompt_dir}",
                f"set {stage}.prompt_dir to a folder with system.md and user.jinja (see prompts/{stage}/)",
            )
    if "publish" in stages and recipe.publish.templates_dir is not None:
        folder = Path(recipe.publish.templates_dir)
        if not (folder / "cot.md.jinja").is_file():
            raise UserError(
                f"dataset card templates not found in {folder}",
                "set publish.templates_dir to a copy of the repository's data_cards/ folder, or remove it",
            )


def check_source(recipe: Recipe) -> None:
    """The source exists and its kind/format can be told: what `read_source` checks at call time."""
    from curation.sources import read_source

    cfg = recipe.source
    path = cfg.path.expanduser()
    if not path.exists():
        where = f" (relative to {Path.cwd()})" if not path.is_absolute() else ""
        raise UserError(
            f"source file not found: {path}{where}",
            "pass --source PATH (or set source.path in the recipe) to your annotation file, "
            "Video-R1 JSON or saved dataset folder",
        )
    if cfg.kind == "hf" or path.is_dir():
        if not path.is_dir():
            raise UserError(
                f"source.kind is hf but {path} is not a folder",
                "kind: hf reads a folder written by datasets' save_to_disk",
            )
        return  # loading the dataset to check its split costs seconds: the run does it
    try:
        read_source(cfg)  # checks the file and its format now; reads nothing until iterated
    except (OSError, ValueError) as err:
        raise UserError(
            f"cannot read source {path}: {err}",
            "set source.format (jsonl, json, csv, parquet) or source.kind in the recipe",
        ) from err
