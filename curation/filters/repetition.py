"""Repetition and garbage: degenerate generations that pass every semantic check.

- Repeated n-grams, open-r1's definition (its repetition-penalty reward): over lowercased whitespace
  words, repeated fraction = 1 - unique n-grams / total n-grams (0 when the text has fewer than n
  words). One threshold per n (default 3- and 4-grams).
- Garbage: the fraction of non-space characters that are not letters, the longest word, and U+FFFD
  replacement characters (bytes lost in decoding).

Checks run on the <think> body; the first failing check names the reason, all values are scored.
"""

from __future__ import annotations

from typing import Any

from curation.filters.base import FilterStep, Verdict, think_text
from curation.filters.config import RepetitionConfig

REPLACEMENT_CHAR = "\ufffd"


def repeated_ngram_fraction(text: str, n: int) -> float:
    """open-r1: 1 - |unique n-grams| / |n-grams| over `text.lower().split()`; 0 if no n-gram."""
    words = text.lower().split()
    total = len(words) - n + 1
    if total <= 0:
        return 0.0
    unique = {tuple(words[i : i + n]) for i in range(total)}
    return 1.0 - len(unique) / total


def non_alpha_ratio(text: str) -> float:
    """Fraction of non-whitespace characters that are not letters (any script); 0 for empty text."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    return sum(1 for c in chars if not c.isalpha()) / len(chars)


class RepetitionFilter(FilterStep):
    name = "repetition"

    def __init__(self, config: RepetitionConfig):
        super().__init__(config)
        self.config: RepetitionConfig = config

    def filter(self, row: dict[str, Any]) -> Verdict:
        cfg = self.config
        text = think_text(row.get("process"))
        scores: dict[str, Any] = {}
        failures: list[str] = []
        for n, limit in sorted(cfg.max_repeated_ngram_fraction.items()):
            frac = repeated_ngram_fraction(text, n)
            scores[f"repeated_{n}gram"] = round(frac, 4)
            if frac > limit:
                failures.append(f"repeated {n}-grams > {limit:g}")
        ratio = non_alpha_ratio(text)
        scores["non_alpha_ratio"] = round(ratio, 4)
        if ratio > cfg.max_non_alpha_ratio:
            failures.append(f"non-alphabetic ratio > {cfg.max_non_alpha_ratio:g}")
        longest = max((len(w) for w in text.split()), default=0)
        scores["longest_word"] = longest
        if longest > cfg.max_word_chars:
            failures.append(f"word longer than {cfg.max_word_chars} chars")
        replacement = text.count(REPLACEMENT_CHAR)
        scores["replacement_chars"] = replacement
        if replacement > cfg.max_replacement_chars:
            failures.append("replacement characters")
        if failures:
            return Verdict.drop(failures[0], **scores)
        return Verdict.ok(**scores)
