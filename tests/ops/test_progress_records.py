"""Progress records (what shard tasks write) and the lines the flow logs from them; the stop flag."""

from __future__ import annotations

import json
import re

from curation.progress_files import (
    ShardProgress,
    clear_records,
    progress_line,
    read_records,
    record_path,
    summarize,
)
from curation.stop import StopFlag, marker_path, register_run, request_stop, unregister_run


def test_a_shard_record_counts_reused_and_finished_rows_and_is_whole_json(tmp_path):
    p = ShardProgress(tmp_path, "caption", 3, total=5, every_s=3600)
    p.reused([{"status": "ok"}, {"status": "rejected"}])
    p.row_done({"status": "ok", "requests": 2, "cache_hits": 1})  # throttled: not on disk yet
    on_disk = json.loads(record_path(tmp_path, "caption", 3).read_text())
    assert (on_disk["done"], on_disk["reused"], on_disk["llm_requests"]) == (2, 2, 0)
    p.finish(ok=3, rejected=1, failed=1, llm={"llm_requests": 4, "llm_cache_hits": 1})
    (rec,) = read_records(tmp_path)
    assert (rec.stage, rec.shard, rec.total, rec.done, rec.failed, rec.llm_requests, rec.finished) == (
        "caption", 3, 5, 5, 1, 4, True,
    )  # fmt: skip
    assert not list(tmp_path.rglob("*.tmp"))
    clear_records(tmp_path)
    assert read_records(tmp_path) == []


def _write(run_dir, stage, shard, total, done, ok, finished, started=100.0, reused=0, **kw):
    path = record_path(run_dir, stage, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = dict(stage=stage, shard=shard, total=total, done=done, reused=reused, ok=ok, rejected=0,
               failed=done - ok, llm_requests=kw.get("req", 0), llm_cache_hits=0, started=started,
               updated=started, finished=finished)  # fmt: skip
    path.write_text(json.dumps(rec))


def test_stage_totals_are_exact_where_the_stage_before_finished_and_estimated_elsewhere(tmp_path):
    # 3 shards of 10 source rows. extract finished shards 0 and 1 (8 and 10 ok), works on shard 2.
    _write(tmp_path, "extract", 0, 10, 10, 8, True)
    _write(tmp_path, "extract", 1, 10, 10, 10, True)
    _write(tmp_path, "extract", 2, 10, 4, 4, False)
    _write(tmp_path, "caption", 0, 8, 8, 8, True, req=8)
    s = summarize(read_records(tmp_path), ["extract", "caption", "draft"], 3, source_ok=[10, 10, 10])
    ex, cap, dr = s["extract"], s["caption"], s["draft"]
    assert (ex.total, ex.exact, ex.done, ex.shards_finished) == (30, True, 24, 2)
    # caption: shard 0 started (8), shard 1 from extract's finished ok (10), shard 2 estimated
    # from extract's pass-through so far (18 of 20) -> 9.
    assert (cap.total, cap.exact, cap.done) == (27, False, 8)
    assert dr.shards_started == 0


def test_progress_line_says_done_total_rate_eta_requests_and_failures(tmp_path):
    _write(tmp_path, "caption", 0, 100, 40, 38, False, started=1000.0, reused=20, req=25)
    sp = summarize(read_records(tmp_path), ["caption"], 1, source_ok=[100])["caption"]
    line = progress_line(sp, now=1010.0)  # 20 rows computed in 10 s -> 2 rows/s, 60 left -> 30 s
    assert re.fullmatch(
        r"caption: 40/100 rows \(40%\), 2\.0 rows/s, ETA 0:30, llm requests 25, cache hits 0, "
        r"rejected 0, failed 2, shards 0/1 done",
        line,
    ), line


def test_a_stop_reaches_shard_tasks_of_other_processes_through_the_run_folder(tmp_path):
    run = tmp_path / "run"
    register_run(run)
    try:
        flag = StopFlag(run)  # what a worker process builds from the run folder
        assert not flag.is_set()
        request_stop(2)
        assert marker_path(run).exists()
        assert StopFlag(run).is_set()
    finally:
        unregister_run(run)
        register_run(tmp_path / "next")  # a new run forgets the stop
        unregister_run(tmp_path / "next")
    assert not StopFlag(tmp_path / "next").is_set()
