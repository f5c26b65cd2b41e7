"""SessionCore: every command with its undo and redo, across restarts; refusals change nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from lumiera.errors import (
    BadArguments,
    Conflict,
    LumieraError,
    MediaError,
    NotFound,
    NothingToUndo,
    UnknownCommand,
)

from .kit import (
    MEDIA_10,
    MISSING,
    SETUP,
    content,
    file_bytes,
    journal_rows,
    opened,
    set_up,
    state,
)

# One of each command, on the set-up session (see kit.set_up).
COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("add_media", {"path": MEDIA_10, "id": "again"}),
    ("add_track", {"name": "V0", "index": 0}),
    ("add_track", {}),
    ("remove_track", {"id": "t1"}),  # with its two clips
    ("remove_track", {"id": "t2"}),  # an empty one
    ("add_clip", {"media": "m2", "track": "t2", "position": 3, "opacity": 0.25}),
    ("move_clip", {"id": "c1", "position": 40, "track": "t2"}),
    ("trim_clip", {"id": "c2", "source_in": 0, "source_out": 1}),
    ("trim_clip", {"id": "c2", "source_in": 8, "position": 23}),  # the left edge: one command
    ("set_opacity", {"id": "c2", "opacity": 0.4}),
    ("remove_clip", {"id": "c1"}),
    ("set_output", {"width": 640, "height": 360, "rate": "30000/1001"}),
]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "edit.lum"


def ids(cases: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [f"{c}{sorted(a.items())}" for c, a in cases]


@pytest.mark.parametrize("snapshot_every", [1, 1000])
@pytest.mark.parametrize("command, args", COMMANDS, ids=ids(COMMANDS))
def test_every_command_is_undone_and_redone_exactly_and_the_undo_survives_a_restart(
    path, command, args, snapshot_every
):
    with opened(path, snapshot_every) as core:
        set_up(core)
        before = content(core)
        result = core.execute(command, args)
        assert (result["command"], result["revision"]) == (command, len(SETUP) + 1)
        after = content(core)
        assert after != before
        core.execute("undo", {})
        assert content(core) == before
        core.execute("redo", {})
        assert content(core) == after
        assert core.session.revision == len(SETUP) + 3
    with opened(path, snapshot_every) as core:  # restarted: the undo history is still there
        assert content(core) == after
        assert core.history()["done"][-1] == {"command": command, "args": result["applied"]}
        core.execute("undo", {})
        assert content(core) == before
    with opened(path, snapshot_every) as core:  # and the redo history too
        assert content(core) == before
        core.execute("redo", {})
        assert content(core) == after
        for _ in range(len(SETUP) + 1):  # all the way back to the empty session
            core.execute("undo", {})
        assert content(core) == content_of_empty(path.with_name("empty.lum"))
        with pytest.raises(NothingToUndo):
            core.execute("undo", {})


def content_of_empty(path: Path) -> dict[str, Any]:
    with opened(path) as core:
        return content(core)


def test_an_answer_says_what_was_applied_with_ids_and_defaults_resolved(path):
    with opened(path) as core:
        set_up(core)
        result = core.execute("add_clip", {"media": "m1", "track": "t2", "position": 7}, "k-1")
        assert result == {
            "id": "k-1",
            "command": "add_clip",
            "revision": len(SETUP) + 1,
            "applied": {
                "id": "c3",
                "media": "m1",
                "track": "t2",
                "position": 7,
                "source_in": 0,
                "source_out": 10,
                "opacity": 1.0,
                "gain_db": 0.0,
            },
        }
        generated = core.execute("add_track", {})["id"]
        assert len(generated) == 32 and core.journal.find(generated) is not None


def test_a_left_edge_trim_is_one_undo_step(path):
    with opened(path) as core:
        set_up(core)
        before = content(core)
        core.execute("trim_clip", {"id": "c2", "source_in": 9, "position": 24})
        after = content(core)
        c2 = next(c for c in after["clips"] if c["id"] == "c2")
        assert (c2["position"], c2["source_in"], c2["source_out"]) == (24, 9, 20)
        core.execute("undo", {})
        assert content(core) == before
        core.execute("redo", {})
        assert content(core) == after


@pytest.mark.parametrize("snapshot_every", [1, 1000])
def test_a_trim_row_journaled_before_trims_had_a_position_still_replays(path, snapshot_every):
    """Such a row's resolved args have no position: it keeps the clip's, also on undo/redo."""
    with opened(path, snapshot_every) as core:
        set_up(core)
        core.execute("move_clip", {"id": "c2", "position": 30})
        before = content(core)
        revision = core.session.revision + 1
        old_row = {"id": "c2", "source_in": 0, "source_out": 20}  # as trim_clip resolved it then
        result = {"id": "old-1", "command": "trim_clip", "revision": revision, "applied": old_row}
        core.journal.append([("old-1", "trim_clip", old_row, result)])
    with opened(path, snapshot_every) as core:  # replays the old row
        c2 = next(c for c in content(core)["clips"] if c["id"] == "c2")
        assert (c2["position"], c2["source_in"], c2["source_out"]) == (30, 0, 20)
        after = content(core)
        assert core.history()["done"][-1] == {"command": "trim_clip", "args": old_row}
        core.execute("undo", {})
        assert content(core) == before
        core.execute("redo", {})
        assert content(core) == after
    with opened(path, snapshot_every) as core:
        assert content(core) == after


def test_an_acknowledged_command_is_already_in_the_file_for_any_other_reader(path):
    with opened(path) as core:
        for n in range(1, 4):
            core.execute("add_track", {"name": f"V{n}"}, f"k{n}")
            assert journal_rows(path) == n  # committed before execute returned
        assert core.describe()["journal_rows"] == 3
        assert core.describe()["file"] == str(path)


def test_the_history_lists_done_oldest_first_and_undone_next_redo_first(path):
    with opened(path) as core:
        for name in ("A", "B", "C"):
            core.execute("add_track", {"name": name})
        core.execute("undo", {})
        core.execute("undo", {})
        history = core.history()
        assert [h["args"]["name"] for h in history["done"]] == ["A"]
        assert [h["args"]["name"] for h in history["undone"]] == ["B", "C"]
        assert history["revision"] == 5
        core.execute("redo", {})
        assert [t["name"] for t in core.describe()["tracks"]] == ["A", "B"]


def test_a_new_command_after_an_undo_drops_the_redo_history_also_after_a_restart(path):
    with opened(path) as core:
        core.execute("add_track", {"name": "A"})
        core.execute("add_track", {"name": "B"})
        core.execute("undo", {})
        core.execute("set_output", {"rate": "24"})
        assert core.history()["undone"] == []
        with pytest.raises(NothingToUndo, match="redo"):
            core.execute("redo", {})
    with opened(path) as core:
        assert core.history()["undone"] == []
        with pytest.raises(NothingToUndo):
            core.execute("redo", {})
        assert [t["name"] for t in core.describe()["tracks"]] == ["A"]


def test_the_undo_history_keeps_only_its_depth_also_after_a_restart(path):
    with opened(path, undo_depth=2) as core:
        for name in ("A", "B", "C", "D"):
            core.execute("add_track", {"name": name})
        core.execute("undo", {})
        expected = state(core)
    with opened(path, undo_depth=2) as core:
        assert state(core) == expected
        core.execute("undo", {})
        with pytest.raises(NothingToUndo):
            core.execute("undo", {})
        assert [t["name"] for t in core.describe()["tracks"]] == ["A", "B"]


@pytest.mark.parametrize("command", ["undo", "redo"])
def test_undo_and_redo_take_no_arguments(path, command):
    with opened(path) as core:
        core.execute("add_track", {})
        core.execute("undo", {})
        before = state(core)
        with pytest.raises(BadArguments):
            core.execute(command, {"steps": 2})
        assert state(core) == before


def test_undo_and_redo_of_an_empty_history_are_refused(path):
    with opened(path) as core:
        with pytest.raises(NothingToUndo, match="undo"):
            core.execute("undo", {})
        with pytest.raises(NothingToUndo, match="redo"):
            core.execute("redo", {})
        assert core.session.revision == 0 and journal_rows(path) == 0


def test_the_command_list_has_the_edits_and_undo_and_redo(path):
    with opened(path) as core:
        assert core.commands == [
            "add_clip",
            "add_media",
            "add_track",
            "add_transition",
            "move_clip",
            "redo",
            "remove_clip",
            "remove_track",
            "remove_transition",
            "set_gain",
            "set_opacity",
            "set_output",
            "trim_clip",
            "undo",
        ]


# -- refusals -------------------------------------------------------------------------

REFUSED: list[tuple[str, dict[str, Any], type[LumieraError]]] = [
    ("add_media", {"path": MISSING}, MediaError),
    ("add_media", {"path": MEDIA_10, "id": "m1"}, Conflict),
    ("add_track", {"id": "t2"}, Conflict),
    ("add_track", {"index": 9}, BadArguments),
    ("add_track", {"nme": "typo"}, BadArguments),
    ("remove_track", {"id": "nope"}, NotFound),
    ("add_clip", {"media": "m1", "track": "t1", "position": 12}, Conflict),
    ("add_clip", {"media": "m1", "track": "nope", "position": 0}, NotFound),
    ("add_clip", {"media": "m1", "track": "t2", "position": 0, "source_out": 99}, BadArguments),
    ("add_clip", {"track": "t2", "position": 0}, BadArguments),
    ("move_clip", {"id": "c2", "position": 5}, Conflict),
    ("move_clip", {"id": "nope", "position": 5}, NotFound),
    ("trim_clip", {"id": "c1", "source_in": 10}, BadArguments),
    ("trim_clip", {"id": "c2", "source_in": 0, "position": 3}, Conflict),
    ("trim_clip", {"id": "c2", "source_in": 0, "position": -1}, BadArguments),
    ("set_opacity", {"id": "nope", "opacity": 0.5}, NotFound),
    ("set_opacity", {"id": "c1", "opacity": 2.0}, BadArguments),
    ("set_opacity", {"id": "c1", "opacity": -0.01}, BadArguments),
    ("remove_clip", {"id": "nope"}, NotFound),
    ("set_output", {"width": 17}, BadArguments),
    ("set_output", {"rate": "29.97"}, BadArguments),
    ("redo", {}, NothingToUndo),
    ("undo", {"all": True}, BadArguments),
    ("split_clip", {"id": "c1", "at": 5}, UnknownCommand),
]


@pytest.mark.parametrize("command, args, error", REFUSED, ids=ids([r[:2] for r in REFUSED]))
def test_a_refused_command_leaves_the_session_and_its_file_byte_for_byte_unchanged(
    path, command, args, error
):
    with opened(path, snapshot_every=4) as core:
        set_up(core)
        before, rows, raw = state(core), journal_rows(path), file_bytes(path)
        with pytest.raises(error):
            core.execute(command, args, "retry-me")
        assert state(core) == before
        assert journal_rows(path) == rows
        assert file_bytes(path) == raw
        assert core.journal.find("retry-me") is None  # the id was not used up
    with opened(path, snapshot_every=4) as core:
        assert state(core) == before


def test_a_refused_command_id_can_be_used_for_the_corrected_command(path):
    with opened(path) as core:
        set_up(core)
        with pytest.raises(Conflict):
            core.execute("add_track", {"id": "t1"}, "k")
        result = core.execute("add_track", {"id": "t3"}, "k")
        assert "duplicate" not in result and result["applied"]["id"] == "t3"


def test_a_frame_rate_with_a_zero_denominator_is_refused_as_bad_arguments(path):
    with opened(path) as core:
        with pytest.raises(BadArguments):
            core.execute("set_output", {"rate": "1/0"})
        assert core.session.revision == 0


def test_a_command_whose_arguments_cannot_be_journaled_is_refused_and_the_next_one_works(path):
    with opened(path) as core:
        set_up(core)
        before = state(core)
        try:
            core.execute("add_clip", {"media": "m1", "track": "t2", "position": 2**70})
        except LumieraError:
            pass
        finally:
            assert state(core) == before
        assert core.execute("add_track", {})["revision"] == len(SETUP) + 1


# -- retries --------------------------------------------------------------------------


def test_a_retried_command_id_gets_the_first_answer_and_changes_nothing(path):
    with opened(path) as core:
        set_up(core)
        first = core.execute("add_track", {"name": "V3"}, "retry-1")
        after, rows, raw = state(core), journal_rows(path), file_bytes(path)
        again = core.execute("add_track", {"name": "V3"}, "retry-1")
        assert again == {**first, "duplicate": True}
        assert state(core) == after and journal_rows(path) == rows and file_bytes(path) == raw
        # the id is the command's: whatever else is sent under it, the first answer stands
        assert core.execute("remove_track", {"id": "t1"}, "retry-1") == again
        assert state(core) == after
    with opened(path) as core:  # and after a restart
        assert core.execute("add_track", {"name": "V3"}, "retry-1") == again
        assert state(core) == after


def test_undo_and_redo_with_a_command_id_are_applied_once(path):
    with opened(path) as core:
        core.execute("add_track", {}, "a")
        core.execute("add_track", {}, "b")
        core.execute("undo", {}, "u")
        assert core.execute("undo", {}, "u")["duplicate"] is True
        assert len(core.describe()["tracks"]) == 1
        core.execute("redo", {}, "r")
        core.execute("redo", {}, "r")  # would be NothingToUndo if it ran again
        assert len(core.describe()["tracks"]) == 2
        assert core.session.revision == 4


# -- snapshots ------------------------------------------------------------------------


def test_opening_replays_only_the_rows_after_the_latest_snapshot(path):
    with opened(path, snapshot_every=3) as core:
        set_up(core)  # 6 rows: snapshots after 3 and 6
        core.execute("add_track", {})
        expected = state(core)
    db = sqlite3.connect(path)
    try:
        assert [r[0] for r in db.execute("SELECT seq FROM snapshot ORDER BY seq")] == [3, 6]
    finally:
        db.close()
    with opened(path, snapshot_every=3) as core:
        assert core.replayed == 1
        assert state(core) == expected
    with opened(path, snapshot_every=1000) as core:  # another cadence reads the same file
        assert core.replayed == 1
        assert state(core) == expected


def test_only_the_last_two_snapshots_are_kept(path):
    with opened(path, snapshot_every=1) as core:
        set_up(core)
    db = sqlite3.connect(path)
    try:
        assert [r[0] for r in db.execute("SELECT seq FROM snapshot ORDER BY seq")] == [5, 6]
    finally:
        db.close()


def test_a_session_without_snapshots_replays_every_row_to_the_same_state(path):
    with opened(path, snapshot_every=2) as core:
        set_up(core)
        core.execute("undo", {})
        core.execute("undo", {})
        core.execute("redo", {})
        expected = state(core)
    db = sqlite3.connect(path)
    try:
        db.execute("DELETE FROM snapshot")
        db.commit()
    finally:
        db.close()
    with opened(path) as core:
        assert core.replayed == len(SETUP) + 3
        assert state(core) == expected
