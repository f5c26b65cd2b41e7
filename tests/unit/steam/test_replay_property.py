"""Replay equals the live state: random command sequences, valid or not, then a reopen.

Two sessions get the same random commands: the live one in batches of one to
three (``execute_many``, the group commit), its twin one at a time
(``execute``). Each of the twin's outcomes is checked against a model of the
undo history: a refused or retried command changes nothing, an applied one
adds one revision and one journal row, an undo gives back exactly the content
before the command it undoes, a redo the content after it. After every batch
both sessions must agree. At the end the live file is reopened, once with its
snapshots and once without them, and both must describe the same session
with the same history.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lumiera.errors import LumieraError
from lumiera.steam.core import SessionCore

from .kit import MEDIA_10, MEDIA_20, MISSING, content, opened, state

TRACKS = st.sampled_from(["t1", "t2", "t3", "nope"])
CLIPS = st.sampled_from(["c1", "c1", "c2", "c3", "nope"])
MEDIA = st.sampled_from(["m1", "m2", "nope"])
FRAMES = st.integers(-1, 45)
SOURCE_IN = st.integers(0, 8) | st.sampled_from([-1, 20])
SOURCE_OUT = st.integers(1, 10) | st.sampled_from([0, 21])
# Mostly none; a few ids from a small pool, so that some are retries.
COMMAND_IDS = st.one_of(st.none(), st.none(), st.none(), st.sampled_from(["k1", "k2", "k3"]))


def command(name: str, required: dict[str, Any], optional: dict[str, Any]) -> Any:
    return st.tuples(st.just(name), st.fixed_dictionaries(required, optional=optional))


COMMANDS = st.one_of(
    command(
        "add_media",
        {"path": st.sampled_from([MEDIA_10, MEDIA_20, MISSING])},
        {"id": st.sampled_from(["m1", "m2", "m3", ""])},
    ),
    command(
        "add_track",
        {},
        {
            "name": st.text("ab", max_size=2),
            "id": st.sampled_from(["t1", "t2", "t3"]),
            "index": st.integers(-1, 4),
        },
    ),
    command("remove_track", {"id": TRACKS}, {}),
    command(
        "add_clip",
        {"media": MEDIA, "track": TRACKS, "position": FRAMES},
        {
            "source_in": SOURCE_IN,
            "source_out": SOURCE_OUT,
            "opacity": st.sampled_from([0.0, 0.5, 1.0, 1.5]),
            "id": st.sampled_from(["c1", "c2", "c3"]),
        },
    ),
    command("move_clip", {"id": CLIPS}, {"position": FRAMES, "track": TRACKS}),
    command(
        "trim_clip",
        {"id": CLIPS},
        {"source_in": SOURCE_IN, "source_out": SOURCE_OUT, "position": FRAMES},
    ),
    command("set_opacity", {"id": CLIPS}, {"opacity": st.sampled_from([0.0, 0.3, 1.0, 1.5, -0.1])}),
    command("remove_clip", {"id": CLIPS}, {}),
    command(
        "set_output",
        {},
        {
            "width": st.sampled_from([8, 64, 65, 1920]),
            "height": st.sampled_from([48, 1080, 16386]),
            "rate": st.sampled_from(["25", "24", "30000/1001", "0", "29.97", "x"]),
        },
    ),
    command("undo", {}, {}),
    command("undo", {}, {}),
    command("redo", {}, {}),
    command("redo", {}, {"steps": st.just(1)}),
    command("render", {}, {}),
)
ITEMS = st.tuples(COMMANDS, COMMAND_IDS).map(lambda t: (t[0][0], t[0][1], t[1]))
BATCHES = st.lists(st.lists(ITEMS, min_size=1, max_size=3), min_size=3, max_size=30)

# A start that makes most random commands valid: media m1 (10 frames), m2 (20), tracks t1, t2.
START: list[tuple[str, dict[str, Any]]] = [
    ("add_media", {"path": MEDIA_10}),
    ("add_media", {"path": MEDIA_20}),
    ("add_track", {}),
    ("add_track", {}),
    ("add_clip", {"media": "m1", "track": "t1", "position": 0}),
]


class Model:
    """The undo history as contents: what an undo and a redo must give back."""

    def __init__(self, undo_depth: int) -> None:
        self.depth = undo_depth
        self.done: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (before, after)
        self.undone: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def step(self, core: SessionCore, name: str, args: dict[str, Any], cid: str | None) -> Any:
        """Run one command on ``core`` and check what it did; returns its outcome."""
        before, seen = content(core), state(core)
        try:
            outcome: Any = core.execute(name, args, cid)
        except LumieraError as e:
            assert state(core) == seen, f"refused {name} changed the session"
            return e
        if outcome.get("duplicate"):
            assert state(core) == seen
            return outcome
        assert outcome["revision"] == seen["describe"]["revision"] + 1
        assert core.seq == seen["describe"]["journal_rows"] + 1
        after = content(core)
        if name == "undo":
            undone = self.done.pop()
            assert (before, after) == (undone[1], undone[0])
            self.undone.append(undone)
        elif name == "redo":
            redone = self.undone.pop()
            assert (before, after) == redone
            self.done.append(redone)
        else:
            self.done = [*self.done, (before, after)][-self.depth :]
            self.undone = []
        return outcome


def same(batched: Any, single: Any, reused: bool) -> bool:
    """A batch's outcome and the same command's outcome when run alone agree."""
    if isinstance(single, LumieraError):
        return type(batched) is type(single) and str(batched) == str(single)
    if reused:  # an id used earlier in the same batch: the first answer, as a retry alone gets
        return isinstance(batched, dict) and bool(batched.get("duplicate")) and batched == single
    if isinstance(batched, LumieraError):
        return False
    if batched.get("id") != single.get("id"):  # generated ids differ
        batched, single = {**batched, "id": None}, {**single, "id": None}
    return bool(batched == single)


def play(path: Path, snapshot_every: int, undo_depth: int, batches: Any) -> dict[str, Any]:
    """Play the batches on a session at ``path`` and on its twin; returns the live state."""
    model = Model(undo_depth)
    with (
        opened(path, snapshot_every, undo_depth) as live,
        opened(path.with_name("twin.lum"), snapshot_every, undo_depth) as twin,
    ):
        for name, args in START:
            live.execute(name, args)
            model.step(twin, name, args, None)
        for batch in batches:
            outcomes = live.execute_many(batch)
            assert len(outcomes) == len(batch)
            used: set[str] = set()
            for (name, args, cid), outcome in zip(batch, outcomes, strict=True):
                alone = model.step(twin, name, args, cid)
                reused = cid in used
                assert same(outcome, alone, reused), (name, args, cid, outcome, alone)
                if cid is not None and isinstance(alone, dict) and not alone.get("duplicate"):
                    used.add(cid)
            assert content(live) == content(twin)
            assert live.history() == twin.history()
            assert live.seq == twin.seq and live.session.revision == twin.session.revision
        return state(live)


def without_snapshots(path: Path) -> Path:
    bare = path.with_name("bare.lum")
    shutil.copyfile(path, bare)
    db = sqlite3.connect(bare)
    try:
        db.execute("DELETE FROM snapshot")
        db.commit()
    finally:
        db.close()
    return bare


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    batches=BATCHES,
    snapshot_every=st.sampled_from([1, 2, 3, 1000]),
    undo_depth=st.sampled_from([2, 1000]),
)
def test_random_command_batches_replay_to_the_live_state_with_and_without_snapshots(
    batches, snapshot_every, undo_depth
):
    d = Path(tempfile.mkdtemp(prefix="lum-replay-"))
    try:
        path = d / "s.lum"
        live = play(path, snapshot_every, undo_depth, batches)
        with opened(path, snapshot_every, undo_depth) as core:
            assert state(core) == live
        with opened(without_snapshots(path), snapshot_every, undo_depth) as core:
            assert core.replayed == live["describe"]["journal_rows"]
            assert {**core.describe(), "file": str(path)} == live["describe"]
            assert core.history() == live["history"]
    finally:
        shutil.rmtree(d, ignore_errors=True)
