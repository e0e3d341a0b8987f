"""training/rewards.py: every reward, its edge cases, and the registry."""

from __future__ import annotations

import pytest

from training.rewards import (
    REWARD_REGISTRY,
    accuracy_reward,
    completion_length_reward,
    completion_text,
    format_reward,
    get_reward_funcs,
    length_reward,
)
from training.scoring import score_answer

GOOD = "<think>The video shows a ball.</think><answer>B</answer>"


def conversational(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def trl_kwargs(n: int) -> dict:
    """The extra keyword arguments TRL 1.16 passes to every reward function."""
    return {
        "prompts": [[{"role": "user", "content": "q"}]] * n,
        "trainer_state": object(),
        "log_extra": lambda column, values: None,
        "log_metric": lambda name, value: None,
    }


# ---- completion text ---------------------------------------------------------------------------------


def test_completion_text_forms():
    assert completion_text("plain") == "plain"
    assert completion_text(conversational("msg")) == "msg"
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    assert completion_text(parts) == "ab"
    with_image = [{"role": "assistant", "content": [{"type": "image"}, {"type": "text", "text": "t"}]}]
    assert completion_text(with_image) == "t"
    assert completion_text([]) == ""


# ---- format ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD, 1.0),
        ("<think>\nmulti\nline\n</think>\n\n<answer>\nB\n</answer>", 1.0),
        ("<think></think><answer></answer>", 1.0),  # empty blocks still have the format
        ("<answer>B</answer>", 0.0),  # no think
        ("<think>x</think>", 0.0),  # no answer
        ("<think>x</think> so <answer>B</answer>", 0.0),  # text between the blocks
        ("Sure! <think>x</think><answer>B</answer>", 0.0),  # text before
        ("<think>x</think><answer>B</answer> done", 0.0),  # text after
        ("<think>x</think><answer>B</answer>\n", 0.0),  # full match: even a trailing newline fails
        ("<answer>B</answer><think>x</think>", 0.0),  # wrong order
        ("", 0.0),
    ],
)
def test_format_reward(text, expected):
    assert format_reward([text]) == [expected]
    assert format_reward([conversational(text)], **trl_kwargs(1)) == [expected]


# ---- accuracy ----------------------------------------------------------------------------------------


def test_accuracy_mixed_problem_types_in_one_batch():
    completions = [
        "<think>t</think><answer>B</answer>",
        "<think>t</think><answer>3.0</answer>",
        "<think>t</think><answer>hello world</answer>",
        "<think>t</think><answer>a red ball</answer>",
        "<think>t</think><answer>10</answer>",
        "<think>t</think><answer>3</answer>",
    ]
    solution = ["<answer>B</answer>", "3", "hello there world", "a red ball", "<answer>8</answer>", "3"]
    problem_type = ["multiple choice", "numerical", "OCR", "free-form", "regression", "numerical"]
    rewards = accuracy_reward(completions, solution=solution, problem_type=problem_type, **trl_kwargs(6))
    # Each row is scored with its own type: the reference code scored all of them as multiple choice.
    assert rewards == pytest.approx([1.0, 0.0, 2 / 3, 1.0, 0.75, 1.0])


def test_accuracy_edge_cases():
    completions = [
        "B",  # no tags: no answer
        "<think>t</think><answer>A</answer><answer>B</answer>",  # first answer wins
        "<think>t</think><answer></answer>",  # empty answer
        conversational("<think>t</think><answer>B</answer>"),
        [{"role": "assistant", "content": [{"type": "text", "text": "<answer>B</answer>"}]}],
    ]
    rewards = accuracy_reward(completions, solution=["B"] * 5, problem_type=["multiple choice"] * 5)
    assert rewards == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_accuracy_requires_one_solution_per_completion():
    with pytest.raises(ValueError):
        accuracy_reward(["<answer>B</answer>"] * 2, solution=["B"], problem_type=["mc"])


# ---- length ------------------------------------------------------------------------------------------


def _group(correct: list[bool], lengths: list[int]):
    completions = [f"<think>t</think><answer>{'B' if ok else 'C'}</answer>" for ok in correct]
    n = len(correct)
    return {
        "completions": completions,
        "solution": ["B"] * n,
        "problem_type": ["multiple choice"] * n,
        "completion_ids": [[7] * length for length in lengths],
    }


def test_length_bonus_for_correct_in_range_when_several_correct():
    batch = _group([True, True, True, False], [400, 100, 320, 400])
    assert length_reward(**batch, num_generations=4) == [0.2, 0.0, 0.2, 0.0]


def test_length_no_bonus_when_only_one_correct():
    batch = _group([True, False, False, False], [400, 400, 400, 400])
    assert length_reward(**batch, num_generations=4) == [0.0] * 4


