"""Sound and crossfade edits: track kinds, a clip's gain, transitions made and removed, undone."""

from __future__ import annotations

import pytest

from lumiera.errors import BadArguments, Conflict, NotFound
from lumiera.steam.edits import Edits
from lumiera.steam.model import Session

from .kit import fake_probe
from .test_edits import run


def cut() -> Edits:
    """m1 (100 frames) on t1: c1 shows 0..10 at 0, c2 shows 20..40 at 10 (a cut at 10)."""
    e = Edits(Session(), fake_probe)
    run(e, "add_media", {"path": "/media/v100.mov"})
    run(e, "add_track", {"name": "V1"})
    run(e, "add_clip", {"media": "m1", "track": "t1", "position": 0, "source_out": 10})
    run(e, "add_clip", {"media": "m1", "track": "t1", "position": 10, "source_in": 20,
                        "source_out": 40})  # fmt: skip
    return e


def test_a_transition_extends_the_second_clip_over_the_cut_and_undoes_exactly():
    e = cut()
    before = e.session.timeline()
    memento = run(e, "add_transition", {"a": "c1", "b": "c2", "length": 4, "curve": "equal_power"})
    t = e.session.timeline()
    c2 = t.clip_by_id["c2"]
    assert (c2.position, c2.source_in, c2.end) == (6, 16, 30)  # after the cut: unchanged
    assert t.transitions[0].curve == "equal_power" and t.overlap_of(t.transitions[0]) == (6, 10)
    e.restore(memento)
    assert e.session.timeline() == before


def test_removing_a_transition_gives_the_frames_back_and_removing_a_clip_takes_its_fades():
    e = cut()
    run(e, "add_transition", {"a": "c1", "b": "c2", "length": 4})
    with_it = e.session.timeline()
    memento = run(e, "remove_transition", {"id": "x1"})
    assert e.session.clips["c2"].position == 10 and not e.session.transitions
    e.restore(memento)
    assert e.session.timeline() == with_it
    memento = run(e, "remove_clip", {"id": "c1"})
    assert not e.session.transitions and e.session.timeline().invalid() is None
    e.restore(memento)
    assert e.session.timeline() == with_it


@pytest.mark.parametrize(
    "args, error, message",
    [
        ({"a": "c2", "b": "c1", "length": 4}, Conflict, "c1 must start where c2 ends"),
        ({"a": "c1", "b": "c2", "length": 0}, BadArguments, "length 0"),
        ({"a": "c1", "b": "c2", "length": 10}, BadArguments, "length 10"),
        ({"a": "c1", "b": "c2", "length": 4, "curve": "s"}, BadArguments, "curve 's'"),
        ({"a": "c1", "b": "c9", "length": 4}, NotFound, "no clip 'c9'"),
    ],
)
def test_a_transition_that_cannot_be_is_refused_and_changes_nothing(args, error, message):
    e = cut()
    before = e.session.timeline()
    with pytest.raises(error, match=message):
        e.handle("add_transition", args)
    assert e.session.timeline() == before


def test_a_clip_without_a_handle_before_it_cannot_take_a_transition():
    e = cut()
    run(e, "trim_clip", {"id": "c2", "source_in": 2, "position": 28})
    run(e, "move_clip", {"id": "c2", "position": 10})
    with pytest.raises(BadArguments, match="c2 has 2 frames of its media before its start"):
        e.handle("add_transition", {"a": "c1", "b": "c2", "length": 4})


def test_a_move_that_would_break_a_transition_is_refused():
    e = cut()
    run(e, "add_transition", {"a": "c1", "b": "c2", "length": 4})
    with pytest.raises(Conflict, match=r"transition x1: .* \(remove it first\)"):
        e.handle("move_clip", {"id": "c2", "position": 12})


def test_gain_and_kinds():
    e = cut()
    run(e, "set_gain", {"id": "c1", "gain_db": -12.5})
    assert e.session.clips["c1"].gain_db == -12.5
    with pytest.raises(BadArguments, match=r"gain_db 30\.0"):
        e.handle("set_gain", {"id": "c1", "gain_db": 30.0})
    with pytest.raises(BadArguments, match="kind 'midi'"):
        e.handle("add_track", {"kind": "midi"})
    run(e, "add_track", {"kind": "audio", "name": "A1"})
    assert e.session.tracks[-1].kind == "audio"
    with pytest.raises(BadArguments, match="m1 has no audio for audio track t2"):
        e.handle("add_clip", {"media": "m1", "track": "t2", "position": 0})
    run(e, "set_output", {"audio_rate": 44100, "audio_layout": "mono"})
    assert (e.session.output.audio_rate, e.session.output.channels) == (44100, 1)
    with pytest.raises(BadArguments, match="audio_rate 1000"):
        e.handle("set_output", {"audio_rate": 1000})
