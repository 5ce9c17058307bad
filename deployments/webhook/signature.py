"""What makes a delivery authentic (its HMAC signature) and new (its signed body not handled before)."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import threading
import time
from pathlib import Path

MAX_REMEMBERED = 10_000


def signature_for(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """True only for a well-formed ``sha256=<hex>`` header equal to HMAC-SHA256(secret, body)."""
    if not header or not secret:
        return False
    expected = signature_for(secret, body)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("utf-8", "replace"))


def replay_key(signature: str, body: bytes) -> str:
    """What identifies a delivery: the signed bytes themselves, never the unsigned ``X-GitHub-Delivery``."""
    return hashlib.sha256(signature.strip().encode("utf-8", "replace") + b"\n" + body).hexdigest()


class ReplayLog:
    """Replay keys already handled, in SQLite (a file for durability, ``:memory:`` for tests); newest ``limit``."""

    def __init__(self, path: str | Path = ":memory:", limit: int = MAX_REMEMBERED) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS handled_bodies (digest TEXT PRIMARY KEY, seen REAL NOT NULL)")
        self._lock = threading.Lock()
        self._limit = limit

    def claim(self, key: str) -> bool:
        """Record the key; False when it was already there (a replay)."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO handled_bodies (digest, seen) VALUES (?, ?)", (key, time.time())
            )
            if cur.rowcount == 0:
                return False
            self._db.execute(
                "DELETE FROM handled_bodies WHERE rowid <= (SELECT MAX(rowid) FROM handled_bodies) - ?", (self._limit,)
            )
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM handled_bodies WHERE digest = ?", (key,))

    def __len__(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM handled_bodies").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
