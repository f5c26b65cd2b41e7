"""The edit commands one by one: resolve without changing anything, apply, restore."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lumiera.errors import (
    BadArguments,
    Conflict,
    LumieraError,
    MediaError,
    NotFound,
    UnknownCommand,
)
from lumiera.steam.edits import Edits
from lumiera.steam.model import Session

from .kit import MEDIA_10, MEDIA_20, MISSING, SETUP, fake_probe


def edits() -> Edits:
    """A session with media m1 (10 frames), m2 (20 frames), tracks t1 < t2, clips c1, c2 on t1."""
    e = Edits(Session(), fake_probe)
    for command, args in SETUP:
        run(e, command, args)
    return e


def run(e: Edits, command: str, args: dict[str, Any]) -> dict[str, Any]:
    memento: dict[str, Any] = getattr(e, f"apply_{command}")(e.handle(command, args))
    return memento


AUDIO_OUT = {"audio_rate": 48000, "audio_layout": "stereo"}


def test_the_edits_declare_exactly_the_session_commands():
    assert sorted(Edits.commands) == [
        "add_clip",
        "add_media",
        "add_track",
        "add_transition",
        "move_clip",
        "remove_clip",
        "remove_track",
        "remove_transition",
        "set_gain",
        "set_opacity",
        "set_output",
        "trim_clip",
    ]


def test_the_setup_session_is_what_the_commands_said():
    s = edits().session
    assert [(t.id, t.name) for t in s.tracks] == [("t1", "V1"), ("t2", "V2")]
    assert s.media["m1"].frames == 10 and s.media["m2"].frames == 20
    assert s.media["m1"].path == MEDIA_10
    c1, c2 = s.clips["c1"], s.clips["c2"]
    assert (c1.position, c1.source_in, c1.source_out, c1.end) == (0, 0, 10, 10)
    assert (c2.position, c2.source_in, c2.source_out, c2.end) == (20, 5, 20, 35)


@pytest.mark.parametrize(
    "command, args, resolved",
    [
        (
            "add_media",
            {"path": MEDIA_10, "id": "intro"},
            {"id": "intro", "path": MEDIA_10, **fake_probe(MEDIA_10)},
        ),
        ("add_media", {"path": MEDIA_20}, {"id": "m3", "path": MEDIA_20, **fake_probe(MEDIA_20)}),
        ("add_track", {}, {"id": "t3", "name": "t3", "index": 2, "kind": "video"}),
        (
            "add_track",
            {"name": "A", "index": 0},
            {"id": "t3", "name": "A", "index": 0, "kind": "video"},
        ),
        (
            "add_track",
            {"id": "music"},
            {"id": "music", "name": "music", "index": 2, "kind": "video"},
        ),
        ("remove_track", {"id": "t1"}, {"id": "t1"}),
        (
            "add_clip",
            {"media": "m2", "track": "t1", "position": 10, "source_out": 10, "opacity": 0.5},
            {
                "id": "c3",
                "media": "m2",
                "track": "t1",
                "position": 10,
                "source_in": 0,
                "source_out": 10,
                "opacity": 0.5,
                "gain_db": 0.0,
            },
        ),
        ("move_clip", {"id": "c1", "track": "t2"}, {"id": "c1", "position": 0, "track": "t2"}),
        ("move_clip", {"id": "c1", "position": 35}, {"id": "c1", "position": 35, "track": "t1"}),
        (
            "trim_clip",
            {"id": "c2", "source_in": 0},
            {"id": "c2", "source_in": 0, "source_out": 20, "position": 20},
        ),
        (
            "trim_clip",
            {"id": "c1", "source_out": 4},
            {"id": "c1", "source_in": 0, "source_out": 4, "position": 0},
        ),
        (  # a left-edge trim: the in point and the position move together
            "trim_clip",
            {"id": "c2", "source_in": 8, "position": 23},
            {"id": "c2", "source_in": 8, "source_out": 20, "position": 23},
        ),
        ("set_opacity", {"id": "c2", "opacity": 0.25}, {"id": "c2", "opacity": 0.25}),
        ("set_opacity", {"id": "c1", "opacity": 0}, {"id": "c1", "opacity": 0.0}),
        ("remove_clip", {"id": "c2"}, {"id": "c2"}),
        (
            "set_output",
            {"rate": "30000/1001"},
            {"width": 1920, "height": 1080, "rate": "30000/1001", **AUDIO_OUT},
        ),
        (
            "set_output",
            {"width": 64, "height": 48},
            {"width": 64, "height": 48, "rate": "25", **AUDIO_OUT},
        ),
    ],
)
def test_a_command_resolves_its_arguments_without_changing_anything_then_applies_and_restores(
    command, args, resolved
):
    e = edits()
    before = e.session.to_data()
    assert e.handle(command, args) == resolved
    assert e.session.to_data() == before  # resolving changed nothing
    memento = getattr(e, f"apply_{command}")(copy.deepcopy(resolved))
    after = e.session.to_data()
    assert after != before
    redo = e.restore(memento)
    assert e.session.to_data() == before
    assert e.restore(redo) == memento  # the way back gives the way forth again
    assert e.session.to_data() == after


def test_removing_a_track_takes_its_clips_and_undoing_it_brings_them_back():
    e = edits()
    before = e.session.to_data()
    memento = run(e, "remove_track", {"id": "t1"})
    assert [t.id for t in e.session.tracks] == ["t2"]
    assert e.session.clips == {}
    assert set(memento["clips"]) == {"c1", "c2"}
    e.restore(memento)
    assert e.session.to_data() == before


def test_a_track_goes_in_at_its_index_counting_from_the_bottom():
    e = edits()
    run(e, "add_track", {"name": "mid", "index": 1})
    run(e, "add_track", {"name": "low", "index": 0})
    assert [t.name for t in e.session.tracks] == ["low", "V1", "mid", "V2"]


def test_generated_ids_skip_the_ones_taken():
    e = edits()
    run(e, "add_track", {"id": "t4"})
    run(e, "add_track", {})  # 3 tracks: t4 is next, and taken
    assert [t.id for t in e.session.tracks] == ["t1", "t2", "t4", "t5"]
    run(e, "remove_clip", {"id": "c1"})  # one clip left, c2: c2 is next, and taken
    assert e.handle("add_clip", {"media": "m1", "track": "t2", "position": 0})["id"] == "c3"


@pytest.mark.parametrize(
    "command, args, error",
    [
        ("add_media", {"path": MISSING}, MediaError),
        ("add_media", {"path": MEDIA_10, "id": "m1"}, Conflict),
        ("add_media", {"path": MEDIA_10, "id": ""}, BadArguments),
        ("add_media", {"path": MEDIA_10, "id": "x" * 65}, BadArguments),
        ("add_media", {}, BadArguments),
        ("add_track", {"id": "t1"}, Conflict),
        ("add_track", {"index": 3}, BadArguments),
        ("add_track", {"index": -1}, BadArguments),
        ("add_track", {"name": 5}, BadArguments),
        ("add_track", {"index": True}, BadArguments),
        ("add_track", {"colour": "red"}, BadArguments),
        ("remove_track", {"id": "t9"}, NotFound),
        ("remove_track", {}, BadArguments),
        ("add_clip", {"media": "m9", "track": "t1", "position": 100}, NotFound),
        ("add_clip", {"media": "m1", "track": "t9", "position": 100}, NotFound),
        ("add_clip", {"media": "m1", "track": "t1", "position": -1}, BadArguments),
        ("add_clip", {"media": "m1", "track": "t1", "position": 5}, Conflict),  # over c1
        ("add_clip", {"media": "m1", "track": "t1", "position": 15}, Conflict),  # over c2's start
        ("add_clip", {"media": "m1", "track": "t1", "position": 50, "id": "c1"}, Conflict),
        ("add_clip", {"media": "m1", "track": "t2", "position": 0, "source_in": 10}, BadArguments),
        ("add_clip", {"media": "m1", "track": "t2", "position": 0, "source_out": 11}, BadArguments),
        ("add_clip", {"media": "m1", "track": "t2", "position": 0, "source_in": -1}, BadArguments),
        ("add_clip", {"media": "m1", "track": "t2", "position": 0, "opacity": 1.5}, BadArguments),
        ("add_clip", {"media": "m1", "track": "t2", "position": 0, "opacity": -0.1}, BadArguments),
        (
            "add_clip",
            {"media": "m1", "track": "t2", "position": 0, "opacity": float("nan")},
            BadArguments,
        ),
        ("add_clip", {"media": "m1", "track": "t2", "position": "0"}, BadArguments),
        ("add_clip", {"media": "m1", "track": "t2", "position": 0.5}, BadArguments),
        ("move_clip", {"id": "c9", "position": 0}, NotFound),
        ("move_clip", {"id": "c1", "position": 16}, Conflict),
        ("move_clip", {"id": "c1", "position": 30}, Conflict),
        ("move_clip", {"id": "c1", "track": "t9"}, NotFound),
        ("move_clip", {"id": "c1", "position": -5}, BadArguments),
        ("trim_clip", {"id": "c9", "source_in": 0}, NotFound),
        ("trim_clip", {"id": "c1", "source_in": 10}, BadArguments),
        ("trim_clip", {"id": "c1", "source_in": 3, "source_out": 2}, BadArguments),
        ("trim_clip", {"id": "c2", "source_out": 21}, BadArguments),
        ("trim_clip", {"id": "c1", "source_out": 11}, BadArguments),
        ("trim_clip", {"id": "c1", "source_in": "0"}, BadArguments),
        ("trim_clip", {"id": "c2", "source_in": 0, "position": -5}, BadArguments),
        ("trim_clip", {"id": "c2", "source_in": 0, "position": 5}, Conflict),  # over c1
        ("trim_clip", {"id": "c2", "position": 1.5}, BadArguments),
        ("set_opacity", {"id": "c9", "opacity": 0.5}, NotFound),
        ("set_opacity", {"id": "c1", "opacity": 1.01}, BadArguments),
        ("set_opacity", {"id": "c1", "opacity": -0.5}, BadArguments),
        ("set_opacity", {"id": "c1", "opacity": float("nan")}, BadArguments),
        ("set_opacity", {"id": "c1", "opacity": "0.5"}, BadArguments),
        ("set_opacity", {"id": "c1", "opacity": True}, BadArguments),
        ("set_opacity", {"id": "c1"}, BadArguments),
        ("remove_clip", {"id": "c9"}, NotFound),
        ("set_output", {"width": 15}, BadArguments),
        ("set_output", {"width": 65}, BadArguments),
        ("set_output", {"height": 16386}, BadArguments),
        ("set_output", {"rate": "29.97"}, BadArguments),
        ("set_output", {"rate": "0"}, BadArguments),
        ("set_output", {"rate": 25}, BadArguments),
        ("explode", {}, UnknownCommand),
        ("describe", {}, UnknownCommand),
    ],
)
def test_a_refused_command_raises_its_typed_error_and_changes_nothing(command, args, error):
    e = edits()
    before = e.session.to_data()
    with pytest.raises(error):
        e.handle(command, args)
    assert e.session.to_data() == before


def test_a_clip_may_end_exactly_where_the_next_begins():
    e = edits()
    run(e, "add_clip", {"media": "m1", "track": "t1", "position": 10, "id": "gap"})
    assert [(c.id, c.position, c.end) for c in e.session.clips_on("t1")] == [
        ("c1", 0, 10),
        ("gap", 10, 20),
        ("c2", 20, 35),
    ]


def test_a_trim_that_would_run_into_the_next_clip_is_a_conflict():
    e = edits()
    run(e, "add_clip", {"media": "m2", "track": "t1", "position": 10, "source_out": 5})
    before = e.session.to_data()
    with pytest.raises(Conflict, match="c2"):
        e.handle("trim_clip", {"id": "c3", "source_out": 15})
    assert e.session.to_data() == before


def test_a_left_edge_trim_keeps_the_clips_out_frame_where_it_was():
    e = edits()
    end = e.session.clips["c2"].end
    run(e, "trim_clip", {"id": "c2", "source_in": 9, "position": 24})
    c2 = e.session.clips["c2"]
    assert (c2.position, c2.source_in, c2.source_out, c2.end) == (24, 9, 20, end)
    run(e, "trim_clip", {"id": "c2", "source_in": 0, "position": 15})  # out to the left
    assert e.session.clips["c2"].end == end


def test_a_trim_row_journaled_without_a_position_keeps_the_clips_position():
    e = edits()
    run(e, "move_clip", {"id": "c2", "position": 30})
    memento = e.apply_trim_clip({"id": "c2", "source_in": 0, "source_out": 20})
    c2 = e.session.clips["c2"]
    assert (c2.position, c2.source_in, c2.source_out) == (30, 0, 20)
    e.restore(memento)
    assert (e.session.clips["c2"].position, e.session.clips["c2"].source_in) == (30, 5)


def test_a_clip_over_several_is_refused_naming_the_earliest_and_the_edges_do_not_overlap():
    e = edits()  # c1: 0..10 and c2: 20..35 on t1
    run(e, "add_clip", {"media": "m1", "track": "t1", "position": 10})  # 10..20: between them
    run(e, "add_clip", {"media": "m2", "track": "t2", "position": 0})  # another track
    run(e, "remove_clip", {"id": "c2"})
    run(e, "add_clip", {"media": "m2", "track": "t1", "position": 30, "id": "c9"})  # 30..50
    run(e, "add_clip", {"media": "m1", "track": "t1", "position": 20, "id": "c8"})  # 20..30
    with pytest.raises(Conflict, match=r"overlap c8 on t1 \(frames 20\.\.30\)"):
        run(e, "add_clip", {"media": "m2", "track": "t1", "position": 25})  # over c8 and c9
    with pytest.raises(Conflict, match=r"overlap c1 on t1 \(frames 0\.\.10\)"):
        run(e, "move_clip", {"id": "c9", "position": 5})  # over c1 and the clip at 10


def test_a_clip_may_be_moved_onto_its_own_frames():
    e = edits()
    run(e, "move_clip", {"id": "c2", "position": 25})  # overlaps where it was: fine
    assert e.session.clips["c2"].position == 25


def test_the_media_path_is_made_absolute_before_it_is_probed(tmp_path, monkeypatch):
    seen: list[str] = []

    def probe(path: str) -> dict[str, Any]:
        seen.append(path)
        return fake_probe(path)

    monkeypatch.chdir(tmp_path)
    e = Edits(Session(), probe)
    assert e.handle("add_media", {"path": "v7.mov"})["path"] == str(tmp_path / "v7.mov")
    assert seen == [str(tmp_path / "v7.mov")]


def test_every_refusal_is_a_lumiera_error_with_a_wire_code():
    e = edits()
    with pytest.raises(LumieraError) as err:
        e.handle("remove_clip", {"id": "nope"})
    assert err.value.code == "not_found"
    assert "nope" in str(err.value)
