"""Video-R1's evaluation files, read as they are: the six benchmarks of the VideoRFT / Video-R1 papers.

`Video-R1/Video-R1-eval` ships `eval_{vsibench,videommmu,mmvu,mvbench,tempcompass,videomme}.json`,
JSON arrays of records with `problem_id`, `problem`, `data_type` ("video" | "image"), `problem_type`
("multiple choice" | "numerical" | "regression" ...), `options` ("A. text" lines), `solution`
("<answer>…</answer>"), `path` ("./<Benchmark>/.../x.mp4", relative to a media root: eval_bench.py
strips the "./" and prepends its own folder) and `data_source`. Our Video-R1 export has the same
fields, so it reads here too.

Rows come out in the shape evaluation uses everywhere (training/data.py's published-row names):
`media_path` (the `path` without "./"), `problem`, `options`, `problem_type` (canonical spelling),
`data_type`, `solution`, `data_source`, plus `problem_id` and `path` kept as the file has them, and
`index` / `key` (position in the file + a content hash: resume matches answered rows by it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curation.config import RecipeError
from curation.records import normalize_problem_type, stable_hash

# VideoRFT's Table 1 order: the three "video reasoning" benchmarks, then the three "understanding" ones.
BENCHMARKS: tuple[str, ...] = ("vsibench", "videommmu", "mmvu", "mvbench", "tempcompass", "videomme")
BENCHMARK_TITLES: dict[str, str] = {
    "vsibench": "VSI-Bench",
    "videommmu": "VideoMMMU",
    "mmvu": "MMVU (mc)",
    "mvbench": "MVBench",
    "tempcompass": "TempCompass",
    "videomme": "VideoMME (wo sub)",
}
REQUIRED_FIELDS: tuple[str, ...] = ("problem", "problem_type", "solution", "path")


class EvalFileError(RecipeError):
    """An evaluation file that is not in Video-R1's layout (names the file, row and field; a user
    error the CLI prints without a traceback)."""


def benchmark_file(eval_dir: str | Path, name: str) -> Path:
    return Path(eval_dir) / f"eval_{name}.json"


def benchmark_of(path: str | Path) -> str | None:
    """ "mvbench" for ".../eval_mvbench.json"; None for a file that is not one of the six."""
    stem = Path(path).stem
    name = stem.removeprefix("eval_")
    return name if stem.startswith("eval_") and name in BENCHMARKS else None


def find_benchmarks(
    eval_dir: str | Path, names: list[str] | tuple[str, ...] | None = None
) -> dict[str, Path]:
    """The benchmark files present in `eval_dir`, in table order. Unknown names raise; none found raises."""
    names = list(names or BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; known: {list(BENCHMARKS)}")
    folder = Path(eval_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"eval dir {folder} does not exist")
    found = {n: benchmark_file(folder, n) for n in names if benchmark_file(folder, n).is_file()}
    if not found:
        expected = ", ".join(benchmark_file(folder, n).name for n in names)
        raise FileNotFoundError(f"no benchmark file in {folder} (looked for {expected})")
    return found


def _records(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            data = json.loads(text)
        else:  # JSON lines
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise EvalFileError(f"{path}: not a JSON array or JSON lines file ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        data = data["results"]  # an eval_bench output file: its rows carry the same fields
    if not isinstance(data, list):
        raise EvalFileError(f"{path}: expected a JSON array of records")
    return data


def looks_like_videor1(path: str | Path) -> bool:
    """A .json / .jsonl file whose first record has `path` and no `media_path` (Video-R1's layout)."""
    p = Path(path)
    if not p.is_file() or p.suffix not in (".json", ".jsonl"):
        return False
    try:
        records = _records(p)
    except (EvalFileError, UnicodeDecodeError):
        return False
    first = records[0] if records else None
    return isinstance(first, dict) and "path" in first and "media_path" not in first


def row_key(index: int, row: dict[str, Any]) -> str:
    """Position + content hash: stable across reruns of the same file, new when a row changes."""
    content = [row.get(k) for k in ("problem", "options", "solution", "media_path", "problem_type")]
    return f"{index}:{stable_hash('eval-row/v1', content, length=12)}"


def eval_row(record: dict[str, Any], index: int, source: str = "") -> dict[str, Any]:
    """One Video-R1 record as an evaluation row (raises EvalFileError naming what is wrong)."""
    where = f"{source} row {index}" + (
        f" (problem_id {record.get('problem_id')})" if "problem_id" in record else ""
    )
    if not isinstance(record, dict):
        raise EvalFileError(f"{where}: not a JSON object")
    missing = [f for f in REQUIRED_FIELDS if record.get(f) in (None, "")]
    if missing:
        raise EvalFileError(
            f"{where}: missing field(s) {missing} (Video-R1 eval layout: {list(REQUIRED_FIELDS)})"
        )
    problem_type = normalize_problem_type(record["problem_type"])
    if problem_type is None:
        raise EvalFileError(f"{where}: unknown problem_type {record['problem_type']!r}")
    path = str(record["path"])
    media_path = path[2:] if path.startswith("./") else path.lstrip("/")
    data_type = str(record.get("data_type") or "video").lower()
    options = record.get("options") or []
    if not isinstance(options, list):
        raise EvalFileError(f"{where}: options must be a list of 'A. text' lines")
    row = {
        "problem_id": record.get("problem_id"),
        "problem": str(record["problem"]),
        "options": [str(o) for o in options],
        "problem_type": problem_type,
        "data_type": data_type,
        "solution": str(record["solution"]),
        "path": path,
        "media_path": media_path,
        "data_source": record.get("data_source"),
        "index": index,
    }
    if "process" in record:
        row["process"] = record["process"]
    row["key"] = row_key(index, row)
    return row


def read_videor1_eval(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a Video-R1 evaluation file (or of our Video-R1 export) as an evaluation row."""
    p = Path(path)
    return [eval_row(rec, i, p.name) for i, rec in enumerate(_records(p))]
