"""The session file: an SQLite journal of applied commands, with snapshots.

Every applied command is one row, committed (WAL, ``synchronous=FULL``) before
the command is acknowledged, so a crash loses nothing that was acknowledged.
Each row carries the command's id (the client's or a generated one) under a
UNIQUE constraint, so a retried command is found, not applied twice.
Snapshots of the whole state (model and undo history) are written every so
many commands, so opening a long session replays only the rows after the last
snapshot.

Refused, never overwritten: a file that is not an SQLite database or not a
lumiera session, one written by a newer layout, a corrupt one. A full disk or
an I/O error refuses the command (JournalError) and leaves the file as it was.

Runs in the session process, in its main thread (stdlib ``sqlite3``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from lumiera.errors import JournalError

LAYOUT_VERSION = 1
APPLICATION = "lumiera-session"
KEEP_SNAPSHOTS = 2

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE journal (
    seq     INTEGER PRIMARY KEY,          -- 1, 2, 3, ... in the order applied
    id      TEXT NOT NULL UNIQUE,         -- the command's id: a retry is found by it
    command TEXT NOT NULL,
    args    BLOB NOT NULL,                -- msgpack: the resolved arguments
    result  BLOB NOT NULL,                -- msgpack: what the client was answered
    ts      REAL NOT NULL
);
CREATE TABLE snapshot (
    seq   INTEGER PRIMARY KEY,            -- the state after journal row `seq`
    state BLOB NOT NULL                   -- msgpack: model and undo history
);
"""


@dataclass(frozen=True)
class Entry:
    seq: int
    id: str
    command: str
    args: dict[str, Any]
    result: dict[str, Any]


def _pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


class Journal:
    """An open session file. Not thread-safe; one per session process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None
        in_memory = str(path) == ":memory:"
        existed = not in_memory and path.exists() and path.stat().st_size > 0
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        except sqlite3.Error as e:
            raise JournalError(f"cannot open session file {path}: {e}") from None
        try:
            if not in_memory:
                self._lock()
            # Check before any pragma: WAL mode rewrites the header of a file that
            # turns out not to be ours, and a refused file must stay untouched.
            if not existed or self._is_empty():
                self._pragmas()
                self._create()  # new, or left empty by a crash during its creation
            else:
                self._check()
                self._pragmas()
        except sqlite3.DatabaseError as e:
            self.close()
            raise JournalError(
                f"session file {path} is not usable (corrupt or not SQLite): {e}"
            ) from None
        except JournalError:
            self.close()
            raise

    def _lock(self) -> None:
        """One session process per file: an flock, held until close.

        (flock and SQLite's own POSIX locks do not interfere; this descriptor is
        closed only after SQLite's, so closing it cannot drop SQLite's locks.)
        """
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalError(f"session file {self.path} is open in another process") from None
        self._lock_fd = fd

    def _pragmas(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")

    def _is_empty(self) -> bool:
        count: int = self.db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        return count == 0

    def _create(self) -> None:
        # One transaction for schema and meta (executescript would commit early):
        # a crash leaves either nothing or a whole, empty session.
        self.db.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self.db.execute(statement)
        self.db.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [
                ("application", APPLICATION),
                ("layout", str(LAYOUT_VERSION)),
                ("created", str(time.time())),
            ],
        )
        self.db.execute("COMMIT")

    def _check(self) -> None:
        tables = {
            r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if not {"meta", "journal", "snapshot"} <= tables:
            raise JournalError(f"{self.path} is an SQLite file but not a lumiera session")
        meta = dict(self.db.execute("SELECT key, value FROM meta"))
        if meta.get("application") != APPLICATION:
            raise JournalError(f"{self.path} is not a lumiera session")
        try:
            layout = int(meta.get("layout", "0"))
        except ValueError:
            raise JournalError(
                f"{self.path}: session layout {meta['layout']!r} is not a number"
            ) from None
        if layout > LAYOUT_VERSION:
            raise JournalError(
                f"{self.path} was written by a newer lumiera (session layout {layout}; "
                f"this one reads up to {LAYOUT_VERSION}); it is left untouched"
            )

    # -- writing --------------------------------------------------------------------

    def append(self, entries: list[tuple[str, str, dict[str, Any], dict[str, Any]]]) -> int:
        """Commit (id, command, args, result) rows in one transaction; returns the last seq.

        Raises JournalError (nothing written) on a full disk or an I/O error,
        Conflict-free: callers check ids with :meth:`find` first.
        """
        now = time.time()
        last = 0
        try:
            self.db.execute("BEGIN IMMEDIATE")
            for cid, command, args, result in entries:
                cursor = self.db.execute(
                    "INSERT INTO journal (id, command, args, result, ts) VALUES (?, ?, ?, ?, ?)",
                    (cid, command, _pack(args), _pack(result), now),
                )
                last = cursor.lastrowid or last
            self.db.execute("COMMIT")
        except Exception as e:  # noqa: BLE001 - sqlite, msgpack: nothing may stay half-written
            self._rollback()
            raise JournalError(f"cannot write the session file {self.path}: {e}") from None
        return last if entries else self.last_seq()

    def snapshot(self, seq: int, state: dict[str, Any]) -> None:
        """Store the state after row ``seq``; keeps the last few. Failure is not fatal."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO snapshot VALUES (?, ?)", (seq, _pack(state)))
            self.db.execute(
                "DELETE FROM snapshot WHERE seq NOT IN "
                "(SELECT seq FROM snapshot ORDER BY seq DESC LIMIT ?)",
                (KEEP_SNAPSHOTS,),
            )
            self.db.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            raise JournalError(f"cannot write a snapshot to {self.path}: {e}") from None

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # no transaction was open
            self.db.execute("ROLLBACK")

    # -- reading --------------------------------------------------------------------

    def find(self, cid: str) -> Entry | None:
        row = self.db.execute(
            "SELECT seq, id, command, args, result FROM journal WHERE id = ?", (cid,)
        ).fetchone()
        return None if row is None else _entry(row)

    def last_seq(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0])

    def latest_snapshot(self) -> tuple[int, dict[str, Any]] | None:
        row = self.db.execute(
            "SELECT seq, state FROM snapshot ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), _unpack(row[1]))

    def entries_after(self, seq: int) -> Iterator[Entry]:
        cursor = self.db.execute(
            "SELECT seq, id, command, args, result FROM journal WHERE seq > ? ORDER BY seq", (seq,)
        )
        try:
            for row in cursor:
                yield _entry(row)
        finally:  # an open statement would keep SQLite from tidying its WAL at close
            cursor.close()

    def close(self) -> None:
        self.db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _entry(row: tuple[Any, ...]) -> Entry:
    return Entry(int(row[0]), row[1], row[2], _unpack(row[3]), _unpack(row[4]))
