"""Word-level diff of the draft CoT against its revision, computed once at build time.

The result is a list of (op, text) segments: "=" shared, "-" only in the draft, "+" only in the
revision. Concatenating "=" and "-" gives the draft back, "=" and "+" the revision, so one list
drives both sides of a side-by-side view and the page never needs the two texts separately.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

Segment = tuple[str, str]

# A word or a single punctuation mark with the whitespace before it. Punctuation edits ("frame."
# -> "frame,") stay small; whitespace is not a token of its own because difflib slows to a crawl
# on a token as frequent as " ".
_TOKEN_RE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$", re.UNICODE)

# difflib is quadratic in the worst case; past this many tokens a wholesale replace is shown
# instead of stalling the report on one pathological sample.
MAX_TOKENS = 6_000


# Sentence ends (and line breaks): the unit of the first, coarse pass.
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+")


def tokenize(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def sentences(text: str) -> list[str]:
    """Sentences with their trailing separator attached, so "".join(sentences(t)) == t."""
    out, start = [], 0
    for m in _SENTENCE_RE.finditer(text):
        out.append(text[start : m.end()])
        start = m.end()
    if start < len(text):
        out.append(text[start:])
    return out


def word_diff(old: str, new: str) -> list[Segment]:
    """Segments turning `old` into `new` (see module doc).

    Two passes: sentences first, then words inside the sentences that changed. A revision keeps
    most sentences whole, and word-level difflib over a whole CoT is slow (frequent tokens like
    " " and "the" make it near quadratic): the coarse pass keeps each word-level problem small.
    """
    a, b = sentences(old), sentences(new)
    raw: list[Segment] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        left, right = "".join(a[i1:i2]), "".join(b[j1:j2])
        if tag == "equal":
            raw.append(("=", left))
        elif tag == "replace":
            raw.extend(_words(left, right))
        else:
            raw.extend([("-", left), ("+", right)])
    return _merge(_absorb_whitespace(_merge(raw)))


def _words(old: str, new: str) -> list[Segment]:
    a, b = tokenize(old), tokenize(new)
    if len(a) + len(b) > MAX_TOKENS:
        return [("-", old), ("+", new)]
    # Compare tokens without their leading whitespace, except whether it holds a line break.
    keys_a, keys_b = [_key(t) for t in a], [_key(t) for t in b]
    out: list[Segment] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, keys_a, keys_b, autojunk=False).get_opcodes():
        left, right = "".join(a[i1:i2]), "".join(b[j1:j2])
        if tag == "equal" and left == right:
            out.append(("=", left))
            continue
        # A block equal but for its spacing shows as an edit: both texts must come back exactly.
        if left:
            out.append(("-", left))
        if right:
            out.append(("+", right))
    return out


def _key(token: str) -> tuple[bool, str]:
    stripped = token.lstrip()
    return "\n" in token[: len(token) - len(stripped)], stripped


def _absorb_whitespace(segments: list[Segment]) -> list[Segment]:
    """Fold a lone shared space between two edits into both sides of the edit.

    Without this a rewritten sentence reads "-The +A ␣ -cat +dog ␣ -sat +ran": the spaces match and
    chop it into word pairs. Folding gives "-The cat sat" "+A dog ran", which is how people read it.
    """
    out: list[Segment] = []
    dels: list[str] = []
    ins: list[str] = []

    def flush() -> None:
        if dels:
            out.append(("-", "".join(dels)))
        if ins:
            out.append(("+", "".join(ins)))
        dels.clear()
        ins.clear()

    for k, (op, text) in enumerate(segments):
        if op == "-":
            dels.append(text)
        elif op == "+":
            ins.append(text)
        elif dels and ins and not text.strip() and k + 1 < len(segments) and segments[k + 1][0] != "=":
            dels.append(text)
            ins.append(text)
        else:
            flush()
            out.append((op, text))
    flush()
    return out


def _merge(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for op, text in segments:
        if not text:
            continue
        if out and out[-1][0] == op:
            out[-1] = (op, out[-1][1] + text)
        else:
            out.append((op, text))
    return out


def side(segments: list[Segment], which: str) -> str:
    """The draft ("-") or the revision ("+") text rebuilt from segments."""
    return "".join(text for op, text in segments if op in ("=", which))


def diff_stats(segments: list[Segment]) -> dict[str, float | int]:
    """Words removed / added / kept, and the share of the draft's words the revision kept."""

    def words(op: str) -> int:
        return sum(len(re.findall(r"\w+", t)) for o, t in segments if o == op)

    kept, removed, added = words("="), words("-"), words("+")
    return {
        "kept": kept,
        "removed": removed,
        "added": added,
        "kept_ratio": round(kept / (kept + removed), 3) if kept + removed else 1.0,
    }
