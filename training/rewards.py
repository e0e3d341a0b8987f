"""GRPO reward functions and their registry (open-r1 style).

Every reward follows TRL's signature: `fn(completions, **columns) -> list[float | None]`. TRL calls it
with `prompts`, `completions`, `completion_ids`, `trainer_state`, `log_extra`, `log_metric` and every
dataset column except `prompt` (so `solution`, `problem_type`, frame columns...), each a list with one
entry per completion. Completions are strings, or conversational `[{"role": "assistant", "content": ...}]`
where content is a string or a list of parts `{"type": "text", "text": ...}`.

Registry: `REWARD_REGISTRY` maps a name to a *factory* taking keyword parameters and returning the
reward function; `get_reward_funcs(names, **params)` builds the selected ones. Parameterised rewards are
`functools.partial` objects wrapped with `update_wrapper`, so `__name__` (what TRL logs as
`rewards/<name>/mean`) survives.

| name | reward | parameters |
|---|---|---|
| `format` | 1 iff `<think>…</think>\\s*<answer>…</answer>` is the whole completion | – |
| `accuracy` | `training.scoring` per row's own problem type, in [0, 1] | – |
| `semantic` | VideoRFT R_s (SigLIP), gated by accuracy > 0 (`training/semantic.py`) | `semantic_*`, `media_root` |
| `length` | Video-R1 +0.2 length bonus (see `length_reward`) | `num_generations`, `length_*` |
| `completion_length` | **test/debug only**: dense min(1, tokens / target) | `completion_length_target` |

`completion_length` exists because a random model earns zero format/accuracy reward, so every GRPO
advantage is zero and nothing learns: tests that check learning need a reward that varies.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from functools import partial, update_wrapper
from typing import Any

from training.scoring import score_completion

RewardFunc = Callable[..., list[float | None]]
Completion = str | list[dict[str, Any]]

FORMAT_RE = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)

# Video-R1 length rule (videorft.md §3.4).
LENGTH_MIN_TOKENS = 320
LENGTH_MAX_TOKENS = 512
LENGTH_BONUS = 0.2
LENGTH_ACCURACY_THRESHOLD = 0.1


def completion_text(completion: Completion) -> str:
    """Plain text of one completion, whether a string or a conversational message list.

    For messages, the assistant contents are concatenated (TRL gives one assistant message; joining is
    what a multi-turn rollout would want). Text parts of a content list are joined without separator,
    as a chat template renders them.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):  # a lone message, tolerated
        completion = [completion]
    texts = []
    for message in completion:
        if message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content", "")
        if isinstance(content, str):
            texts.append(content)
        else:
            texts.extend(part.get("text") or "" for part in content if part.get("type", "text") == "text")
    return "".join(texts)


def format_reward(completions: Sequence[Completion], **kwargs: Any) -> list[float | None]:
    """1.0 when the whole completion is a think block then an answer block (whitespace between allowed)."""
    return [1.0 if FORMAT_RE.fullmatch(completion_text(c)) else 0.0 for c in completions]


def accuracy_reward(
    completions: Sequence[Completion], solution: Sequence[str], problem_type: Sequence[str], **kwargs: Any
) -> list[float | None]:
    """Answer score per row, each with *its own* problem type (the reference code used the first row's)."""
    return [
        score_completion(completion_text(c), sol, ptype)
        for c, sol, ptype in zip(completions, solution, problem_type, strict=True)
    ]


