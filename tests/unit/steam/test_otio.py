"""OpenTimelineIO export and import (lumiera.steam.otio, lumiera.steam.otio_import).

A made-up probe stands for the media (by file name), so these run without media
files; the CLI on real files is tests/integration/test_otio_cli_e2e.py.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio
import pytest

from lumiera.errors import Conflict, MediaError
from lumiera.steam.core import SessionCore
from lumiera.steam.model import Session
from lumiera.steam.otio import rate_of_float, to_otio
from lumiera.steam.otio_import import CachedProbe, Plan, execute_plan, plan_import

DATA = Path(__file__).parents[2] / "data"
RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange
IDENTITY = {"size": 4096, "mtime_ns": 1_700_000_000_000_000_000, "inode": 7}
SOUND = {"audio_rate": 48000, "audio_channels": 2, "audio_layout": "stereo"}


def probe(path: str) -> dict[str, Any]:
    """Media made up from the name: ``v100`` 100 frames at 25 with sound, ``n120`` 120 frames
    at 30000/1001 without, ``s24_240`` 240 frames at 24, ``a4s`` 4 s of sound only."""
    name = os.path.basename(path)
    if "missing" in name:
        raise MediaError(f"media {path}: No such file or directory")
    video = {"width": 64, "height": 48, "pix_fmt": "yuv420p", **IDENTITY}
    if name.startswith("v"):
        return {**video, "frames": int(name[1:4]), "rate": "25", **SOUND, "audio_samples": 192000}
    if name.startswith("n"):
        return {**video, "frames": int(name[1:4]), "rate": "30000/1001"}
    if name.startswith("s24"):
        return {**video, "frames": 240, "rate": "24"}
    seconds = int(name[1])
    return {
        "width": 0,
        "height": 0,
        "pix_fmt": "",
        **IDENTITY,
        **SOUND,
        "audio_samples": seconds * 48000,
    }


def open_core(path: Path | str = ":memory:") -> SessionCore:
    return SessionCore(Path(path), probe=probe)


def content(core: SessionCore) -> dict[str, Any]:
    data = core.session.to_data()
    del data["revision"]
    return data


def build(core: SessionCore, rate: str) -> None:
    """Video and audio tracks, gaps, two transitions, gains, opacity, media at other rates."""
    commands: list[tuple[str, dict[str, Any]]] = [
        (
            "set_output",
            {
                "width": 640,
                "height": 360,
                "rate": rate,
                "audio_rate": 44100,
                "audio_layout": "stereo",
            },
        ),
        ("add_media", {"path": "/media/v100.mov"}),
        ("add_media", {"path": "/media/n120.mov"}),
        ("add_media", {"path": "/media/a4s.wav"}),
        ("add_media", {"path": "/media/v050 unused.mov"}),
        ("add_track", {"name": "V1"}),
        ("add_track", {"name": "V2 overlay"}),
        ("add_track", {"name": "A1", "kind": "audio"}),
        ("add_clip", {"media": "m1", "track": "t1", "position": 0, "source_out": 40}),
        (
            "add_clip",
            {"media": "m1", "track": "t1", "position": 40, "source_in": 50, "source_out": 90},
        ),
        ("add_transition", {"a": "c1", "b": "c2", "length": 10}),
        (
            "add_clip",
            {
                "media": "m2",
                "track": "t1",
                "position": 100,
                "source_in": 5,
                "source_out": 65,
                "opacity": 0.5,
            },
        ),
        (
            "add_clip",
            {
                "media": "m2",
                "track": "t2",
                "position": 10,
                "source_out": 20,
                "opacity": 0.75,
                "gain_db": -6.0,
            },
        ),
        (
            "add_clip",
            {"media": "m3", "track": "t3", "position": 20, "source_out": 50, "gain_db": -3.5},
        ),
        (
            "add_clip",
            {"media": "m1", "track": "t3", "position": 70, "source_in": 10, "source_out": 40},
        ),
        ("add_transition", {"a": "c5", "b": "c6", "length": 5, "curve": "equal_power"}),
        ("add_track", {"name": "empty"}),
    ]
    for command, args in commands:
        core.execute(command, args)


def through_json(timeline: Any) -> Any:
    return otio.adapters.read_from_string(otio.adapters.write_to_string(timeline))


def run_import(core: SessionCore, tl: Any, **kw: Any) -> Plan:
    cached = CachedProbe(probe)
    plan = plan_import(tl, core.session, cached, **kw)
    core.edits.probe = cached
    execute_plan(core, plan)
    return plan


# -- export ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", ["25", "30000/1001"])
def test_export_then_import_gives_the_same_timeline(rate: str) -> None:
    source, copy = open_core(), open_core()
    build(source, rate)
    plan = run_import(copy, through_json(to_otio(source.session.timeline())))
    assert plan.report == []
    assert content(copy) == content(source)
    again = to_otio(copy.session.timeline())  # and a second export is the first
    assert otio.adapters.write_to_string(again) == otio.adapters.write_to_string(
        to_otio(source.session.timeline())
    )


def test_the_export_is_otio_as_other_tools_read_it() -> None:
    core = open_core()
    build(core, "30000/1001")
    tl = through_json(to_otio(core.session.timeline(), name="cut"))
    v1, v2, a1, empty = tl.tracks
    assert [t.kind for t in tl.tracks] == ["Video", "Video", "Audio", "Video"]
    assert [type(i).__name__ for i in v1] == ["Clip", "Transition", "Clip", "Gap", "Clip"]
    assert len(empty) == 0
    first, fade, second, gap, third = v1
    ntsc = Fraction(30000, 1001)
    assert fade.transition_type == "SMPTE_Dissolve"
    assert (fade.in_offset.value, fade.out_offset.value) == (10, 0)
    assert rate_of_float(fade.in_offset.rate) == ntsc
    # c2 overlaps c1 by 10 frames: in OTIO it starts at the cut, those frames its handle
    assert v1.range_of_child(second).start_time.value == 40
    assert second.source_range.start_time.value == 50
    assert gap.duration().value == 20  # c2 ends at 80
    assert v1.range_of_child(third).start_time.value == 100
    # media at its own rate, exactly; played frame for frame: a time warp
    assert first.source_range.start_time.rate == 25.0
    assert first.effects[0].time_scalar == pytest.approx(float(ntsc / 25))
    assert third.source_range.start_time.rate == float(ntsc)
    assert not third.effects
    assert third.media_reference.target_url == "file:///media/n120.mov"
    assert third.media_reference.available_range.duration.value == 120
    assert third.metadata["lumiera"]["opacity"] == 0.5
    assert v2[1].metadata["lumiera"]["gain_db"] == -6.0
    assert a1[-2].metadata["lumiera"]["curve"] == "equal_power"
    assert tl.metadata["lumiera"]["output"]["rate"] == "30000/1001"
    assert tl.global_start_time.value == 0
    assert v1.duration().value == 160


# -- import of a hand-written file ----------------------------------------------------------


def test_a_hand_written_file_with_a_gap_and_a_transition() -> None:
    core = open_core()
    tl = otio.adapters.read_from_file(str(DATA / "otio" / "gap_and_dissolve.otio"))
    plan = run_import(core, tl, base_dir=DATA / "otio")
    assert plan.report == []
    s = core.session
    assert s.output.rate == 24
    assert [(t.id, t.name, t.kind) for t in s.tracks] == [
        ("t1", "Picture", "video"),
        ("t2", "Music", "audio"),
    ]
    assert {m.id: os.path.basename(m.path) for m in s.media.values()} == {
        "m1": "s24_a.mov",
        "m2": "s24_b.mov",
        "m3": "s24_c.mov",
        "m4": "a4s.wav",
    }
    assert s.media["m1"].path == str(DATA / "otio" / "media" / "s24_a.mov")
    clips = {
        c.id: (c.media, c.track, c.position, c.source_in, c.source_out) for c in s.clips.values()
    }
    assert clips == {
        "c1": ("m1", "t1", 0, 10, 58),  # source 01:00:00:10, its media's timecode 01:00:00:00
        "c2": ("m2", "t1", 72, 20, 60),  # after a gap of 24; 4 frames past the cut (out_offset)
        "c3": ("m3", "t1", 102, 24, 78),  # 6 frames before the cut (in_offset)
        "c4": ("m4", "t2", 0, 0, 72),
    }
    assert [(t.id, t.a, t.b, t.curve) for t in s.transitions.values()] == [
        ("x1", "c2", "c3", "linear")
    ]
    timeline = s.timeline()
    assert timeline.overlap_of(s.transitions["x1"]) == (102, 112)
    assert timeline.invalid() is None
    assert len(core.history()["done"]) == len(plan.commands)  # each one journaled, undoable


# -- what lumiera cannot represent -----------------------------------------------------------


def _clip(name: str, start: float, duration: float, rate: float = 25.0, **kw: Any) -> Any:
    ref = otio.schema.ExternalReference(target_url=f"/media/{name}")
    return otio.schema.Clip(
        name=name, media_reference=ref, source_range=TR(RT(start, rate), RT(duration, rate)), **kw
    )


def test_what_cannot_be_represented_is_reported_and_left_out() -> None:
    track = otio.schema.Track(name="V")
    track.append(_clip("v100.mov", 0, 10, effects=[otio.schema.Effect(effect_name="Blur")]))
    track.append(_clip("v100.mov", 10, 10, effects=[otio.schema.LinearTimeWarp(time_scalar=2)]))
    marked = _clip("v100.mov", 20, 10)
    marked.markers.append(otio.schema.Marker(name="here", marked_range=TR(RT(0, 25), RT(1, 25))))
    track.append(marked)
    track.append(otio.schema.Transition(transition_type="Custom", in_offset=RT(2, 25)))
    track.append(_clip("v100.mov", 30.5, 10))
    nested = otio.schema.Stack(name="nest")
    nested.append(otio.schema.Track(children=[_clip("v100.mov", 0, 5)]))
    track.append(nested)
    track.append(
        otio.schema.Clip(
            name="bars",
            media_reference=otio.schema.GeneratorReference(
                generator_kind="SMPTEBars", available_range=TR(RT(0, 25), RT(100, 25))
            ),
        )
    )
    track.append(_clip("v100.mov", 0, 5))
    tl = otio.schema.Timeline(tracks=[track])
    core = open_core()
    plan = run_import(core, tl)
    text = "\n".join(plan.report)
    for expected in (
        "effect Blur",
        "speed x2",
        "marker",
        "Custom transition",
        "source start 30.5 is not a whole frame: rounded to 31",
        "nested Stack",
        "GeneratorReference",
    ):
        assert expected in text
    assert len(plan.report) == 7
    positions = sorted((c.position, c.source_in, c.length) for c in core.session.clips.values())
    # the speed change is not kept: lumiera plays the 10 frames at their place; the nested
    # stack (5 frames) and the generator (100 frames) leave gaps
    assert positions == [(0, 0, 10), (10, 10, 10), (20, 20, 10), (30, 31, 10), (145, 0, 5)]


def test_a_missing_media_file_is_named_and_nothing_is_imported(tmp_path: Path) -> None:
    core = open_core(tmp_path / "s.lumiera")
    track = otio.schema.Track(children=[_clip("v100.mov", 0, 10), _clip("missing.mov", 0, 5)])
    with pytest.raises(MediaError, match=r"/media/missing\.mov"):
        plan_import(otio.schema.Timeline(tracks=[track]), core.session, probe)
    assert core.session.to_data() == Session().to_data()
    assert core.history()["done"] == []


def test_a_session_with_an_edit_is_extended_only_with_append() -> None:
    core = open_core()
    build(core, "25")
    tl = through_json(to_otio(core.session.timeline()))
    with pytest.raises(Conflict, match="--append"):
        plan_import(tl, core.session, probe)
    before = content(core)
    plan = run_import(core, tl, append=True)
    assert plan.report == []
    after = core.session
    assert len(after.tracks) == 2 * len(before["tracks"])
    assert len(after.clips) == 2 * len(before["clips"])
    assert len(after.transitions) == 2 * len(before["transitions"])
    for _ in plan.commands:  # and all of it undoes
        core.execute("undo", {})
    assert content(core) == before


def test_a_clip_without_the_handle_a_transition_needs_is_an_error() -> None:
    track = otio.schema.Track(
        children=[
            _clip("v100.mov", 0, 10),
            otio.schema.Transition(transition_type="SMPTE_Dissolve", in_offset=RT(4, 25)),
            _clip("v100.mov", 2, 10),  # only 2 frames before its start
        ]
    )
    core = open_core()
    with pytest.raises(Exception, match="transition"):
        plan_import(otio.schema.Timeline(tracks=[track]), core.session, probe)
    assert core.session.clips == {}


def test_exact_rates_from_doubles() -> None:
    assert rate_of_float(float(Fraction(30000, 1001))) == Fraction(30000, 1001)
    assert rate_of_float(float(Fraction(24000, 1001))) == Fraction(24000, 1001)
    assert rate_of_float(25.0) == 25
    assert rate_of_float(23.976) == Fraction(2997, 125)
