"""The open-ended agreement filter with the real all-MiniLM-L6-v2 encoder (offline, bundled)."""

from __future__ import annotations

import pytest
from filters_helpers import make_row

from curation.filters.config import OpenEndedAgreementConfig
from curation.filters.open_ended_agreement import OpenEndedAgreementFilter, load_sentence_model

pytestmark = pytest.mark.integration


def ff(answer: str, solution: str) -> dict:
    return make_row(problem_type="free-form", answer=answer, solution=solution)


def test_real_minilm_separates_paraphrase_from_wrong_answer():
    step = OpenEndedAgreementFilter(OpenEndedAgreementConfig())
    rows = [
        ff("The man opens the front door and walks outside.", "He opens the door and goes out."),
        ff("A woman is slicing vegetables in the kitchen.", "Someone cuts vegetables in a kitchen."),
        ff("The dog sleeps on the sofa.", "He opens the door and goes out."),
        ff("Two children are playing football in a park.", "A woman is slicing vegetables in the kitchen."),
        make_row(),  # multiple choice passes untouched
        # Documented limitation: similarity measures topic, not truth; a contradiction passes.
        ff("The car turns right.", "The car turns left."),
    ]
    verdicts = step.filter_batch(rows)
    sims = [v.scores.get("similarity") for v in verdicts]
    assert [v.keep for v in verdicts] == [True, True, False, False, True, True], sims
    assert sims[0] > 0.5 and sims[2] < 0.35 and sims[3] < 0.35
    # Loaded once per process: a second filter reuses the same model object.
    assert load_sentence_model() is load_sentence_model()
