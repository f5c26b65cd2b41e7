"""The session model: exact frame rates, clip geometry, and data that round-trips."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from lumiera.steam.model import Clip, Media, Output, Session, Track, rate_of, rate_text


@pytest.mark.parametrize(
    "given, rate",
    [
        (25, Fraction(25)),
        ("25", Fraction(25)),
        (" 24 ", Fraction(24)),
        ("30000/1001", Fraction(30000, 1001)),
        (Fraction(60000, 1001), Fraction(60000, 1001)),
        ("1000", Fraction(1000)),
    ],
)
def test_a_frame_rate_is_a_whole_number_or_an_exact_fraction(given, rate):
    assert rate_of(given) == rate
    assert rate_of(rate_text(rate)) == rate


@pytest.mark.parametrize(
    "given", ["29.97", "", "abc", "-25", "0", "1001", "25/", "/25", "²", 0, True, 25.0, None]
)
def test_an_inexact_or_out_of_range_frame_rate_is_a_value_error(given):
    with pytest.raises(ValueError):
        rate_of(given)


def test_a_frame_rate_with_a_zero_denominator_is_a_value_error():
    with pytest.raises(ValueError):
        rate_of("1/0")


def test_rate_text_writes_whole_rates_without_a_denominator():
    assert rate_text(Fraction(25)) == "25"
    assert rate_text(Fraction(30000, 1001)) == "30000/1001"


def test_a_clip_shows_source_frames_from_its_position_on():
    clip = Clip("c1", "m1", "t1", position=100, source_in=10, source_out=35)
    assert (clip.length, clip.end) == (25, 125)


def sample() -> Session:
    return Session(
        media={
            "m2": Media("m2", "/b.mov", 20, Fraction(30000, 1001), 64, 48, "yuv420p", 9, 2),
            "m1": Media("m1", "/a.mov", 10, Fraction(25), 64, 48, "yuv420p", 8, 1),
        },
        tracks=[Track("t2", "top"), Track("t1", "bottom")],
        clips={
            "c2": Clip("c2", "m1", "t1", 20, 0, 5, 0.5),
            "c1": Clip("c1", "m2", "t1", 0, 2, 12),
            "c3": Clip("c3", "m1", "t2", 0, 0, 10),
        },
        output=Output(64, 48, Fraction(30000, 1001)),
        revision=7,
    )


def test_session_data_is_json_compatible_and_round_trips_exactly():
    data = sample().to_data()
    assert json.loads(json.dumps(data)) == data
    assert Session.from_data(data) == sample()
    assert Session.from_data(data).to_data() == data


def test_session_data_is_in_a_stable_order_whatever_the_insertion_order():
    data = sample().to_data()
    assert [m["id"] for m in data["media"]] == ["m1", "m2"]
    assert [c["id"] for c in data["clips"]] == ["c1", "c2", "c3"]  # by track, then position
    assert [t["id"] for t in data["tracks"]] == ["t2", "t1"]  # tracks keep their stacking
    assert data["output"] == {
        "width": 64,
        "height": 48,
        "rate": "30000/1001",
        "audio_rate": 48000,
        "audio_layout": "stereo",
    }


def test_the_clips_of_a_track_come_in_timeline_order():
    s = sample()
    assert [c.id for c in s.clips_on("t1")] == ["c1", "c2"]
    assert s.clips_on("nope") == []
    assert s.track("t2") == Track("t2", "top")
    assert s.track("nope") is None
