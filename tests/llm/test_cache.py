"""The response cache: stable content-addressed keys, persistence, concurrent writers."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import socket
import sqlite3
import threading

import pytest

from curation.llm.cache import ResponseCache, cache_key

MESSAGES = [{"role": "user", "content": "hello"}]
RESPONSE = {
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]
}


def test_key_is_stable_and_ignores_dict_order():
    a = cache_key("m", MESSAGES, {"temperature": 0.5, "max_tokens": 10})
    b = cache_key("m", [{"content": "hello", "role": "user"}], {"max_tokens": 10, "temperature": 0.5})
    assert a == b and len(a) == 64


def test_key_changes_with_model_messages_and_every_sampling_param():
    base = cache_key("m", MESSAGES, {"temperature": 0.5})
    assert cache_key("other", MESSAGES, {"temperature": 0.5}) != base
    assert cache_key("m", [{"role": "user", "content": "hello!"}], {"temperature": 0.5}) != base
    assert cache_key("m", MESSAGES, {"temperature": 0.6}) != base
    assert cache_key("m", MESSAGES, {"temperature": 0.5, "response_format": {"type": "json_object"}}) != base


def test_responses_persist_across_instances(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path)
    cache.put("k1", "m", RESPONSE)
    cache.close()
    reopened = ResponseCache(path)
    assert reopened.get("k1") == RESPONSE
    assert reopened.get("missing") is None
    assert len(reopened) == 1
    reopened.close()


def test_a_torn_last_line_is_skipped_and_whole_records_survive(tmp_path):
    """A worker SIGKILLed mid-write leaves a torn line: everything before it is still an answer."""
    cache = ResponseCache(tmp_path / "cache")
    cache.put("k1", "m", RESPONSE)
    cache.close()
    (segment,) = (tmp_path / "cache").glob("*.jsonl")
    with open(segment, "ab") as f:
        f.write(b'{"k":"k2","m":"m","r":{"choi')
    reopened = ResponseCache(tmp_path / "cache")
    assert reopened.get("k1") == RESPONSE and reopened.get("k2") is None and len(reopened) == 1
    reopened.put("k2", "m", RESPONSE)  # a new process writes its own segment, never after a torn line
    assert ResponseCache(tmp_path / "cache").get("k2") == RESPONSE


def test_an_old_single_file_sqlite_cache_is_imported(tmp_path):
    path = tmp_path / "llm_cache.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE responses (key TEXT PRIMARY KEY, model TEXT, response TEXT, created_at REAL)"
        )
        conn.execute("INSERT INTO responses VALUES ('old', 'm', ?, 0)", (json.dumps(RESPONSE),))
    conn.close()
    assert ResponseCache(path).get("old") == RESPONSE
    assert ResponseCache(path).get("old") == RESPONSE  # imported once, read again


def test_a_claim_is_exclusive_until_released_and_a_dead_holder_is_stale(tmp_path):
    a, b = ResponseCache(tmp_path / "c"), ResponseCache(tmp_path / "c")
    assert a.claim("k") and not b.claim("k")
    assert not b.claim_is_stale("k", stale_after_s=60)
    a.release("k")
    assert b.claim("k")
    b.release("k")
    # A holder on this machine whose process is gone: its claim is broken at once.
    (tmp_path / "c" / "claims" / "k").write_text(
        json.dumps({"host": socket.gethostname(), "pid": 2**22 + 12345, "time": 0})
    )
    assert a.claim_is_stale("k", stale_after_s=3600)


def test_a_claim_of_an_exited_holder_not_yet_reaped_is_stale(tmp_path):
    """A run that exited while its parent (a script, a test) still waits on another run stays a
    zombie: its leftover claims must not make the other run wait for an answer nobody will pay for."""
    import subprocess
    import sys
    import time

    import psutil

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (tmp_path / "c" / "claims").mkdir(parents=True)
        (tmp_path / "c" / "claims" / "k").write_text(
            json.dumps({"host": socket.gethostname(), "pid": child.pid, "time": time.time()})
        )
        assert ResponseCache(tmp_path / "c").claim_is_stale("k", stale_after_s=3600)
    finally:
        child.wait()


def test_a_waiter_gets_the_answer_its_claim_holder_paid_for(tmp_path):
    holder, waiter = ResponseCache(tmp_path / "c"), ResponseCache(tmp_path / "c")
    assert holder.claim("k")

    async def scenario():
        wait = asyncio.ensure_future(waiter.wait_claimed("k", stale_after_s=60, poll_s=0.01))
        await asyncio.sleep(0.05)
        holder.put("k", "m", RESPONSE)
        holder.release("k")
        return await wait

    assert asyncio.run(scenario()) == RESPONSE


def test_many_threads_write_and_read_concurrently(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")

    def work(t: int) -> None:
        for i in range(50):
            cache.put(f"{t}-{i}", "m", {"n": i})
            assert cache.get(f"{t}-{i}") == {"n": i}

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(cache) == 200
    cache.close()


def _write_from_process(path: str, start: int) -> None:
    cache = ResponseCache(path)
    for i in range(start, start + 100):
        cache.put(f"k{i}", "m", {"n": i})
    cache.close()


@pytest.mark.integration
def test_two_processes_share_one_cache(tmp_path):
    path = str(tmp_path / "cache.sqlite")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_from_process, args=(path, s)) for s in (0, 100)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    cache = ResponseCache(path)
    assert len(cache) == 200 and cache.get("k150") == {"n": 150}
    cache.close()
