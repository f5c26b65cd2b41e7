"""The UI-Bus messages: every kind round-trips, bad ones are refused naming why; diffs apply."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from lumiera.bus.timeline import Clip, Media, Output, Timeline, Track
from lumiera.errors import BadMessage
from lumiera.stage.gui import uibus
from lumiera.stage.gui.diff import apply, diff

MEDIA = Media(
    id="m1",
    path="/media/a.mp4",
    frames=100,
    rate=Fraction(25),
    width=640,
    height=360,
    pix_fmt="yuv420p",
    size=1000,
    mtime_ns=1,
)
MEDIA2 = Media(**{**MEDIA.__dict__, "id": "m2", "path": "/media/b.mp4"})
V1, V2 = Track(id="t1", name="V1"), Track(id="t2", name="V2")
CLIP = Clip(id="c1", media="m1", track="t1", position=0, source_in=0, source_out=50)
BEFORE = Timeline(output=Output(), media=(MEDIA,), tracks=(V1,), clips=(CLIP,), revision=3)

EXAMPLES: list[uibus.UiMessage] = [
    uibus.Hello(instance="i1", server_ms=12.5, allowed={"session": ["undo"]}),
    uibus.SessionState(timeline=BEFORE),
    uibus.SessionDiff(base=1, revision=2, command="add_track", tracks=(V1, V2), output=Output()),
    uibus.SessionDiff(base=2, revision=3, clips=(CLIP,), removed_media=["m9"]),
    uibus.Note(level="warning", text="careful", sender="player"),
    uibus.Mark(id="c1", mark="error"),
    uibus.BusEvent(topic="stats.player", sender="player", ts=1.5, body={"fps": 25.0}),
    uibus.Status(status={"phase": "running", "subsystems": []}),
    uibus.Reply(ref=4, ok=True, result={"id": "t2"}),
    uibus.Reply(ref=5, ok=False, code="not_found", message="no clip c9"),
    uibus.Emergency(reason="engine: killed by signal 9", subsystem="engine"),
    uibus.ViewerState(sent=10, dropped=2, frame=41, ring="viewer-960x540"),
    uibus.Command(ref=1, to="session", command="add_track", args={"name": "V2"}),
    uibus.Quit(ref=2),
    uibus.Subscribe(prefixes=["stats.", "subsystem."]),
    uibus.ViewerAck(on=True, frame=41),
    uibus.Clock(ref=3, page_ms=1234.5),
]


def test_the_examples_cover_every_kind():
    assert {type(m) for m in EXAMPLES} == set(uibus.KINDS.values())


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.KIND)
def test_every_kind_round_trips_through_its_text_frame(message):
    text = uibus.encode(message)
    assert json.loads(text)["type"] == message.KIND
    assert uibus.decode(text, up=message.UP) == message


def refusal(text: str | bytes, up: bool = True) -> str:
    with pytest.raises(BadMessage) as err:
        uibus.decode(text, up=up)
    return str(err.value)


def test_malformed_json_is_refused_as_not_json():
    assert refusal("{nope").startswith("not JSON")


def test_a_frame_that_is_not_an_object_is_refused():
    assert "is an object, not list" in refusal("[1, 2]")


def test_an_unknown_type_is_refused_naming_it():
    assert "unknown UI-Bus message type 'launch'" in refusal('{"type": "launch"}')


def test_a_down_message_sent_up_is_refused_as_unknown_in_that_direction():
    note = uibus.encode(uibus.Note(level="info", text="x"))
    assert "unknown UI-Bus message type 'note'" in refusal(note, up=True)
    assert uibus.decode(note, up=False) == uibus.Note(level="info", text="x")
    command = uibus.encode(uibus.Quit())
    assert "unknown UI-Bus message type 'quit'" in refusal(command, up=False)


def test_a_command_a_page_may_not_send_is_refused_naming_it():
    text = json.dumps({"type": "command", "ref": 1, "to": "engine", "command": "fault"})
    assert "engine fault is not a command a page may send" in refusal(text)
    text = json.dumps({"type": "command", "ref": 1, "to": "appstate", "command": "stop"})
    assert "appstate stop is not a command a page may send" in refusal(text)


def test_a_note_of_an_unknown_level_is_refused_naming_the_levels():
    text = json.dumps({"type": "note", "level": "fatal", "text": "x"})
    assert "level: one of info, warning, error" in refusal(text, up=False)


def test_a_field_of_the_wrong_type_or_missing_or_unknown_is_refused_naming_it():
    assert "ref" in refusal(json.dumps({"type": "clock", "ref": "1", "page_ms": 1.0}))
    assert "missing field 'page_ms'" in refusal(json.dumps({"type": "clock", "ref": 1}))
    assert "unknown field(s) x" in refusal(json.dumps({"type": "quit", "x": 1}))


def test_a_frame_over_the_size_limit_is_refused_before_parsing():
    assert "exceeds" in refusal("x" * (uibus.MAX_MESSAGE_BYTES + 1))


def test_the_schema_declares_every_kind_its_direction_and_fields():
    schema = uibus.schema()
    assert set(schema["kinds"]) == set(uibus.KINDS)
    assert schema["version"] == uibus.VERSION
    command = schema["kinds"]["command"]
    assert command["up"] is True
    assert command["fields"]["ref"] == {"type": "number", "required": True}
    assert command["fields"]["args"]["required"] is False
    assert schema["kinds"]["diff"]["fields"]["tracks"]["type"] == "array|null"
    assert schema["allowed"]["session"] == sorted(uibus.ALLOWED["session"])
    json.dumps(schema)  # what /uibus.json serves


def test_a_diff_applied_to_its_base_gives_the_new_timeline():
    moved = Clip(**{**CLIP.__dict__, "position": 60})
    added = Clip(id="c2", media="m2", track="t2", position=0, source_in=10, source_out=20)
    after = Timeline(
        output=Output(width=1280, height=720),
        media=(MEDIA, MEDIA2),
        tracks=(V1, V2),
        clips=(moved, added),
        revision=7,
    )
    change = diff(BEFORE, after, "move_clip")
    assert change.base == 3 and change.revision == 7 and change.command == "move_clip"
    assert {c.id for c in change.clips} == {"c1", "c2"} and change.media == (MEDIA2,)
    assert apply(BEFORE, change) == after
    # and after the trip a page makes of it
    assert apply(BEFORE, uibus.decode(uibus.encode(change), up=False)) == after  # type: ignore[arg-type]


def test_a_diff_that_removes_things_and_one_that_changes_nothing():
    empty = Timeline(output=Output(), tracks=(V1,), revision=4)
    change = diff(BEFORE, empty, "remove_clip")
    assert change.removed_clips == ["c1"] and change.removed_media == ["m1"]
    assert change.tracks is None and change.output is None
    assert apply(BEFORE, change) == empty
    same = diff(BEFORE, BEFORE)
    assert (same.media, same.clips, same.removed_clips, same.tracks) == ((), (), [], None)
    assert apply(BEFORE, same) == BEFORE
