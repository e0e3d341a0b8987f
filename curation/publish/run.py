"""`publish_run`: a run store in, a versioned pair of datasets out.

Layout::

    <out_dir>/<name>/
      latest                           # text file: the newest version folder's name
      <version>-<hash8>/
        publish.json                   # version, content hash, counts, sanitised lineage
        cot/                           # CoT (SFT) set: rows whose revised CoT passed every filter
          README.md                    # dataset card (YAML metadata + tables)
          data/train-00000-of-00001.parquet   (+ test-… when cfg.test_fraction > 0)
          dataset_dict.json, train/, test/    # the same rows for datasets.load_from_disk
          videor1/cot-train.json       # for Video-R1's scripts (JSON array, options in `options`)
          videorft/cot-train.jsonl     # for VideoRFT's scripts (options inside `problem`)
        rl/                            # RL set: every valid question whose media extracted ok
          … same layout, videor1/rl-train.json, videorft/rl-train.jsonl

Everything is written into a hidden temporary folder and renamed into place at the end, so a
crashed publish never leaves a half-written version and `latest` only ever names complete ones.
Publishing rows that an existing version already holds (same content hash) makes no new folder:
that version is reused, and `latest` stays where it is when it already names it (versions.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curation.filters.base import count_tokens, think_text
from curation.publish import cards as card_lib
from curation.publish.collect import extracted_ids, kept_cots, sanitize, summarise_run
from curation.publish.config import PublishConfig
from curation.publish.export import ProblemIds, TrainerExports, parse_meta
from curation.publish.sets import COLUMN_DOCS, COT_SCHEMA, RL_SCHEMA, SetWriter, split_of
from curation.publish.versions import same_content_version, write_latest
from curation.records import OK, normalize_problem_type
from curation.store import RunStore
from curation.store.atomic import atomic_write_bytes, atomic_write_json
from training.scoring import extract_answer

log = logging.getLogger(__name__)


@dataclass
class PublishResult:
    cot_dir: Path
    rl_dir: Path
    cot_rows: int
    rl_rows: int
    # "cot-train", "rl-train" (+ "-test"): Video-R1 files; "videorft-cot-train", ...: VideoRFT files
    exports: dict[str, Path]
    cards: dict[str, Path]  # "cot", "rl" -> README.md
    version: str  # folder name: "<version>-<content hash[:8]>"
    content_hash: str = ""
    splits: dict[str, dict[str, int]] = field(default_factory=dict)  # set -> split -> rows
    # True when an existing version already held exactly these rows and was reused as is.
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (paths as strings), e.g. for the run manifest's `publish` entry."""
        return {
            "cot_dir": str(self.cot_dir),
            "rl_dir": str(self.rl_dir),
            "cot_rows": self.cot_rows,
            "rl_rows": self.rl_rows,
            "exports": {k: str(v) for k, v in self.exports.items()},
            "cards": {k: str(v) for k, v in self.cards.items()},
            "version": self.version,
            "content_hash": self.content_hash,
            "splits": self.splits,
            "reused": self.reused,
        }


def _tagged(solution: Any) -> str:
    """The ground truth as `<answer>…</answer>` (the sample's solution is bare; tolerate tagged)."""
    return f"<answer>{extract_answer(str(solution or ''), whole_if_missing=True)}</answer>"


def publish_run(
    store: RunStore,
    out_dir: Path,
    cfg: PublishConfig,
    *,
    run_name: str,
    lineage: dict[str, Any],
) -> PublishResult:
    """Publish the run in `store` as a CoT set and an RL set under `out_dir/<cfg.name>/`.

    `lineage` (run name, config hash, prompt hashes, models, anything the caller wants recorded)
    is sanitised — no credentials, URLs or local paths — before it reaches publish.json or a card.
    """
    out_dir = Path(out_dir)
    root = out_dir / cfg.name
    root.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    base_version = cfg.version or now.strftime("v%Y%m%d-%H%M%S")
    tmp = root / f".tmp-{base_version}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        result = _publish_into(
            store, tmp, cfg, run_name=run_name, lineage=lineage, base_version=base_version, created_at=now
        )
        existing = same_content_version(root, result.content_hash, cfg.version)
        if existing is not None:
            # The same rows are already published: keep that folder (and its card) untouched.
            shutil.rmtree(tmp)
            final, result.version, result.reused = root / existing, existing, True
        else:
            final = root / result.version
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    moved = write_latest(root, result.version)
    result = _relocate(result, tmp, final)
    if result.reused:
        log.info(
            "published content unchanged: reusing version %s (%d CoT rows, %d RL rows)%s -> %s",
            result.version,
            result.cot_rows,
            result.rl_rows,
            "; latest now names it" if moved else "; latest unchanged",
            final,
        )
    else:
        log.info(
            "published %s: %d CoT rows, %d RL rows -> %s",
            result.version,
            result.cot_rows,
            result.rl_rows,
            final,
        )
    if cfg.push_to_hub:
        from curation.publish.hub import push_to_hub

        for set_dir, suffix in ((result.cot_dir, "-cot"), (result.rl_dir, "-rl")):
            push_to_hub(set_dir, cfg.push_to_hub + suffix, cfg.hub_token_env, private=cfg.hub_private)
    return result