@pytest.mark.parametrize(("length", "bonus"), [(319, 0.0), (320, 0.2), (512, 0.2), (513, 0.0)])
def test_length_bounds_are_inclusive(length, bonus):
    batch = _group([True, True], [length, 400])
    assert length_reward(**batch, num_generations=2)[0] == bonus


def test_length_groups_are_independent_blocks():
    # Group 1 has two correct; group 2 has one correct: only group 1 earns bonuses.
    batch = _group([True, True, False, True, False, False], [400] * 6)
    assert length_reward(**batch, num_generations=3) == [0.2, 0.2, 0.0, 0.0, 0.0, 0.0]


def test_length_accuracy_threshold_is_strict():
    # OCR partial credit of 0.1 (1 word of 10 right) is not "correct": no bonus, and it does not count
    # towards the "more than one correct" condition either.
    words = " ".join(f"w{i}" for i in range(10))
    assert score_answer("w0", words, "OCR") == pytest.approx(0.1)
    batch = {
        "completions": ["<answer>w0</answer>", f"<answer>{words}</answer>", "<answer>nothing</answer>"],
        "solution": [words] * 3,
        "problem_type": ["OCR"] * 3,
        "completion_ids": [[1] * 400] * 3,
    }
    assert length_reward(**batch, num_generations=3) == [0.0, 0.0, 0.0]
    batch["completions"][2] = f"<answer>{words}</answer>"
    assert length_reward(**batch, num_generations=3) == [0.0, 0.2, 0.2]


def test_length_groups_inferred_from_prompts():
    batch = _group([True, True, True, False], [400] * 4)
    prompts = ["p1", "p1", "p2", "p2"]
    assert length_reward(**batch, prompts=prompts) == [0.2, 0.2, 0.0, 0.0]


def test_length_rejects_blocks_that_mix_prompts():
    batch = _group([True, True, True, True], [400] * 4)
    with pytest.raises(ValueError, match="do not share one prompt"):
        length_reward(**batch, prompts=["p1", "p1", "p1", "p2"], num_generations=2)


def test_length_rejects_partial_groups_and_missing_inputs():
    batch = _group([True, True, True], [400] * 3)
    with pytest.raises(ValueError, match="whole groups"):
        length_reward(**batch, num_generations=2)
    with pytest.raises(ValueError, match="num_generations"):
        length_reward(**batch)
    batch.pop("completion_ids")
    with pytest.raises(ValueError, match="completion_ids"):
        length_reward(**batch, num_generations=3)


def test_length_factory_binds_num_generations_and_keeps_name():
    (fn,) = get_reward_funcs(["length"], num_generations=2, length_min_tokens=10, length_max_tokens=20)
    assert fn.__name__ == "length_reward"
    batch = _group([True, True, True, True], [15, 25, 15, 15])
    kwargs = trl_kwargs(4)
    kwargs["prompts"] = ["a", "a", "b", "b"]
    assert fn(**batch, **kwargs) == [0.2, 0.0, 0.2, 0.2]


# ---- dense debug reward ------------------------------------------------------------------------------


def test_completion_length_reward_is_dense_and_capped():
    assert completion_length_reward(["x"] * 3, completion_ids=[[1] * 8, [1] * 32, [1] * 100], target=32) == [
        0.25,
        1.0,
        1.0,
    ]
    assert completion_length_reward(["abcd", "ab"], target=8) == [0.5, 0.25]  # characters without ids


# ---- registry ----------------------------------------------------------------------------------------


def test_registry_names():
    assert {"format", "accuracy", "semantic", "length", "completion_length"} <= set(REWARD_REGISTRY)


def test_get_reward_funcs_order_and_names():
    funcs = get_reward_funcs(["accuracy", "format", "completion_length"], completion_length_target=4)
    assert [f.__name__ for f in funcs] == ["accuracy_reward", "format_reward", "completion_length_reward"]
    assert funcs[2](["abcdefgh"]) == [1.0]


def test_get_reward_funcs_ignores_params_of_unselected_rewards():
    (fn,) = get_reward_funcs(["format"], num_generations=8, semantic_weight=3.0)
    assert fn([GOOD]) == [1.0]


def test_get_reward_funcs_rejects_unknown_names_and_params():
    with pytest.raises(ValueError, match="unknown reward"):
        get_reward_funcs(["formatt"])
    with pytest.raises(TypeError, match="num_generation"):
        get_reward_funcs(["length"], num_generation=8)


def test_rewards_return_one_value_per_completion_with_trl_kwargs():
    n = 4
    batch = _group([True, False, True, True], [400] * n)
    funcs = get_reward_funcs(["format", "accuracy", "length", "completion_length"], num_generations=n)
    for fn in funcs:
        out = fn(**batch, **trl_kwargs(n))
        assert len(out) == n
        assert all(isinstance(v, float) for v in out)
