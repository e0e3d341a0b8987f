"""Persistent response cache: no LLM request is paid for twice, across shards, runs and processes.

Append-only segment files, one per writing process, read as a union (ResponseCache says why):
every response is durable as soon as it arrives, a killed worker loses at most the request in
flight, and the folder works on a filesystem shared by several machines. Keys are content addresses of the exact request, so a
changed prompt, model or sampling parameter is a different key and never a stale hit.

Only what the server answered is stored (the chat.completion dict). No header, no API key, no
sample tag: the tag is routing metadata and two identical requests are the same request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from curation.store.lock import pid_alive

CACHE_KEY_VERSION = "chat/v1"


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
    """Thread- and process-safe get/put of chat.completion dicts by request key, plus claims.

    Storage: a folder of append-only segment files, one per writing process
    (`<host>-<pid>-<nonce>.jsonl`), read as a union. Why not one SQLite file: SQLite's WAL was left
    un-checkpointed when Ray/Dask killed workers and does not work on a network filesystem, and
    several machines writing one SQLite file over NFS corrupt it. An append-only file with a single
    writer needs no locking at all: a record is one `write()` of one line, so readers (any process,
    any machine) see whole lines or a torn last line, which they skip until it is complete. A
    SIGKILLed worker loses at most the line it was writing; what it wrote is in the page cache (and
    on the server's disk for NFS, flushed on close-to-open), never behind an un-checkpointed WAL.

    Each process keeps an index key -> (segment, offset, length) and reads new bytes of the other
    segments on a miss (a directory listing and a stat per segment: cheap next to the request the
    miss is about to send).

    Claims: before a miss is sent, the gateway claims its key (`claims/<key>`, created with O_EXCL,
    holding host, pid and time). Another process (a worker of the same run, a concurrent run sharing
    the cache) finding the claim waits for the answer instead of paying for it again. A claim whose
    holder died (same host, pid gone) or that is older than the waiter's stale limit is broken.

    A legacy single-file SQLite cache at `path` (earlier releases) is imported once, read-only.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # `runs/llm_cache.sqlite` (the old default spelling) -> folder `runs/llm_cache/`.
        self.dir = self.path.with_suffix("") if self.path.suffix == ".sqlite" else self.path
        self.claims_dir = self.dir / "claims"
        self.claims_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._index: dict[str, tuple[str, int, int]] = {}
        self._pos: dict[str, int] = {}  # segment name -> bytes consumed (whole lines only)
        self._read_fds: dict[str, int] = {}
        self._write_fd: int | None = None
        self._segment = f"{_safe(socket.gethostname())}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._closed = False
        self._import_legacy()
        self.refresh()

    # ---- reads ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Index the records other processes appended since the last look."""
        with self._lock:
            try:
                names = sorted(p for p in os.listdir(self.dir) if p.endswith(".jsonl"))
            except FileNotFoundError:
                return
            for name in names:
                self._scan(name)

    def _scan(self, name: str) -> None:
        path = self.dir / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return
        pos = self._pos.get(name, 0)
        if size <= pos:
            return
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read(size - pos)
        end = data.rfind(b"\n")
        if end < 0:  # only a torn / in-progress line so far
            return
        offset = pos
        for line in data[: end + 1].splitlines(keepends=True):
            key = _key_of(line)
            if key is not None and key not in self._index:
                self._index[key] = (name, offset, len(line))
            offset += len(line)
        self._pos[name] = offset

    def _read(self, where: tuple[str, int, int]) -> dict[str, Any] | None:
        name, offset, length = where
        with self._lock:
            fd = self._read_fds.get(name)
            if fd is None:
                fd = self._read_fds[name] = os.open(self.dir / name, os.O_RDONLY)
        try:
            return json.loads(os.pread(fd, length, offset))["r"]
        except (ValueError, KeyError):
            return None  # a damaged record (a full disk's torn write): a miss, paid again at worst

    def get(self, key: str) -> dict[str, Any] | None:
        if self._closed:
            raise RuntimeError("response cache is closed")
        where = self._index.get(key)
        if where is None:
            self.refresh()
            where = self._index.get(key)
        return self._read(where) if where is not None else None

    def __len__(self) -> int:
        self.refresh()
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        if key not in self._index:
            self.refresh()
        return key in self._index

    # ---- writes --------------------------------------------------------------------------------
    def put(self, key: str, model: str, response: dict[str, Any]) -> None:
        record = canonical_json({"k": key, "m": model, "r": response, "t": round(time.time(), 3)})
        line = (record + "\n").encode("utf-8")
        with self._lock:
            if self._closed:
                raise RuntimeError("response cache is closed")
            if self._write_fd is None:
                self._write_fd = os.open(
                    self.dir / self._segment, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
                )
            offset = os.fstat(self._write_fd).st_size
            view = memoryview(line)
            try:
                while view:  # one write() in practice; a regular file only writes less on a full disk
                    view = view[os.write(self._write_fd, view) :]
            except OSError:
                # A full disk left a torn line: later records go to a fresh segment, never after it.
                os.close(self._write_fd)
                self._write_fd = None
                self._segment = f"{self._segment.rsplit('-', 1)[0]}-{uuid.uuid4().hex[:8]}.jsonl"
                raise
            self._index[key] = (self._segment, offset, len(line))
            if self._pos.get(self._segment, 0) == offset:
                self._pos[self._segment] = offset + len(line)

    # ---- claims --------------------------------------------------------------------------------
    def claim(self, key: str) -> bool:
        """Take the right to send `key`'s request; False when another live process holds it."""
        path = self.claims_dir / key
        holder = canonical_json({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()})
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, holder.encode("utf-8"))
        except OSError:  # a full disk: no claim (an empty one would make others wait for nothing)
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        return True

    def release(self, key: str) -> None:
        (self.claims_dir / key).unlink(missing_ok=True)

    def claim_is_stale(self, key: str, stale_after_s: float) -> bool:
        """The claim's holder is gone: a dead pid on this host, or the claim is older than
        `stale_after_s` (a holder on another machine cannot be asked; its request has long timed out)."""
        path = self.claims_dir / key
        try:
            age = time.time() - path.stat().st_mtime
            holder = json.loads(path.read_text() or "{}")
        except FileNotFoundError:
            return False
        except ValueError:  # written by a holder killed between create and write
            return age > 5.0
        if not isinstance(holder, dict) or not holder:  # created, never written (killed, disk full)
            return age > 5.0
        if holder.get("host") == socket.gethostname() and not pid_alive(int(holder.get("pid", 0))):
            return True
        return age > stale_after_s

    async def wait_claimed(
        self, key: str, stale_after_s: float, poll_s: float = 0.05
    ) -> dict[str, Any] | None:
        """Wait (without blocking the event loop) until the claimed answer is in the cache, or the
        claim is gone (its holder failed: returns None and the caller claims it itself)."""
        delay = poll_s
        while True:
            hit = self.get(key)
            if hit is not None:
                return hit
            if not (self.claims_dir / key).exists():
                return self.get(key)
            if self.claim_is_stale(key, stale_after_s):
                self.release(key)
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    # ---- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._closed = True
            for fd in self._read_fds.values():
                os.close(fd)
            self._read_fds.clear()
            if self._write_fd is not None:
                os.close(self._write_fd)
                self._write_fd = None

    def _import_legacy(self) -> None:
        """Answers paid for under the single-file SQLite cache stay paid for: copied once into a
        segment (written under a temporary name and renamed, so a concurrent import is harmless)."""
        if not (self.path.suffix == ".sqlite" and self.path.is_file()):
            return
        target = self.dir / f"legacy-{self.path.stem}.jsonl"
        if target.exists():
            return
        conn = sqlite3.connect(self.path, timeout=30.0)
        try:
            rows = conn.execute("SELECT key, model, response, created_at FROM responses").fetchall()
        except sqlite3.DatabaseError:
            rows = []
        finally:
            conn.close()
        tmp = self.dir / f".legacy-{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as f:
            for key, model, response, created in rows:
                rec = {"k": key, "m": model, "r": json.loads(response), "t": created}
                f.write((canonical_json(rec) + "\n").encode("utf-8"))
        os.replace(tmp, target)

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.dir)!r})"


def _key_of(line: bytes) -> str | None:
    """The key of a complete record line (canonical JSON puts `"k"` first), None if unreadable."""
    if not line.startswith(b'{"k":"') or not line.endswith(b"}\n"):
        return None
    end = line.find(b'"', 6)
    return line[6:end].decode("ascii", "replace") if end > 6 else None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "host"


def stored_count(path: str | Path) -> int:
    """Distinct answers stored in the cache at `path`, read-only (for checks and benchmarks)."""
    path = Path(path)
    folder = path.with_suffix("") if path.suffix == ".sqlite" else path
    keys: set[str] = set()
    for seg in folder.glob("*.jsonl") if folder.is_dir() else []:
        for line in seg.read_bytes().splitlines(keepends=True):
            key = _key_of(line)
            if key is not None:
                keys.add(key)
    return len(keys)
