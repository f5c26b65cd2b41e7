"""The session file: refused when it is not ours, untouched when refused, safe on a full disk."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lumiera.errors import JournalError
from lumiera.steam.journal import LAYOUT_VERSION, Journal
from tests.support import tmpfs

from .kit import SETUP, file_bytes, journal_rows, open_core, opened, set_up, state


def listing(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def lumiera_file(path: Path) -> Path:
    with opened(path) as core:
        set_up(core)
    return path


def refused(path: Path, *words: str) -> None:
    """Opening ``path`` is a JournalError naming it, and nothing in its folder changes."""
    before = listing(path.parent)
    with pytest.raises(JournalError) as err:
        open_core(path).close()
    message = str(err.value)
    assert str(path) in message
    for word in words:
        assert word in message
    assert listing(path.parent) == before


# -- files that are refused -------------------------------------------------------------


def test_a_file_of_random_bytes_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "noise.lum"
    path.write_bytes(random.Random(7).randbytes(16384))
    refused(path, "not usable")


def test_a_file_with_an_sqlite_header_and_garbage_after_it_is_refused_and_left_untouched(
    tmp_path,
):
    path = tmp_path / "mangled.lum"
    path.write_bytes(b"SQLite format 3\0" + random.Random(8).randbytes(8192))
    refused(path)


def test_a_text_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.lum"
    path.write_text("my precious notes\n" * 100)
    refused(path, "not usable")


def foreign_sqlite(path: Path, wal: bool) -> Path:
    db = sqlite3.connect(path)
    try:
        if wal:
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE accounts (name TEXT, balance INTEGER)")
        db.execute("INSERT INTO accounts VALUES ('alice', 100)")
        db.commit()
    finally:
        db.close()
    return path


def test_a_foreign_sqlite_file_in_wal_mode_is_refused_and_left_untouched(tmp_path):
    refused(foreign_sqlite(tmp_path / "accounts.db", wal=True), "not a lumiera session")


def test_a_foreign_sqlite_file_in_rollback_mode_is_refused_and_left_untouched(tmp_path):
    refused(foreign_sqlite(tmp_path / "accounts.db", wal=False), "not a lumiera session")


def test_a_foreign_file_with_lumieras_table_names_is_refused_as_not_a_session(tmp_path):
    path = tmp_path / "lookalike.db"
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        for table in ("meta (key, value)", "journal (a)", "snapshot (a)"):
            db.execute(f"CREATE TABLE {table}")
        db.execute("INSERT INTO meta VALUES ('application', 'spreadsheet')")
        db.commit()
    finally:
        db.close()
    refused(path, "not a lumiera session")


def set_meta(path: Path, key: str, value: str) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
        db.commit()
    finally:
        db.close()


def test_a_session_of_a_newer_layout_is_refused_and_left_untouched(tmp_path):
    path = lumiera_file(tmp_path / "future.lum")
    set_meta(path, "layout", "99")
    refused(path, "newer", "99", f"up to {LAYOUT_VERSION}")


def test_a_session_whose_layout_is_not_a_number_is_refused_and_left_untouched(tmp_path):
    path = lumiera_file(tmp_path / "odd.lum")
    set_meta(path, "layout", "two")
    refused(path)


def test_a_session_with_corrupt_pages_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "damaged.lum"
    with opened(path) as core:
        for n in range(300):
            core.execute("add_track", {"name": f"track {n:04} " + "x" * 100})
    raw = bytearray(path.read_bytes())
    raw[5 * 4096 : 8 * 4096] = random.Random(9).randbytes(3 * 4096)
    path.write_bytes(bytes(raw))
    refused(path)


@pytest.mark.parametrize(
    "column, value", [("command", "explode"), ("args", b"\xc1")], ids=["command", "args"]
)
def test_a_session_with_a_row_that_cannot_be_replayed_is_refused(tmp_path, column, value):
    path = lumiera_file(tmp_path / "tampered.lum")
    db = sqlite3.connect(path)
    try:
        db.execute(f"UPDATE journal SET {column} = ? WHERE seq = 3", (value,))
        db.commit()
    finally:
        db.close()
    refused(path)


def test_a_file_in_a_missing_folder_cannot_be_opened(tmp_path):
    path = tmp_path / "nowhere" / "s.lum"
    with pytest.raises(JournalError, match="cannot open"):
        Journal(path)


# -- files that are accepted --------------------------------------------------------------


def test_a_missing_file_is_created_as_an_empty_session(tmp_path):
    path = tmp_path / "new.lum"
    with opened(path) as core:
        assert core.session.revision == 0 and core.replayed == 0
    db = sqlite3.connect(path)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        db.close()
    assert meta["application"] == "lumiera-session"
    assert meta["layout"] == str(LAYOUT_VERSION)
    assert mode == "wal"


def test_an_empty_file_is_taken_as_a_new_session(tmp_path):
    path = tmp_path / "touched.lum"
    path.touch()
    with opened(path) as core:
        core.execute("add_track", {})
    with opened(path) as core:
        assert len(core.describe()["tracks"]) == 1


def test_a_closed_session_leaves_only_its_file_behind(tmp_path):
    lumiera_file(tmp_path / "s.lum")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.lum"]


# -- write failures -----------------------------------------------------------------------


class FailingDb:
    """An sqlite3 connection whose statements starting with ``failing`` raise ``error``."""

    def __init__(self, db: sqlite3.Connection, failing: str, error: str) -> None:
        self.db, self.failing, self.error = db, failing, error

    def execute(self, sql: str, *params: Any) -> sqlite3.Cursor:
        if sql.lstrip().startswith(self.failing):
            raise sqlite3.OperationalError(self.error)
        return self.db.execute(sql, *params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


@pytest.mark.parametrize("failing", ["BEGIN IMMEDIATE", "INSERT INTO journal", "COMMIT"])
@pytest.mark.parametrize(
    "command, args",
    [("add_track", {"name": "V3"}), ("remove_track", {"id": "t1"}), ("undo", {}), ("redo", {})],
)
def test_a_command_whose_journal_write_fails_is_refused_and_rolled_back(
    tmp_path, monkeypatch, failing, command, args
):
    path = tmp_path / "s.lum"
    with opened(path) as core:
        set_up(core)
        core.execute("undo", {})  # so that there is something to redo
        before, rows, raw = state(core), journal_rows(path), file_bytes(path)
        real = core.journal.db
        monkeypatch.setattr(core.journal, "db", FailingDb(real, failing, "disk I/O error"))
        with pytest.raises(JournalError, match="disk I/O error") as err:
            core.execute(command, args, "k")
        assert str(path) in str(err.value)
        assert state(core) == before  # the model, the undo history and the revision
        monkeypatch.setattr(core.journal, "db", real)
        assert journal_rows(path) == rows and file_bytes(path) == raw
        assert core.journal.find("k") is None
        result = core.execute(command, args, "k")  # the retry is applied, once
        assert result["revision"] == before["describe"]["revision"] + 1
        expected = state(core)
    with opened(path) as core:
        assert state(core) == expected


def test_a_command_answered_with_an_error_was_not_applied_even_when_its_snapshot_fails(
    tmp_path, monkeypatch
):
    path = tmp_path / "s.lum"
    with opened(path, snapshot_every=2) as core:
        core.execute("add_track", {})
        failing = FailingDb(core.journal.db, "INSERT OR REPLACE INTO snapshot", "disk is full")
        monkeypatch.setattr(core.journal, "db", failing)
        try:
            result = core.execute("add_track", {}, "k")
        except JournalError:
            # An error answer must mean: not applied (a retry without the id would add it twice).
            assert core.journal.find("k") is None
            assert len(core.describe()["tracks"]) == 1
        else:
            assert result["revision"] == 2
        monkeypatch.setattr(core.journal, "db", failing.db)


# -- a real full disk -------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root); skipped where it cannot be mounted."""
    with tmpfs(tmp_path / "disk", "1M", mode="0755") as disk:
        yield disk


