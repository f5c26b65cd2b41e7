"""The session file under faults, in a real instance: a full disk, EIO, files it must refuse.

What is already proven without a bus, on a SessionCore (tests/unit/steam/
test_journal_files.py): a write failing at BEGIN, INSERT or COMMIT (a
monkeypatched connection) is refused and rolled back, also for a group
commit; a real full disk (a 1 MiB tmpfs) refuses the command and leaves the
file byte-identical; random bytes, an SQLite header with garbage, a text
file, foreign SQLite files (WAL and rollback mode, lumiera's table names),
a newer or non-numeric layout, corrupt pages and rows that cannot be
replayed are refused and left untouched. ``lumiera up`` with random bytes
or a newer layout exits 1 naming the file (tests/integration/steam/
test_session_e2e.py).

Here, over the bus, in ``lumiera up --headless FILE``:

* a full disk (a small tmpfs, root only; skipped otherwise) and an I/O error
  (``disk I/O error``, sqlite3's message for EIO, injected at the session
  process's SQLite connection: a ``sitecustomize`` on ``PYTHONPATH`` wraps
  the Journal's connection so that its ``COMMIT`` fails while a flag file
  exists; nothing else of the instance is changed): the command is answered
  with the error ``journal`` naming the file, never acknowledged nor
  announced, the session goes on, and after a restart every earlier edit is
  there and the refused one is not;
* a truncated file, a foreign SQLite file and one with corrupt pages:
  ``lumiera up`` exits 1 naming the file, and the file is byte-identical
  afterwards with nothing beside it.
"""

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
from lumiera.testing import Instance, Tap, synced_tap
from tests.support import stop, tmpfs

pytestmark = pytest.mark.integration

EIO_HOOK = '''\
"""Test-only: the session's SQLite COMMIT fails with EIO's message while a flag file exists."""
import os
import sqlite3

FLAG = os.environ.get("LUMIERA_TEST_EIO_FLAG")
if FLAG:
    from lumiera.steam import journal

    class _Eio:
        def __init__(self, db):
            self._db = db

        def execute(self, sql, *params):
            if sql.lstrip().startswith("COMMIT") and os.path.exists(FLAG):
                raise sqlite3.OperationalError("disk I/O error")
            return self._db.execute(sql, *params)

        def __getattr__(self, name):
            return getattr(self._db, name)

    _open = journal.Journal.__init__

    def _init(self, path):
        _open(self, path)
        self.db = _Eio(self.db)

    journal.Journal.__init__ = _init
'''


def edits(inst: Instance, *names: str) -> None:
    for name in names:
        inst.request("session", "add_track", {"name": name, "command_id": name})


def track_names(inst: Instance) -> list[str]:
    return [t["name"] for t in inst.request("session", "describe")["session"]["tracks"]]


def refused_over_the_bus(inst: Instance, tap: Tap, path: Path, args: dict[str, Any]) -> str:
    """The command is answered with ``journal`` naming the file; nothing announced or applied."""
    before = inst.request("session", "describe")["session"]
    with pytest.raises(JournalError) as err:
        inst.request("session", "add_track", args)
    assert str(path) in str(err.value)
    assert inst.request("session", "describe")["session"] == before
    tap.poll(0.3)
    assert not tap.topics("session.changed")
    return str(err.value)


def reopened(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with Instance(["--headless", str(path)], env=env) as again:
        again.wait_running()
        names = track_names(again)
        stop(again)
    return names


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", "1M", mode="0755") as disk:
        yield disk


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()
    return filler


def test_on_a_full_disk_a_command_over_the_bus_is_refused_and_earlier_edits_survive(
    small_disk: Path,
):
    path = small_disk / "s.lum"
    with Instance(["--headless", str(path)]) as inst:
        inst.wait_running()
        edits(inst, "V1", "V2")
        filler = fill(small_disk)
        tap = synced_tap(inst.rd, ["session."])
        try:
            message = refused_over_the_bus(
                inst, tap, path, {"name": "long " * 40_000, "command_id": "big"}
            )
        finally:
            tap.close()
        assert "full" in message
        assert inst.request("session", "ping")["pong"] is True  # the session goes on
        filler.unlink()
        edits(inst, "V3")  # with room again, edits are taken
        stop(inst)
    assert reopened(path) == ["V1", "V2", "V3"]


def test_on_an_io_error_a_command_over_the_bus_is_refused_and_earlier_edits_survive(
    tmp_path: Path,
):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(EIO_HOOK)
    flag = tmp_path / "eio"
    pythonpath = os.pathsep.join(filter(None, [str(hooks), os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": pythonpath, "LUMIERA_TEST_EIO_FLAG": str(flag)}
    path = tmp_path / "s.lum"
    with Instance(["--headless", str(path)], env=env) as inst:
        inst.wait_running()
        edits(inst, "V1", "V2")
        raw = path.read_bytes()
        flag.touch()
        tap = synced_tap(inst.rd, ["session."])
        try:
            message = refused_over_the_bus(inst, tap, path, {"name": "V3", "command_id": "k"})
            assert "disk I/O error" in message
            # A retry with the same id while the error lasts: refused again, not a duplicate.
            refused_over_the_bus(inst, tap, path, {"name": "V3", "command_id": "k"})
        finally:
            tap.close()
        assert path.read_bytes() == raw
        flag.unlink()
        answer = inst.request("session", "add_track", {"name": "V3", "command_id": "k"})
        assert answer["revision"] == 3 and not answer.get("duplicate")
        stop(inst)
    assert reopened(path) == ["V1", "V2", "V3"]


def session_file(path: Path, tracks: int) -> Path:
    with Instance(["--headless", str(path)]) as inst:
        inst.wait_running()
        for n in range(tracks):
            inst.request("session", "add_track", {"name": f"track {n:04} " + "x" * 200})
        stop(inst)
    return path


def truncated(path: Path) -> Path:
    session_file(path, 100)
    raw = path.read_bytes()
    assert len(raw) > 4 * 4096
    path.write_bytes(raw[: len(raw) // 2 + 100])  # cut within a page
    return path


def foreign(path: Path) -> Path:
    db = sqlite3.connect(path)
    try:
        db.execute("CREATE TABLE photos (name TEXT, taken REAL)")
        db.execute("INSERT INTO photos VALUES ('beach.jpg', 1.5)")
        db.commit()
    finally:
        db.close()
    return path


def corrupt(path: Path) -> Path:
    session_file(path, 100)
    raw = bytearray(path.read_bytes())
    raw[2 * 4096 : 4 * 4096] = random.Random(16).randbytes(2 * 4096)
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize(
    "make, reason",
    [(truncated, ""), (foreign, "not a lumiera session"), (corrupt, "")],
    ids=["truncated", "foreign sqlite", "corrupt pages"],
)
def test_up_with_a_truncated_foreign_or_corrupt_session_file_exits_1_and_leaves_it(
    tmp_path: Path, make: Any, reason: str
):
    path = make(tmp_path / "precious.lum")
    before = path.read_bytes()
    with Instance(["--headless", str(path)]) as inst:
        assert inst.wait(timeout=30) == 1
        out = inst.output()
    assert str(path) in out and reason in out, out
    assert "session failed to start" in out
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.lum"]
