"""The response cache: stable content-addressed keys, persistence, concurrent writers."""

from __future__ import annotations

import multiprocessing
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


def test_uses_wal_mode(tmp_path):
    path = tmp_path / "cache.sqlite"
    ResponseCache(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


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
def test_two_processes_share_one_cache_file(tmp_path):
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
