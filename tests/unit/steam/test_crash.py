"""SIGKILL at random moments: every acknowledged command survives, none is applied twice.

A child process opens a SessionCore on one file and executes commands with
ids in a loop, printing ``ack ID REVISION`` (flushed) after each ``execute``
returned; before each it prints ``try`` with the command, so the parent knows
what was in flight. The parent SIGKILLs it after a random short delay, reads
what it printed, and opens the file itself: every acknowledged id is in the
journal, once, at the revision it was acknowledged with. The next round's
child first retries the commands that were in flight, with their ids, as a
client would: each is then in the journal exactly once.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgpack

from .kit import content, opened

ROUNDS = 24

CHILD = r"""
import itertools, json, sys
from pathlib import Path
from lumiera.errors import LumieraError
from lumiera.steam.core import SessionCore

def probe(path):
    return {"frames": 10, "rate": "25", "width": 64, "height": 48, "pix_fmt": "yuv420p",
            "size": 1, "mtime_ns": 1}

path, tag, retries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
core = SessionCore(Path(path), probe=probe, snapshot_every=3)
print("ready", core.session.revision, flush=True)

def fresh():
    for i in itertools.count():
        cid = f"{tag}-{i}"
        kind = i % 6
        if kind == 4:
            yield cid, "undo", {}
        elif kind == 5:
            yield cid, "redo", {}
        elif kind == 3:
            yield cid, "set_output", {"width": 16 + 2 * (i % 50)}
        else:
            yield cid, "add_track", {"name": cid}

for cid, command, args in itertools.chain(map(tuple, retries), fresh()):
    print("try", json.dumps([cid, command, args]), flush=True)
    try:
        result = core.execute(command, args, cid)
    except LumieraError as e:
        print("refused", cid, type(e).__name__, flush=True)
        continue
    print("ack", cid, result["revision"], int(bool(result.get("duplicate"))), flush=True)
"""


def parse(out: str) -> tuple[dict[str, tuple[int, bool]], list[list[Any]], bool]:
    """What a killed child printed: acks (id -> revision, duplicate), tries, and if it was ready."""
    acks: dict[str, tuple[int, bool]] = {}
    tries: list[list[Any]] = []
    ready = False
    for line in out.split("\n")[:-1]:  # the last piece may be cut off by the kill
        word, _, rest = line.partition(" ")
        if word == "ready":
            ready = True
        elif word == "try":
            tries.append(json.loads(rest))
        elif word == "ack":
            cid, revision, duplicate = rest.split()
            acks[cid] = (int(revision), duplicate == "1")
    return acks, tries, ready


def rows_of(path: Path) -> dict[str, tuple[int, int]]:
    """id -> (seq, revision) of every journal row, read with plain sqlite3.

    None yet when the first child was killed before it made the file or its
    journal (on a loaded machine, its imports alone may outlast the kill).
    """
    if not path.exists():
        return {}
    db = sqlite3.connect(path)
    try:
        found: dict[str, tuple[int, int]] = {}
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        if "journal" not in tables:
            return found
        for seq, cid, result in db.execute("SELECT seq, id, result FROM journal ORDER BY seq"):
            assert cid not in found
            found[cid] = (int(seq), int(msgpack.unpackb(result)["revision"]))
        return found
    finally:
        db.close()


def test_every_acknowledged_command_survives_a_sigkill_and_none_is_applied_twice(tmp_path):
    path = tmp_path / "crash.lum"
    rng = random.Random(20240607)
    acked: dict[str, int] = {}  # id -> the revision it was acknowledged with
    retries: list[list[Any]] = []
    rounds_with_acks = 0
    started = time.monotonic()
    for round_no in range(ROUNDS):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), f"r{round_no}", json.dumps(retries)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(rng.uniform(0.05, 0.35))
            child.send_signal(signal.SIGKILL)
            out, err = child.communicate(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == -signal.SIGKILL, err
        acks, tries, _ready = parse(out)
        rounds_with_acks += bool(acks)
        for cid, (revision, duplicate) in acks.items():
            if cid in acked:  # acknowledged before, retried now: the first answer again
                assert duplicate and revision == acked[cid], cid
            acked.setdefault(cid, revision)

        journal = rows_of(path)
        for cid, revision in acked.items():
            assert cid in journal, f"round {round_no}: acknowledged {cid} is lost"
            assert journal[cid][1] == revision, cid
        assert [rev for _, rev in journal.values()] == list(range(1, len(journal) + 1))
        assert [seq for seq, _ in journal.values()] == list(range(1, len(journal) + 1))
        # What was sent but not acknowledged is retried next round, as a client would.
        retries = [t for t in tries if t[0] not in acked][-3:]

        with opened(path) as core:  # the replayed state is consistent with the rows
            assert core.seq == len(journal) == core.session.revision
            names = [t["name"] for t in core.describe()["tracks"]]
            assert len(names) == len(set(names)), "a command was applied twice"
            assert set(names) <= set(journal)
    assert rounds_with_acks >= ROUNDS // 2
    assert len(acked) > ROUNDS
    assert time.monotonic() - started < 30

    # The last in-flight commands, retried once more, are then in the journal exactly once.
    with opened(path, snapshot_every=3) as core:
        for cid, command, args in retries:
            core.execute(command, args, cid)
            assert core.journal.find(cid) is not None
        final = content(core), core.history()
    with opened(path) as core:
        assert (content(core), core.history()) == final
    bare = tmp_path / "bare.lum"
    shutil.copyfile(path, bare)
    db = sqlite3.connect(bare)
    try:
        db.execute("DELETE FROM snapshot")
        db.commit()
    finally:
        db.close()
    with opened(bare) as core:  # the snapshots written between kills agree with the rows
        assert (content(core), core.history()) == final


CREATION_KILLED = r"""
import os, signal, sys
from pathlib import Path
from lumiera.steam import journal

def killed(self):  # the moment after the pragmas, before the schema's transaction
    os.kill(os.getpid(), signal.SIGKILL)

journal.Journal._create = killed
journal.Journal(Path(sys.argv[1]))
"""


def test_a_session_killed_while_its_file_was_being_created_opens_as_a_new_session(tmp_path):
    path = tmp_path / "new.lum"
    done = subprocess.run(
        [sys.executable, "-c", CREATION_KILLED, str(path)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL
    with opened(path) as core:
        assert core.session.revision == 0
        core.execute("add_track", {})
