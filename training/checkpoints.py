"""Checkpoints that resume: which checkpoint a run continues from, and loading its weights for real.

Why this module exists (measured, transformers 5.23): `save_pretrained` writes Qwen2.5-VL weights in
the *legacy* key layout (`model.layers.*`, `visual.*`) and `from_pretrained` renames them on load,
but `Trainer._load_from_checkpoint` calls a bare `model.load_state_dict(state_dict, strict=False)`:
0 of the checkpoint's tensors match the in-memory names (`model.language_model.*`,
`model.visual.*`), a warning is logged, and training "resumes" with step, optimizer and LR schedule
restored on top of the *initial* weights. `load_checkpoint_weights` applies the model's own
conversion mapping (the same renamings `from_pretrained` uses) and refuses a load that leaves any
parameter untouched. `use_checkpoint_loader(trainer)` puts it in place of the trainer's method
(stock `SFTTrainer` / `GRPOTrainer` otherwise; DeepSpeed, FSDP and PEFT checkpoints keep their own
loaders, which do not go through `load_state_dict` with the renamed keys).

Resume policy (`resume` in the recipe, `--resume false` on the command line):
- `auto` / `true` (default): continue from the last `checkpoint-N` in `output_dir`, if any;
- `false`: start fresh; existing `checkpoint-*` folders are moved aside into
  `output_dir/superseded-<UTC time>/` (never deleted, and never picked up by a later auto-resume);
- a path: continue from that checkpoint (as TrainingArguments' `resume_from_checkpoint`).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TRUE_WORDS = {"auto", "true", "yes", "1", "on"}
FALSE_WORDS = {"false", "no", "0", "off", "never"}


# ---- which checkpoint ------------------------------------------------------------------------------


def checkpoints_in(output_dir: str | Path) -> list[Path]:
    """`checkpoint-N` folders holding a trainer state, oldest step first."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    found = []
    for child in out.iterdir():
        match = CHECKPOINT_RE.match(child.name)
        if match and child.is_dir() and (child / "trainer_state.json").exists():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def resume_checkpoint(
    output_dir: str | Path, resume: str | bool | None, *, is_main_process: bool = True
) -> str | None:
    """The checkpoint to continue from under the `resume` policy (module docstring), or None.

    With `resume=false` the main process moves earlier checkpoints aside so that nothing from the
    previous run is resumed later by mistake."""
    word = str(resume).strip().lower() if resume is not None else "auto"
    if word in TRUE_WORDS:
        found = checkpoints_in(output_dir)
        return str(found[-1]) if found else None
    if word in FALSE_WORDS:
        found = checkpoints_in(output_dir)
        if found and is_main_process:
            aside = Path(output_dir) / f"superseded-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}"
            aside.mkdir(parents=True)
            for path in found:
                shutil.move(str(path), aside / path.name)
            logger.warning(
                "resume=false: starting fresh; %d earlier checkpoint(s) moved to %s", len(found), aside
            )
        return None
    path = Path(str(resume))
    if not (path / "trainer_state.json").exists():
        raise FileNotFoundError(
            f"resume={resume!r}: not a trainer checkpoint (no trainer_state.json); use auto, false or a "
            "checkpoint-N folder"
        )
    return str(path)


def is_full_checkpoint(checkpoint: str | Path) -> bool:
    """Whether a checkpoint carries optimizer and scheduler state (i.e. was not `save_only_model`)."""
    folder = Path(checkpoint)
    has_optimizer = (folder / "optimizer.pt").exists() or any(folder.glob("global_step*"))
    return has_optimizer and (folder / "scheduler.pt").exists()


# ---- loading weights ---------------------------------------------------------------------------------


def _checkpoint_state_dict(folder: Path) -> dict[str, Any]:
    import safetensors.torch

    single = folder / "model.safetensors"
    if single.exists():
        return safetensors.torch.load_file(str(single), device="cpu")
    index = folder / "model.safetensors.index.json"
    if index.exists():
        state: dict[str, Any] = {}
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            state.update(safetensors.torch.load_file(str(folder / shard), device="cpu"))
        return state
    raise FileNotFoundError(f"no model.safetensors[.index.json] in {folder}")


