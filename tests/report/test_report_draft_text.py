from curation.report.load import _draft_cot


def test_reasoning_channel_is_the_draft_when_content_is_only_the_answer():
    # What the gateway makes of an R1-style "<think>…</think><answer>B</answer>" answer.
    assert (
        _draft_cot("<answer>B</answer>", "The green circle moves first.") == "The green circle moves first."
    )


def test_content_with_prose_is_the_draft():
    assert _draft_cot("It moves first. <answer>B</answer>", "scratch") == "It moves first. <answer>B</answer>"
    assert _draft_cot("<answer>B</answer>", "") == "<answer>B</answer>"
