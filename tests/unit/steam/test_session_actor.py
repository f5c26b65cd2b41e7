"""The session actor without a bus: command ids, session.changed, describe, history, batches."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lumiera.actors import ActorContext
from lumiera.bus.events import EventBody, kind_of
from lumiera.config import load
from lumiera.errors import (
    BadArguments,
    Conflict,
    JournalError,
    LumieraError,
    NotFound,
    Unavailable,
)
from lumiera.steam import session as session_module
from lumiera.steam.session import SessionActor

from .kit import make_video

Events = list[tuple[str, dict[str, Any]]]


def actor_on(session: Path | None, events: Events, defs: tuple[str, ...] = ()) -> SessionActor:
    options = {} if session is None else {"session": str(session)}
    ctx = ActorContext(name="session", instance="t1", config=load(None, defs), options=options)

    def publish(topic: str, body: EventBody) -> None:
        assert isinstance(body, kind_of(topic))  # the topic's declared kind
        events.append((topic, body.to_wire()))

    ctx.publish = publish
    return SessionActor(ctx)


@pytest.fixture
def events() -> Events:
    return []


@pytest.fixture
def actor(tmp_path: Path, events: Events) -> Iterator[SessionActor]:
    a = actor_on(tmp_path / "s.lum", events)
    a.on_start()
    try:
        yield a
    finally:
        a.on_stop()


def test_an_edit_is_answered_and_announced_with_its_id_and_revision(actor, events):
    result = actor.handle("add_track", {"name": "V1", "command_id": "cli-1"})
    assert result["id"] == "cli-1" and result["revision"] == 1
    assert result["applied"] == {"id": "t1", "name": "V1", "index": 0, "kind": "video"}
    announced = {"command": "add_track", "id": "cli-1", "revision": 1}
    # its arguments as sent (command_id apart) and as applied: enough to replay it
    announced |= {"args": {"name": "V1"}, "applied": result["applied"]}
    assert events == [("session.changed", announced)]


def test_arguments_too_large_to_announce_are_left_out_of_session_changed(
    tmp_path, events, monkeypatch
):
    monkeypatch.setattr(session_module, "MAX_ANNOUNCED_ARGS_BYTES", 16)
    a = actor_on(tmp_path / "s.lum", events)
    a.on_start()
    try:
        a.handle("add_track", {"name": "a name longer than that", "command_id": "c"})
    finally:
        a.on_stop()
    assert events == [("session.changed", {"command": "add_track", "id": "c", "revision": 1})]


def test_arguments_larger_than_the_bus_takes_are_left_out_so_the_event_still_travels(
    tmp_path, events
):
    frame = session_module.EVENT_ROOM_BYTES + 64  # a bus configured for small frames
    a = actor_on(tmp_path / "s.lum", events, (f"bus.max_message_bytes={frame}",))
    a.on_start()
    try:
        a.handle("add_track", {"name": "short", "command_id": "c1"})
        a.handle("add_track", {"name": "n" * 200, "command_id": "c2"})
    finally:
        a.on_stop()
    assert events[0][1]["args"] == {"name": "short"}
    assert events[1] == ("session.changed", {"command": "add_track", "id": "c2", "revision": 2})


def test_a_retry_with_the_same_command_id_is_answered_again_but_not_announced(actor, events):
    first = actor.handle("add_track", {"name": "V1", "command_id": "cli-1"})
    again = actor.handle("add_track", {"name": "V1", "command_id": "cli-1"})
    assert again == {**first, "duplicate": True}
    assert len(events) == 1
    assert len(actor.handle("describe", {})["session"]["tracks"]) == 1


def test_an_edit_without_a_command_id_gets_a_generated_one(actor, events):
    result = actor.handle("add_track", {})
    assert len(result["id"]) == 32 and events[0][1]["id"] == result["id"]


@pytest.mark.parametrize("command_id", ["", "x" * 129, 7, 1.5, ["k"]])
def test_a_bad_command_id_is_refused_and_nothing_happens(actor, events, command_id):
    with pytest.raises(BadArguments, match="command_id"):
        actor.handle("add_track", {"command_id": command_id})
    assert events == []
    assert actor.handle("describe", {})["session"]["revision"] == 0


def test_a_command_id_of_128_characters_is_taken(actor):
    assert actor.handle("add_track", {"command_id": "x" * 128})["id"] == "x" * 128


def test_a_refused_edit_is_its_typed_error_and_is_not_announced(actor, events):
    for command, args, error in [
        ("remove_track", {"id": "t9"}, NotFound),
        ("add_track", {"index": 5}, BadArguments),
        ("add_media", {"path": "/nonexistent/clip.mp4"}, LumieraError),
    ]:
        with pytest.raises(error):
            actor.handle(command, args)
    assert events == []


def test_describe_gives_the_subsystem_and_the_whole_session(actor, tmp_path):
    actor.handle("add_track", {"name": "V1"})
    described = actor.handle("describe", {})
    assert described["name"] == "session" and described["durable"] is True
    assert {"add_clip", "undo", "redo", "history", "ping"} <= set(described["commands"])
    session = described["session"]
    assert session["file"] == str(tmp_path / "s.lum")
    assert session["tracks"] == [{"id": "t1", "name": "V1", "kind": "video"}]
    assert (session["revision"], session["journal_rows"]) == (1, 1)


def test_history_is_a_command_and_undo_and_redo_are_edits(actor, events):
    actor.handle("add_track", {"name": "A"})
    actor.handle("add_track", {"name": "B"})
    actor.handle("undo", {"command_id": "u1"})
    history = actor.handle("history", {})
    assert [h["args"]["name"] for h in history["done"]] == ["A"]
    assert [h["args"]["name"] for h in history["undone"]] == ["B"]
    undo = {"command": "undo", "id": "u1", "revision": 3, "args": {}, "applied": {}}
    assert events[-1] == ("session.changed", undo)
    actor.handle("redo", {})
    assert actor.handle("history", {})["undone"] == []


def test_real_media_is_added_through_the_actor_with_the_real_probe(actor, tmp_path):
    video = make_video(tmp_path / "four.mp4", frames=4)
    result = actor.handle("add_media", {"path": str(video), "command_id": "m"})
    assert result["applied"]["frames"] == 4
    actor.handle("add_track", {})
    clip = actor.handle("add_clip", {"media": "m1", "track": "t1", "position": 0})
    assert clip["applied"]["source_out"] == 4


def test_without_a_session_file_the_session_lives_in_memory(events):
    a = actor_on(None, events)
    a.on_start()
    try:
        a.handle("add_track", {})
        described = a.handle("describe", {})
        assert described["durable"] is False
        assert described["session"]["tracks"] == [{"id": "t1", "name": "t1", "kind": "video"}]
    finally:
        a.on_stop()


def test_before_the_start_and_after_the_stop_there_is_no_session(tmp_path, events):
    a = actor_on(tmp_path / "s.lum", events)
    assert a.handle("describe", {})["session"] is None
    with pytest.raises(Unavailable):
        a.handle("history", {})
    a.on_start()
    a.handle("add_track", {})
    a.on_stop()
    assert a.handle("describe", {})["session"] is None
    again = actor_on(tmp_path / "s.lum", events)
    again.on_start()
    try:
        assert again.handle("describe", {})["session"]["revision"] == 1
    finally:
        again.on_stop()


def test_a_refused_session_file_fails_the_start(tmp_path, events):
    bad = tmp_path / "bad.lum"
    bad.write_bytes(b"\x00garbage" * 512)
    a = actor_on(bad, events)
    with pytest.raises(JournalError, match=str(bad)):
        a.on_start()
    a.on_stop()


# -- batches (group commit) --------------------------------------------------------------


class CountingAppends:
    def __init__(self, actor: SessionActor) -> None:
        assert actor.core is not None
        self.journal = actor.core.journal
        self.real = self.journal.append
        self.calls: list[int] = []

    def __call__(self, entries: list[Any]) -> int:
        self.calls.append(len(entries))
        return self.real(entries)


def test_consecutive_edits_of_a_batch_share_one_commit_and_a_query_ends_the_run(
    actor, events, monkeypatch
):
    appends = CountingAppends(actor)
    monkeypatch.setattr(appends.journal, "append", appends)
    outcomes = actor.handle_batch(
        [
            ("add_track", {"name": "A", "command_id": "a"}),
            ("add_track", {"name": "B", "command_id": "b"}),
            ("describe", {}),
            ("remove_track", {"id": "nope"}),
            ("add_track", {"name": "C"}),
            ("history", {}),
        ]
    )
    assert appends.calls == [2, 1]
    assert [o["revision"] for o in (outcomes[0], outcomes[1], outcomes[4])] == [1, 2, 3]
    assert [t["name"] for t in outcomes[2]["session"]["tracks"]] == ["A", "B"]
    assert isinstance(outcomes[3], NotFound)
    assert len(outcomes[5]["done"]) == 3
    assert [body["revision"] for _, body in events] == [1, 2, 3]


def test_in_a_batch_a_bad_command_id_is_refused_in_its_place(actor, events):
    outcomes = actor.handle_batch(
        [("add_track", {"name": "A"}), ("add_track", {"command_id": ""}), ("add_track", {})]
    )
    assert isinstance(outcomes[1], BadArguments)
    assert [o["revision"] for o in (outcomes[0], outcomes[2])] == [1, 2]
    assert len(events) == 2


def test_a_command_id_used_twice_in_one_batch_is_applied_once(actor, events):
    outcomes = actor.handle_batch(
        [("add_track", {"command_id": "k"}), ("add_track", {"command_id": "k"})]
    )
    assert outcomes[0]["revision"] == 1
    assert isinstance(outcomes[1], Conflict) or outcomes[1].get("duplicate")
    assert len(actor.handle("describe", {})["session"]["tracks"]) == 1
    assert len(events) == 1


def test_when_a_group_commit_fails_no_edit_of_it_is_acknowledged_or_announced(
    actor, events, monkeypatch
):
    actor.handle("add_track", {"name": "kept"})
    events.clear()
    assert actor.core is not None
    journal = actor.core.journal

    def failing(entries: list[Any]) -> int:
        raise JournalError(f"cannot write the session file {journal.path}: disk is full")

    monkeypatch.setattr(journal, "append", failing)
    outcomes = actor.handle_batch(
        [("add_track", {"name": "A"}), ("remove_track", {"id": "t1"}), ("undo", {})]
    )
    assert all(isinstance(o, JournalError) for o in outcomes)
    assert events == []
    monkeypatch.undo()
    session = actor.handle("describe", {})["session"]
    assert (
        session["tracks"] == [{"id": "t1", "name": "kept", "kind": "video"}]
        and session["revision"] == 1
    )
    db = sqlite3.connect(journal.path)
    try:
        assert db.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 1
    finally:
        db.close()


def test_a_snapshot_that_cannot_be_written_does_not_fail_a_committed_batch(
    actor, events, monkeypatch
):
    assert actor.core is not None
    actor.core.snapshot_every = 2
    journal = actor.core.journal

    def failing(seq: int, state: dict[str, Any]) -> None:
        raise JournalError(f"cannot write a snapshot to {journal.path}: disk is full")

    monkeypatch.setattr(journal, "snapshot", failing)
    outcomes = actor.handle_batch(
        [("add_track", {"command_id": "a"}), ("add_track", {"command_id": "b"})]
    )
    assert [o["revision"] for o in outcomes] == [1, 2]
    assert len(events) == 2