def renamed_state_dict(model: Any, state_dict: dict[str, Any]) -> dict[str, Any]:
    """Checkpoint keys renamed to the model's own parameter names, with the renamings `from_pretrained`
    applies (transformers' conversion mapping for this architecture, plus its legacy renamings)."""
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

    conversions = get_model_conversion_mapping(model)
    renamings = [c for c in conversions if isinstance(c, WeightRenaming)]
    converters = [c for c in conversions if isinstance(c, WeightConverter)]
    own = model.state_dict()
    out: dict[str, Any] = {}
    for key, tensor in state_dict.items():
        if key in own:
            out[key] = tensor
            continue
        new_key, pattern = rename_source_key(
            key, renamings, converters, base_model_prefix=model.base_model_prefix, meta_state_dict=own
        )
        if pattern is not None:
            raise NotImplementedError(
                f"checkpoint key {key!r} needs a tensor conversion ({pattern}), not a renaming: "
                "resume this architecture with DeepSpeed/FSDP checkpoints"
            )
        out[new_key] = tensor
    return out


def load_checkpoint_weights(model: Any, checkpoint: str | Path) -> int:
    """Load a `save_pretrained` checkpoint's weights into `model` in place; returns tensors loaded.

    Loud on any mismatch: an unexpected key, or a parameter the checkpoint does not set (tied weights,
    which share storage with a loaded tensor, excepted)."""
    folder = Path(checkpoint)
    state = renamed_state_dict(model, _checkpoint_state_dict(folder))
    result = model.load_state_dict(state, strict=False)
    own = model.state_dict()
    loaded_storage = {own[k].data_ptr() for k in state if k in own}
    missing = [k for k in result.missing_keys if own[k].data_ptr() not in loaded_storage]
    if result.unexpected_keys or missing:
        raise RuntimeError(
            f"checkpoint {folder} does not fit the model: {len(missing)} parameter(s) not in it "
            f"{missing[:5]}, {len(result.unexpected_keys)} unknown key(s) {result.unexpected_keys[:5]}"
        )
    logger.info("loaded %d tensors from %s", len(state), folder)
    return len(state)


def use_checkpoint_loader(trainer: Any) -> Any:
    """Make `trainer` resume weights with `load_checkpoint_weights` (see the module docstring).

    Bound on the instance, so stock trainer classes stay stock; only the plain full-weights case is
    taken over (PEFT adapters, DeepSpeed and FSDP keep transformers' own loaders)."""
    stock = trainer._load_from_checkpoint

    def _load_from_checkpoint(self: Any, resume_from_checkpoint: str, model: Any = None) -> None:
        target = self.model if model is None else model
        plain = not (
            getattr(self, "is_deepspeed_enabled", False)
            or getattr(self, "is_fsdp_enabled", False)
            or hasattr(target, "peft_config")
        )
        has_weights = any(
            (Path(resume_from_checkpoint) / name).exists()
            for name in ("model.safetensors", "model.safetensors.index.json")
        )
        if plain and has_weights:
            load_checkpoint_weights(target, resume_from_checkpoint)
            return
        stock(resume_from_checkpoint, model)

    trainer._load_from_checkpoint = types.MethodType(_load_from_checkpoint, trainer)
    return trainer


def warn_if_weights_only(checkpoint: str | None) -> None:
    """A `save_only_model` checkpoint restores weights but restarts optimizer moments and LR schedule."""
    if checkpoint and not is_full_checkpoint(checkpoint):
        logger.warning(
            "%s has no optimizer/scheduler state (save_only_model: true): weights resume, but the "
            "optimizer moments and the LR schedule restart; keep save_only_model: false to resume exactly",
            checkpoint,
        )
