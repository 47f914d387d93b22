"""The on-disk response cache: a finished call is never paid for twice, even across crashes.

SQLite in WAL mode: every stored answer is its own committed transaction, so a process killed with
SIGKILL mid-run keeps every answer it had stored and never leaves a half-written row.
"""

from __future__ import annotations

import errno
import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from personagraph.errors import UserActionNeeded


class CachedAnswer(BaseModel):
    """A stored successful answer: the raw text and the token counts it cost."""

    raw_text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


def cache_key(model: str, messages: list[dict[str, str]], params: dict[str, Any], schema: dict[str, Any] | None) -> str:
    """SHA-256 over (model, messages, params, schema): what decides the answer, nothing else."""
    blob = json.dumps(
        {"model": model, "messages": messages, "params": params, "schema": schema},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CacheWriteError(UserActionNeeded):
    """The cache file cannot be written (a full disk, most often): the message names the file."""


def _write_error(path: Path, exc: sqlite3.Error | OSError) -> CacheWriteError:
    """A full disk as "disk full at PATH"; another write failure with SQLite's own words."""
    full = getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or getattr(exc, "errno", None) == errno.ENOSPC
    if full:
        return CacheWriteError(f"disk full at {path}: the LLM response cache cannot store answers; free some space "
                               "and rerun (every answer stored so far is kept)")
    return CacheWriteError(f"cannot write the LLM response cache {path}: {exc} (is the disk full or the folder "
                           "read-only?); fix it and rerun (every answer stored so far is kept)")


class ResponseCache:
    """Answers by cache key, in `folder/responses.sqlite`; used from one thread (the event loop).

    When an answer cannot be stored (a full disk), `put` raises CacheWriteError, and so does every
    later `get`: a run that goes on would pay for answers it cannot keep, so the one feeding
    requests stops. `write_error` keeps the error for the caller's final word.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / "responses.sqlite"
        self.write_error: CacheWriteError | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL keeps committed rows through a process crash; only a power cut can lose the last ones.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                " key TEXT PRIMARY KEY, raw_text TEXT NOT NULL,"
                " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, created_at REAL NOT NULL)"
            )
        except (sqlite3.OperationalError, OSError) as exc:
            raise _write_error(self.path, exc) from None

    def get(self, key: str) -> CachedAnswer | None:
        """The stored answer for `key`, or None; CacheWriteError once an answer could not be stored."""
        if self.write_error is not None:
            raise self.write_error
        row = self._db.execute(
            "SELECT raw_text, prompt_tokens, completion_tokens FROM responses WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        return CachedAnswer(raw_text=row[0], prompt_tokens=row[1], completion_tokens=row[2])

    def put(self, key: str, answer: CachedAnswer) -> None:
        """Store an answer (one committed transaction); CacheWriteError when it cannot be."""
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                (key, answer.raw_text, answer.prompt_tokens, answer.completion_tokens, time.time()),
            )
        except sqlite3.OperationalError as exc:
            self.write_error = _write_error(self.path, exc)
            raise self.write_error from None

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        """Close the database file."""
        self._db.close()