def fill(path: Path) -> None:
    with contextlib.suppress(OSError), path.open("wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()
    assert os.statvfs(path.parent).f_bavail == 0


def test_on_a_full_disk_a_command_is_refused_and_the_session_and_its_file_stay_as_they_were(
    small_disk,
):
    path = small_disk / "s.lum"
    with opened(path) as core:
        set_up(core)
        before, rows, main = state(core), journal_rows(path), path.read_bytes()
        fill(small_disk / "filler")
        with pytest.raises(JournalError, match="full") as err:
            core.execute("add_track", {"name": "long " * 40_000}, "k")
        assert str(path) in str(err.value)
        assert state(core) == before
        assert journal_rows(path) == rows and path.read_bytes() == main
        (small_disk / "filler").unlink()
        assert core.execute("add_track", {"name": "V3"}, "k")["revision"] == len(SETUP) + 1
        expected = state(core)
    with opened(path) as core:
        assert state(core) == expected


def test_a_group_commit_that_fails_rolls_back_every_command_of_the_group(tmp_path, monkeypatch):
    path = tmp_path / "s.lum"
    with opened(path, snapshot_every=2) as core:
        set_up(core)
        before, rows = state(core), journal_rows(path)
        real = core.journal.db
        monkeypatch.setattr(core.journal, "db", FailingDb(real, "COMMIT", "disk is full"))
        batch: list[tuple[str, dict[str, Any], str | None]] = [
            ("add_track", {"name": "V3"}, "a"),
            ("remove_clip", {"id": "c1"}, None),
            ("undo", {}, None),
            ("undo", {}, None),
            ("redo", {}, "b"),
            ("remove_track", {"id": "nope"}, None),
            ("set_output", {"rate": "24"}, None),
            ("remove_track", {"id": "t1"}, None),
        ]
        outcomes = core.execute_many(batch)
        assert all(isinstance(o, JournalError) for o in outcomes[:5] + outcomes[6:])
        assert not isinstance(outcomes[5], JournalError)  # refused on its own: NotFound
        assert state(core) == before
        monkeypatch.setattr(core.journal, "db", real)
        assert journal_rows(path) == rows
        retried = core.execute_many(batch)
        assert [isinstance(o, dict) for o in retried] == [True] * 5 + [False] + [True] * 2
        expected = state(core)
    with opened(path) as core:
        assert state(core) == expected


def test_a_session_file_that_is_open_in_another_session_is_refused(tmp_path):
    path = tmp_path / "shared.lum"
    first = open_core(path)
    try:
        with pytest.raises(JournalError):
            second = open_core(path)
            try:  # were it not refused: both sessions edit, each from what it has seen
                first.execute("add_track", {"name": "first"})
                second.execute("add_track", {"name": "second"})
            finally:
                second.close()
    finally:
        first.close()
    with opened(path) as core:
        described = core.describe()
        track_ids = [t["id"] for t in described["tracks"]]
        assert len(track_ids) == len(set(track_ids))
        assert described["revision"] == described["journal_rows"]
