"""Row builders shared by the filter tests."""

from __future__ import annotations

from typing import Any

CLEAN_COT = (
    "<think>The video begins with a kitchen counter where a woman places a red bowl. Around the middle "
    "she pours flour into the bowl and then cracks two eggs. Toward the end she stirs the mixture. "
    "Comparing the options, only pouring flour follows taking the flour out. So the answer is B.</think>"
)


def make_row(**overrides: Any) -> dict[str, Any]:
    """A joined filter input row that passes every step unless overridden."""
    row: dict[str, Any] = {
        "id": "s0001",
        "media_path": "videos/k1.mp4",
        "data_type": "video",
        "problem": "What does she do after taking the flour?",
        "options": ["A. She cracks eggs", "B. She pours flour", "C. She washes hands"],
        "solution": "B",
        "problem_type": "multiple choice",
        "data_source": "synthetic/kitchen",
        "meta": {},
        "process": CLEAN_COT,
        "answer": "B",
        "draft": "<think>draft</think>",
    }
    row.update(overrides)
    return row


def think(body: str) -> str:
    return f"<think>{body}</think>"