def _relocate(result: PublishResult, old: Path, new: Path) -> PublishResult:
    def move(p: Path) -> Path:
        return new / p.relative_to(old)

    result.cot_dir = move(result.cot_dir)
    result.rl_dir = move(result.rl_dir)
    result.exports = {k: move(v) for k, v in result.exports.items()}
    result.cards = {k: move(v) for k, v in result.cards.items()}
    return result


def _publish_into(
    store: RunStore,
    work: Path,
    cfg: PublishConfig,
    *,
    run_name: str,
    lineage: dict[str, Any],
    base_version: str,
    created_at: datetime,
) -> PublishResult:
    summary = summarise_run(store)
    cot_dir, rl_dir = work / "cot", work / "rl"
    cot_writer, rl_writer = SetWriter(cot_dir, COT_SCHEMA), SetWriter(rl_dir, RL_SCHEMA)
    cot_export, rl_export = TrainerExports(cot_dir, "cot"), TrainerExports(rl_dir, "rl")
    problem_ids = ProblemIds.from_store(store)  # the source's problem_id where it has one

    cot_sources: Counter = Counter()
    rl_sources: Counter = Counter()
    cot_types: Counter = Counter()
    rl_types: Counter = Counter()
    models: Counter = Counter()
    lengths: list[int] = []

    columns = [
        "id",
        "status",
        "media_path",
        "data_type",
        "problem",
        "options",
        "solution",
        "problem_type",
        "data_source",
        "meta",
    ]
    # A kept id without revise text cannot be published (a stale filter row): counted, not published.
    missing_process = 0
    media_failed = 0  # valid questions whose media did not extract: never published
    for shard in store.shards("sources"):
        cots = kept_cots(store, shard, summary.kept)
        loadable = extracted_ids(store, shard)
        for src in store.read_shard("sources", shard, columns) or []:
            if src.get("status") != OK:
                continue
            sid = src["id"]
            if sid not in loadable:
                media_failed += 1
                continue
            split = split_of(sid, cfg.test_fraction)
            problem_type = normalize_problem_type(src.get("problem_type")) or str(src.get("problem_type"))
            rl_row = {
                "id": sid,
                "media_path": src["media_path"],
                "data_type": src["data_type"],
                "problem": src["problem"],
                "options": list(src.get("options") or []),
                "problem_type": problem_type,
                "solution": _tagged(src.get("solution")),
                "data_source": src["data_source"],
            }
            rl_writer.add(split, rl_row)
            problem_id = problem_ids[sid]
            original_problem = parse_meta(src.get("meta")).get("original_problem")
            rl_export.add(split, rl_row, problem_id, original_problem)
            rl_sources[(rl_row["data_source"], problem_type)] += 1
            rl_types[rl_row["data_type"]] += 1
            if sid in cots:  # kept ids with their revised CoT
                process, lin = cots[sid]
                cot_row = {
                    "id": sid,
                    "media_path": rl_row["media_path"],
                    "data_type": rl_row["data_type"],
                    "problem": rl_row["problem"],
                    "options": rl_row["options"],
                    "problem_type": problem_type,
                    "process": process,
                    "solution": rl_row["solution"],
                    "data_source": rl_row["data_source"],
                    "prompt_hash_caption": lin.prompt_hash_caption,
                    "prompt_hash_draft": lin.prompt_hash_draft,
                    "prompt_hash_revise": lin.prompt_hash_revise,
                    "model_caption": lin.model_caption,
                    "model_draft": lin.model_draft,
                    "model_revise": lin.model_revise,
                    "run_name": run_name,
                }
                cot_writer.add(split, cot_row)
                cot_export.add(split, cot_row, problem_id, original_problem)
                cot_sources[(cot_row["data_source"], problem_type)] += 1
                cot_types[cot_row["data_type"]] += 1
                lengths.append(count_tokens(think_text(cot_row["process"])))
                for stage in ("caption", "draft", "revise"):
                    served, asked = getattr(lin, f"model_{stage}"), lin.requested.get(stage, "")
                    models[(stage, served, asked, getattr(lin, f"prompt_hash_{stage}"))] += 1
            elif sid in summary.kept:
                missing_process += 1

    if missing_process:
        log.warning("%d filter-ok rows have no revise text and are not published", missing_process)
    cot_splits, rl_splits = cot_writer.close(), rl_writer.close()
    cot_files, rl_files = cot_export.close(), rl_export.close()
    cot_writer.save_for_load_from_disk()
    rl_writer.save_for_load_from_disk()

    content_hash = hashlib.sha256(f"{cot_writer.content_hash}:{rl_writer.content_hash}".encode()).hexdigest()[
        :16
    ]
    version = f"{base_version}-{content_hash[:8]}"
    clean_lineage = sanitize(dict(lineage))
    created = created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    # Model names can be local paths (in-process backends): sanitised like the lineage.
    prov = sanitize(card_lib.provenance(clean_lineage, models))

    common = {
        "version": version,
        "content_hash": content_hash,
        "created_at": created,
        "run_name": run_name,
        "cot_rows": sum(cot_splits.values()),
        "rl_rows": sum(rl_splits.values()),
        "funnel": card_lib.funnel(summary),
        "rejections": card_lib.rejection_table(summary, cfg.max_reason_rows),
        "models": card_lib.models_table(models),
        "provenance": prov,
        "lineage": card_lib.lineage_items({"run_name": run_name, **clean_lineage}),
        "media_failed": media_failed,
    }
    pretty = cfg.pretty_name or cfg.name
    cards: dict[str, Path] = {}
    for kind, set_dir, writer, splits, files, sources, types, schema in (
        ("cot", cot_dir, cot_writer, cot_splits, cot_files, cot_sources, cot_types, COT_SCHEMA),
        ("rl", rl_dir, rl_writer, rl_splits, rl_files, rl_sources, rl_types, RL_SCHEMA),
    ):
        split_names = writer.splits()
        rows = sum(splits.values())
        pretty_name = f"{pretty} {'CoT' if kind == 'cot' else 'RL'}"
        context = {
            **common,
            "metadata": card_lib.card_metadata(
                pretty_name=pretty_name,
                license=cfg.license,
                rows=rows,
                splits=split_names,
                tags=cfg.tags,
                provenance=prov,
            ),
            "pretty_name": pretty_name,
            "rows": rows,
            "splits": [(s, splits[s]) for s in split_names],
            "split_names": split_names,
            "sources": card_lib.source_table(sources),
            "data_types": sorted(types.items()),
            "filters": card_lib.filter_table(summary),
            "lengths": card_lib.length_stats(lengths, cfg.histogram_bins) if kind == "cot" else None,
            "columns": [(name, COLUMN_DOCS.get(name, "")) for name in schema.names],
            "trainer_exports": card_lib.trainer_exports(kind, files, set_dir),
        }
        card = card_lib.render_card(kind, context, cfg.templates_dir)
        cards[kind] = set_dir / "README.md"
        atomic_write_bytes(cards[kind], card.encode("utf-8"))

    exports = cot_files | rl_files
    result = PublishResult(
        cot_dir=cot_dir,
        rl_dir=rl_dir,
        cot_rows=sum(cot_splits.values()),
        rl_rows=sum(rl_splits.values()),
        exports=exports,
        cards=cards,
        version=version,
        content_hash=content_hash,
        splits={"cot": cot_splits, "rl": rl_splits},
    )
    atomic_write_json(
        work / "publish.json",
        {
            "name": cfg.name,
            "version": version,
            "content_hash": content_hash,
            "created_at": created,
            "run_name": run_name,
            "run_dir": store.run_dir.name,
            "rows": {"cot": result.cot_rows, "rl": result.rl_rows},
            "splits": result.splits,
            "test_fraction": cfg.test_fraction,
            "not_published_missing_process": missing_process,
            "not_published_media_failed": media_failed,
            "stages": {s["stage"]: {k: v for k, v in s.items() if k != "stage"} for s in common["funnel"]},
            "provenance": prov,
            "lineage": clean_lineage,
        },
    )
    return result