def _same_prompt(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. arrays inside messages: cannot tell, so do not object
        return True


def _group_slices(n: int, num_generations: int | None, prompts: Sequence[Any] | None) -> list[slice]:
    """Contiguous blocks of completions that share a prompt.

    TRL's RepeatSampler puts the G completions of a prompt next to each other, so with G known the
    groups are fixed-size blocks. When `prompts` is given, each block is checked to hold one prompt: a
    block that mixes prompts means the local batch does not hold whole groups (e.g. a per-device batch
    that is not a multiple of G on several GPUs), and a silently wrong bonus would follow, so it raises.
    Without G, groups are the runs of equal consecutive prompts (a fallback: two neighbouring groups
    with the same prompt would merge, so recipes should pass G).
    """
    if num_generations is not None:
        if num_generations < 1 or n % num_generations:
            raise ValueError(
                f"length reward: {n} completions are not whole groups of num_generations={num_generations}; "
                "make the per-device generation batch a multiple of num_generations"
            )
        slices = [slice(start, start + num_generations) for start in range(0, n, num_generations)]
        if prompts is not None:
            for block in slices:
                first = prompts[block.start]
                if any(not _same_prompt(p, first) for p in prompts[block]):
                    raise ValueError(
                        f"length reward: completions {block.start}..{block.stop - 1} do not share one prompt; "
                        "groups must be contiguous blocks of num_generations completions"
                    )
        return slices
    if prompts is None:
        raise ValueError(
            "length reward needs num_generations (factory or call argument) or the `prompts` column"
        )
    slices, start = [], 0
    for i in range(1, n + 1):
        if i == n or not _same_prompt(prompts[i], prompts[start]):
            slices.append(slice(start, i))
            start = i
    return slices


def length_reward(
    completions: Sequence[Completion],
    solution: Sequence[str],
    problem_type: Sequence[str],
    completion_ids: Sequence[Sequence[int]] | None = None,
    prompts: Sequence[Any] | None = None,
    num_generations: int | None = None,
    min_tokens: int = LENGTH_MIN_TOKENS,
    max_tokens: int = LENGTH_MAX_TOKENS,
    bonus: float = LENGTH_BONUS,
    accuracy_threshold: float = LENGTH_ACCURACY_THRESHOLD,
    **kwargs: Any,
) -> list[float | None]:
    """Video-R1's length bonus: +`bonus` for a completion with accuracy > `accuracy_threshold` and a
    length in [min_tokens, max_tokens] tokens, only in groups where more than one completion has
    accuracy > `accuracy_threshold`.

    Length is `len(completion_ids[i])`: TRL passes the completion tokens up to and including the first
    EOS, which is how Video-R1 counts. Groups: see `_group_slices`; G comes from the `num_generations`
    argument (bind it with `get_reward_funcs(["length"], num_generations=training_args.num_generations)`),
    else groups are inferred from runs of identical `prompts` (TRL passes them). TRL's `trainer_state`
    does not carry G, so it is not used.
    """
    if completion_ids is None:
        raise ValueError("length reward needs `completion_ids` (TRL passes them; tests must too)")
    accuracies = accuracy_reward(completions, solution, problem_type)
    rewards: list[float | None] = [0.0] * len(completions)
    for block in _group_slices(len(completions), num_generations, prompts):
        correct = [i for i in range(block.start, block.stop) if accuracies[i] > accuracy_threshold]
        if len(correct) <= 1:
            continue
        for i in correct:
            if min_tokens <= len(completion_ids[i]) <= max_tokens:
                rewards[i] = bonus
    return rewards


def completion_length_reward(
    completions: Sequence[Completion],
    completion_ids: Sequence[Sequence[int]] | None = None,
    target: int = 64,
    **kwargs: Any,
) -> list[float | None]:
    """TEST/DEBUG ONLY: min(1, length / target), length in tokens (characters without `completion_ids`).

    Dense, so a random policy gets non-zero GRPO advantages; it says nothing about answer quality and
    must not be used in a real recipe.
    """
    lengths = [len(ids) for ids in completion_ids] if completion_ids is not None else None
    if lengths is None:
        lengths = [len(completion_text(c)) for c in completions]
    return [min(1.0, n / target) for n in lengths]


def _named(func: Callable[..., Any], name: str, **bound: Any) -> RewardFunc:
    """`partial(func, **bound)` that keeps a function-like `__name__` for TRL's logs."""
    wrapped = partial(func, **bound)
    update_wrapper(wrapped, func)
    wrapped.__name__ = name
    return wrapped


# ---- factories: each takes only its own parameters, by keyword ------------------------------------


def _format_factory() -> RewardFunc:
    return format_reward


def _accuracy_factory() -> RewardFunc:
    return accuracy_reward


def _length_factory(
    num_generations: int | None = None,
    length_min_tokens: int = LENGTH_MIN_TOKENS,
    length_max_tokens: int = LENGTH_MAX_TOKENS,
    length_bonus: float = LENGTH_BONUS,
) -> RewardFunc:
    return _named(
        length_reward,
        "length_reward",
        num_generations=num_generations,
        min_tokens=length_min_tokens,
        max_tokens=length_max_tokens,
        bonus=length_bonus,
    )


def _completion_length_factory(completion_length_target: int = 64) -> RewardFunc:
    return _named(completion_length_reward, "completion_length_reward", target=completion_length_target)


def _semantic_factory(
    semantic_scorer: Any = None,
    semantic_model: str | None = None,
    semantic_device: str = "cpu",
    semantic_dtype: str = "float32",
    semantic_cache_dir: str | None = None,
    semantic_variant: str = "mean_of_frames",
    semantic_weight: float = 2.0,
    semantic_max_text_len: int = 64,
    semantic_num_frames: int = 16,
    media_root: str | None = None,
) -> RewardFunc:
    # Imported here: torch/transformers load only when the semantic reward is selected.
    from training.semantic import DEFAULT_SIGLIP, SemanticScorer, make_semantic_reward

    scorer = semantic_scorer or SemanticScorer(
        semantic_model or DEFAULT_SIGLIP,
        device=semantic_device,
        dtype=semantic_dtype,
        cache_dir=semantic_cache_dir,
        variant=semantic_variant,
        weight=semantic_weight,
        max_text_len=semantic_max_text_len,
        num_frames=semantic_num_frames,
        media_root=media_root,
    )
    return make_semantic_reward(scorer)


REWARD_REGISTRY: dict[str, Callable[..., RewardFunc]] = {
    "format": _format_factory,
    "accuracy": _accuracy_factory,
    "semantic": _semantic_factory,
    "length": _length_factory,
    "completion_length": _completion_length_factory,
}


def _factory_params(factory: Callable[..., Any]) -> set[str]:
    return set(inspect.signature(factory).parameters)


def get_reward_funcs(names: Sequence[str], **params: Any) -> list[RewardFunc]:
    """Build the reward functions named in `names`, in order.

    `params` is one flat namespace (e.g. a recipe's reward section): each factory receives the ones it
    declares. A name no factory declares raises (a typo must not fall back to a default silently);
    known parameters of unselected rewards are ignored, so one config serves every reward selection.
    """
    unknown_names = [n for n in names if n not in REWARD_REGISTRY]
    if unknown_names:
        raise ValueError(f"unknown reward(s) {unknown_names}; known: {sorted(REWARD_REGISTRY)}")
    known = set().union(*(_factory_params(f) for f in REWARD_REGISTRY.values()))
    unknown_params = sorted(set(params) - known)
    if unknown_params:
        raise TypeError(f"unknown reward parameter(s) {unknown_params}; known: {sorted(known)}")
    funcs = []
    for name in names:
        factory = REWARD_REGISTRY[name]
        accepted = _factory_params(factory)
        funcs.append(factory(**{k: v for k, v in params.items() if k in accepted}))
    return funcs
