"""Persistent response cache: no LLM request is paid for twice, across shards, runs and processes.

SQLite in WAL mode (readers never block the writer; several processes may share the file), one
connection per thread, autocommit so every response is durable as soon as it arrives: a crash
loses at most the request in flight. Keys are content addresses of the exact request, so a
changed prompt, model or sampling parameter is a different key and never a stale hit.

Only what the server answered is stored (the chat.completion dict). No header, no API key, no
sample tag: the tag is routing metadata and two identical requests are the same request.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

CACHE_KEY_VERSION = "chat/v1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any], served: str = "") -> str:
    """sha256 over (model, messages, sampling params incl. response_format, served identity).

    `served` is what the server reported for the model at preflight (vLLM's `root`: the weights'
    path): a different checkpoint served under the same model name is a different key. Left out
    when unknown, so keys of backends without an identity stay what they were.
    """
    material: dict[str, Any] = {
        "v": CACHE_KEY_VERSION,
        "model": model,
        "messages": messages,
        "params": params,
    }
    if served:
        material["served"] = served
    payload = canonical_json(material)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """Thread-safe get/put of chat.completion dicts by request key."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        self._conn()  # create the schema now, so a bad path fails at construction

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise RuntimeError("response cache is closed")
        # isolation_level=None: autocommit, each put is its own committed transaction.
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: durable across process crashes, one fsync per checkpoint not per commit.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute(_SCHEMA)
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, response: dict[str, Any]) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO responses (key, model, response, created_at) VALUES (?, ?, ?, ?)",
            (key, model, json.dumps(response, ensure_ascii=False), time.time()),
        )

    def __len__(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def __contains__(self, key: str) -> bool:
        return self._conn().execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone() is not None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"
