"""Session diffs of sound and crossfades: gains, track kinds, audio media and transitions.

Each step of a real session (its edit commands, with a made-up probe) is
diffed against the step before and applied again, through the UI-Bus's JSON
as a page gets it: the result is the session's next timeline, and a valid one
(a transition travels with the clips it joins, never one without the other).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from lumiera.bus.timeline import Clip, Media, Output, Timeline, Track, Transition
from lumiera.stage.gui import uibus
from lumiera.stage.gui.diff import apply, diff
from lumiera.steam.core import SessionCore

VIDEO = Media(
    id="m1",
    path="/media/v.mp4",
    frames=100,
    rate=Fraction(25),
    width=640,
    height=360,
    pix_fmt="yuv420p",
    size=1000,
    mtime_ns=1,
    audio_rate=48000,
    audio_channels=2,
    audio_layout="stereo",
    audio_samples=192000,
)
SOUND = Media(
    id="m2",
    path="/media/a.wav",
    frames=100,
    rate=Fraction(25),
    width=0,
    height=0,
    pix_fmt="",
    size=1000,
    mtime_ns=1,
    audio_rate=48000,
    audio_channels=1,
    audio_layout="mono",
    audio_samples=192000,
)
V1, A1 = Track(id="t1", name="V1"), Track(id="t2", name="A1", kind="audio")
C1 = Clip(id="c1", media="m1", track="t1", position=0, source_in=0, source_out=50)
C2 = Clip(id="c2", media="m1", track="t1", position=50, source_in=60, source_out=90)
C2_EXTENDED = Clip(id="c2", media="m1", track="t1", position=40, source_in=50, source_out=90)
C3 = Clip(id="c3", media="m2", track="t2", position=0, source_in=0, source_out=80)
X1 = Transition(id="x1", a="c1", b="c2", curve="equal_power")
CUT = Timeline(
    output=Output(), media=(VIDEO, SOUND), tracks=(V1, A1), clips=(C1, C2, C3), revision=5
)
FADED = Timeline(
    output=Output(),
    media=(VIDEO, SOUND),
    tracks=(V1, A1),
    clips=(C1, C2_EXTENDED, C3),
    revision=6,
    transitions=(X1,),
)


def through_the_page(change: uibus.SessionDiff) -> uibus.SessionDiff:
    """The diff as a page receives it: JSON, checked on decoding."""
    decoded = uibus.decode(uibus.encode(change), up=False)
    assert isinstance(decoded, uibus.SessionDiff)
    return decoded


def test_an_added_transition_travels_with_its_extended_clip_and_applies_valid():
    change = diff(CUT, FADED, "add_transition")
    assert change.transitions == (X1,)
    assert change.clips == (C2_EXTENDED,)
    assert change.tracks is None and change.output is None and change.media == ()
    after = apply(CUT, through_the_page(change))
    assert after == FADED
    assert after.invalid() is None
    assert Timeline.from_wire(after.to_wire()) == FADED


def test_a_removed_transition_is_an_empty_list_and_none_means_unchanged():
    change = diff(FADED, CUT, "undo")
    assert change.transitions == ()
    assert uibus.encode(change).count('"transitions":[]') == 1
    assert apply(FADED, through_the_page(change)) == CUT
    gained = Timeline(**{**FADED.__dict__, "clips": (C1, C2_EXTENDED, _gain(C3, -6.0))})
    same = diff(FADED, gained, "set_gain")
    assert same.transitions is None and '"transitions"' not in uibus.encode(same)
    assert apply(FADED, through_the_page(same)).transitions == (X1,)


def test_a_gain_and_an_audio_track_are_in_the_diff():
    before = Timeline(output=Output(), media=(VIDEO,), tracks=(V1,), clips=(C1,), revision=1)
    change = diff(before, CUT, "add_clip")
    assert change.tracks == (V1, A1) and change.media == (SOUND,)
    assert apply(before, through_the_page(change)) == CUT
    gained = Timeline(**{**CUT.__dict__, "clips": (C1, C2, _gain(C3, -96.0)), "revision": 6})
    change = diff(CUT, gained, "set_gain")
    assert [(c.id, c.gain_db) for c in change.clips] == [("c3", -96.0)]
    assert apply(CUT, through_the_page(change)) == gained


def test_the_schema_declares_the_transitions_of_a_diff_and_the_sound_commands():
    schema = uibus.schema()
    assert schema["kinds"]["diff"]["fields"]["transitions"] == {
        "type": "array|null",
        "required": False,
    }
    for command in ("set_gain", "add_transition", "remove_transition"):
        assert command in schema["allowed"]["session"]
        uibus.Command.from_wire({"ref": 1, "to": "session", "command": command})


def _gain(clip: Clip, gain_db: float) -> Clip:
    return Clip(**{**clip.__dict__, "gain_db": gain_db})


# -- a real session, step by step --------------------------------------------------------


def probe(path: str) -> dict[str, Any]:
    """Video with sound for ``*.mp4``, sound alone for ``*.wav`` (4 s, 48 kHz)."""
    sound = {"audio_rate": 48000, "audio_channels": 2, "audio_layout": "stereo"}
    found: dict[str, Any] = {"size": 4096, "mtime_ns": 1, **sound, "audio_samples": 192000}
    if path.endswith(".wav"):
        return {**found, "frames": 0, "rate": "25", "width": 0, "height": 0, "pix_fmt": ""}
    return {**found, "frames": 100, "rate": "25", "width": 64, "height": 48, "pix_fmt": "yuv420p"}


STEPS: list[tuple[str, dict[str, Any]]] = [
    ("add_media", {"path": "/media/v.mp4"}),
    ("add_media", {"path": "/media/a.wav"}),
    ("add_track", {"name": "V1"}),
    ("add_track", {"name": "A1", "kind": "audio"}),
    ("add_clip", {"media": "m1", "track": "t1", "position": 0, "source_out": 50}),
    ("add_clip", {"media": "m1", "track": "t1", "position": 50, "source_in": 60}),
    ("add_clip", {"media": "m2", "track": "t2", "position": 0}),
    ("set_gain", {"id": "c3", "gain_db": -12.0}),
    ("add_transition", {"a": "c1", "b": "c2", "length": 10, "curve": "equal_power"}),
    ("set_gain", {"id": "c2", "gain_db": 3.0}),
    ("undo", {}),
    ("undo", {}),  # the transition goes: c2 at the cut again
    ("redo", {}),
    ("remove_clip", {"id": "c1"}),  # and its transition with it
    ("undo", {}),
    ("remove_transition", {"id": "x1"}),
]


@pytest.fixture
def core(tmp_path: Path) -> Any:
    opened = SessionCore(tmp_path / "s.lumiera", probe=probe)
    try:
        yield opened
    finally:
        opened.close()


def test_each_step_of_a_session_with_sound_and_crossfades_diffs_and_applies(core):
    page = core.session.timeline()
    seen = set()
    for command, args in STEPS:
        before = core.session.timeline()
        core.execute(command, args)
        after = core.session.timeline()
        change = through_the_page(diff(before, after, command))
        page = apply(page, change)
        assert page == after, command
        assert Timeline.from_wire(page.to_wire()) == after, command
        seen.add((command, change.transitions is not None))
    assert ("add_transition", True) in seen and ("remove_clip", True) in seen
    assert ("set_gain", False) in seen
    assert page.transitions == () and {c.id for c in page.clips} == {"c1", "c2", "c3"}
