"""Video-R1 / VideoRFT JSON rows (a JSON list or JSONL), on top of the generic column rules.

The dialect (reference/videorft.md §2): `path` ("./<Source>/.../x.mp4", the "./" is dropped by the
path rules), `solution` wrapped in `<answer>…</answer>` (we keep the bare answer), `options` in
their own field (Video-R1, eval files) or, in VideoRFT's files, as "A. …" lines inside `problem`.
When a multiple-choice row has no options field (or the same options in both places), options are
parsed out of the problem text: lines like "A. …", "(A) …", "A) …", lettered A, B, C, ... in order (at least two). The problem then
keeps only the question (an "Options:"/"Choices:" header line is dropped) and the original text is
kept in meta["original_problem"]. `problem_id` and `process` (the `<think>` CoT) are kept in meta.
Options written inline on one line ("... A. cat B. dog") are not split: such a row is rejected as
multiple choice without options.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from curation.records import MULTIPLE_CHOICE, normalize_problem_type
from curation.sources.annotations import canonical_fields
from curation.sources.validate import Prepared, RowRejected, normalize_options, option_entries, split_option

ANSWER_TAG_RE = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL | re.IGNORECASE)
_OPTIONS_HEADER_RE = re.compile(r"^\s*(?:options|choices)\s*:?\s*$", re.IGNORECASE)
# Options inside a problem must look like a list line: a letter, a separator, then whitespace.
_EMBEDDED_OPTION_RE = re.compile(r"^\s*(?:\([A-Z]\)|[A-Z][.):：])\s+\S")
META_FIELDS = ("problem_id", "process")


def strip_answer_tags(solution: Any) -> Any:
    """'<answer> B </answer>' -> 'B'; anything without the tags is returned unchanged."""
    if not isinstance(solution, str):
        return solution
    match = ANSWER_TAG_RE.search(solution)
    return match.group(1) if match else solution


def split_embedded_options(problem: str) -> tuple[str, list[str]] | None:
    """(question, ["A. …", "B. …"]) when `problem` ends with an option list, else None.

    Option lines must run A, B, C, ... without gaps (so a stray "B) ..." sentence is not taken for a
    list). Non-option lines between two option lines continue the previous option (wrapped text);
    lines after the last option (e.g. "Answer with the letter.") stay with the question.
    """
    lines = problem.splitlines()
    marks = [i for i, line in enumerate(lines) if _EMBEDDED_OPTION_RE.match(line)]
    if len(marks) < 2:
        return None
    letters = [split_option(lines[i])[0] for i in marks]  # type: ignore[index]
    if letters != [chr(ord("A") + k) for k in range(len(letters))]:
        return None
    first, last = marks[0], marks[-1]
    options: list[str] = []
    for i in range(first, last + 1):
        line = lines[i].strip()
        if i in marks:
            letter, text = split_option(line)  # type: ignore[misc]
            options.append(f"{letter}. {text}")
        elif line:
            options[-1] = f"{options[-1]} {line}"
    before = lines[:first]
    while before and (not before[-1].strip() or _OPTIONS_HEADER_RE.match(before[-1])):
        before.pop()
    after = [line.strip() for line in lines[last + 1 :] if line.strip()]
    question = "\n".join(before + after).strip()
    if not question:
        return None
    return question, options


def looks_like_videor1(record: dict[str, Any]) -> bool:
    """Video-R1 markers: its id/CoT fields, or an answer still wrapped in <answer> tags."""
    if any(key in record for key in META_FIELDS):
        return True
    solution = record.get("solution", record.get("answer"))
    return isinstance(solution, str) and ANSWER_TAG_RE.search(solution) is not None


def videor1_fields(record: dict[str, Any], column_map: dict[str, str] | None = None) -> Prepared:
    prepared = canonical_fields(record, column_map)
    fields = prepared.fields
    if "solution" in fields:
        fields["solution"] = strip_answer_tags(fields["solution"])
    for key in META_FIELDS:
        if key in prepared.extra:
            prepared.meta[key] = prepared.extra.pop(key)

    problem = fields.get("problem")
    if normalize_problem_type(fields.get("problem_type")) == MULTIPLE_CHOICE and isinstance(problem, str):
        entries = option_entries(fields.get("options"))  # may reject (bad options): that is the reason
        split = split_embedded_options(problem)
        # Options only in the problem (VideoRFT's files), or in both places identically: the problem
        # keeps the question, the options go to their field, and the source text is kept so the
        # VideoRFT export gives it back unchanged (and no prompt ever lists the options twice).
        if split is not None and (not entries or _same_options(split[1], entries)):
            fields["problem"], fields["options"] = split
            prepared.meta["original_problem"] = problem
    return prepared


def _same_options(embedded: list[str], entries: list[str]) -> bool:
    try:
        listed = normalize_options(entries)
    except RowRejected:
        return False
    return [" ".join(o.split()) for o in embedded] == [" ".join(o.split()) for o in listed]


def prepare_videor1(column_map: dict[str, str]) -> Callable[[dict[str, Any]], Prepared]:
    def prepare(record: dict[str, Any]) -> Prepared:
        return videor1_fields(record, column_map)

    return prepare
