"""Answer correctness: the generated answer must score at least the problem type's threshold.

VideoRFT drops samples whose final answer is incorrect; Video-R1 kept rule-based reward > 0.6. The
score is `training.scoring.score_answer`, the very function behind the GRPO accuracy reward, so data
and reward can never disagree about what "correct" means. Thresholds: `AnswerCorrectnessConfig`.
"""

from __future__ import annotations

import hashlib
import inspect
from functools import lru_cache
from typing import Any

from curation.filters.base import FilterStep, Verdict
from curation.filters.config import AnswerCorrectnessConfig
from curation.records import normalize_problem_type
from training import scoring
from training.scoring import extract_answer, score_answer


@lru_cache(maxsize=1)
def scoring_fingerprint() -> str:
    """Hash of the scoring module's source: a scorer change re-judges every row on the next run."""
    return hashlib.sha256(inspect.getsource(scoring).encode("utf-8")).hexdigest()[:16]


class AnswerCorrectnessFilter(FilterStep):
    name = "answer_correctness"

    def __init__(self, config: AnswerCorrectnessConfig):
        super().__init__(config)
        self.config: AnswerCorrectnessConfig = config

    def filter(self, row: dict[str, Any]) -> Verdict:
        problem_type = normalize_problem_type(row.get("problem_type"))
        if problem_type is None:
            return Verdict.drop(f"unknown problem type {row.get('problem_type')!r}")
        # `answer` is bare by contract; a stray tag pair is read the way evaluation reads it.
        pred = extract_answer(row.get("answer"), whole_if_missing=True)
        if not pred:
            return Verdict.drop("empty answer")
        gt = extract_answer(row.get("solution"), whole_if_missing=True)
        score = score_answer(pred, gt, problem_type)
        threshold = self.config.thresholds[problem_type]
        scores = {"answer_score": round(score, 4), "threshold": threshold}
        if score < threshold:
            return Verdict.drop(f"score < {threshold:g} ({problem_type})", **scores)
        return Verdict.ok(**scores)
