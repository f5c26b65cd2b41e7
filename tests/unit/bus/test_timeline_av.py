"""The timeline contract's sound and transitions: sample arithmetic, kinds, gains, crossfades."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from lumiera.bus.timeline import Output, Timeline
from lumiera.errors import BadTimeline


@pytest.mark.parametrize(
    "rate, audio_rate, pattern",
    [
        (Fraction(25), 48000, [1920] * 5),
        (Fraction(30000, 1001), 48000, [1602, 1601, 1602, 1601, 1602]),
        (Fraction(24000, 1001), 48000, [2002] * 5),
        (Fraction(25), 44100, [1764] * 5),
    ],
)
def test_each_frame_spans_its_samples_by_the_rounded_exact_formula(rate, audio_rate, pattern):
    out = Output(64, 48, rate, audio_rate)
    assert [out.samples_in(n) for n in range(5)] == pattern
    for n in range(5):
        exact = Fraction((n + 1) * audio_rate) / rate - Fraction(n * audio_rate) / rate
        assert abs(out.samples_in(n) - exact) < 1


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30000, 1001), Fraction(24000, 1001)])
def test_ten_minutes_of_frames_span_exactly_ten_minutes_of_samples(rate):
    out = Output(64, 48, rate, 48000)
    frames = int(600 * rate)
    assert sum(out.samples_in(n) for n in range(frames)) == out.sample_of(frames)
    assert abs(out.sample_of(frames) - Fraction(frames * 48000) / rate) <= Fraction(1, 2)


def base(**extra: Any) -> dict[str, Any]:
    """Media v (video 20 frames, with sound), s (sound only); tracks t1 video, a1 audio."""
    data: dict[str, Any] = {
        "output": {"width": 64, "height": 48, "rate": "25"},
        "media": [
            {"id": "v", "path": "/v.mkv", "frames": 20, "rate": "25", "width": 64,
             "height": 48, "pix_fmt": "yuv420p", "size": 1, "mtime_ns": 1,
             "audio_rate": 48000, "audio_channels": 2, "audio_layout": "stereo",
             "audio_samples": 38400},
            {"id": "s", "path": "/s.wav", "frames": 50, "rate": "25", "width": 0,
             "height": 0, "pix_fmt": "", "size": 1, "mtime_ns": 1,
             "audio_rate": 44100, "audio_channels": 1, "audio_layout": "mono",
             "audio_samples": 88200},
        ],
        "tracks": [{"id": "t1", "name": "V1"}, {"id": "a1", "name": "A1", "kind": "audio"}],
        "clips": [
            {"id": "c1", "media": "v", "track": "t1", "position": 0, "source_in": 0,
             "source_out": 10},
            {"id": "c2", "media": "v", "track": "t1", "position": 6, "source_in": 6,
             "source_out": 18},
            {"id": "c3", "media": "s", "track": "a1", "position": 0, "source_in": 0,
             "source_out": 40, "gain_db": -6.0},
        ],
        "transitions": [{"id": "x1", "a": "c1", "b": "c2"}],
    }  # fmt: skip
    data.update(extra)
    return data


def test_a_transition_weighs_its_two_clips_over_the_overlap_and_only_pictures_are_visible():
    t = Timeline.from_wire(base())
    c1, c2, c3 = (t.clip_by_id[k] for k in ("c1", "c2", "c3"))
    assert t.overlap_of(t.transitions[0]) == (6, 10)
    assert [t.weight(c1, n) for n in (5, 6, 8, 9)] == [1.0, 1.0, 0.5, 0.25]
    assert [t.weight(c2, n) for n in (6, 8, 9, 10)] == [0.0, 0.5, 0.75, 1.0]
    assert t.dissolve_step(c1, c2, 8) == (2, 4)
    assert [c.id for c, _ in t.visible(8)] == ["c1", "c2"]  # c3: sound only
    assert t.sounds(c1) and t.sounds(c3) and not t.is_video(c3)
    assert c3.gain == pytest.approx(10 ** (-6 / 20))
    assert Timeline.from_wire(t.to_wire()) == t


def test_an_old_timeline_without_the_new_fields_still_reads():
    data = base()
    for m in data["media"]:
        for k in ("audio_rate", "audio_channels", "audio_layout", "audio_samples"):
            m.pop(k)
    data["media"].pop()
    data["tracks"] = [{"id": "t1", "name": "V1"}]
    data["clips"] = [data["clips"][0]]
    del data["transitions"]
    t = Timeline.from_wire(data)
    assert t.output.audio_rate == 48000 and t.output.channels == 2
    assert t.tracks[0].kind == "video" and t.clips[0].gain_db == 0.0 and not t.media[0].has_audio


def silent_video_on_the_audio_track(d: dict[str, Any]) -> None:
    d["media"][0].update(audio_rate=0)
    del d["transitions"]
    d["clips"] = [{**d["clips"][0], "track": "a1", "position": 45}]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("transitions"), "c1 and c2 overlap on t1 without a transition"),
        (lambda d: d["clips"][2].update(track="t1", position=30), "s has no video for video"),
        (silent_video_on_the_audio_track, "v has no audio for audio track a1"),
        (lambda d: d["transitions"][0].update(curve="cubic"), "curve 'cubic'"),
        (lambda d: d["transitions"][0].update(a="c2", b="c1"), "c2 must start first"),
        (lambda d: d["clips"][2].update(gain_db=30.0), "gain_db 30.0 is not within -96..24"),
        (lambda d: d["output"].update(audio_rate=12345), "audio_rate 12345 is not one of"),
        (lambda d: d["output"].update(audio_layout="7.1"), "audio_layout '7.1'"),
        (lambda d: d["tracks"][1].update(kind="midi"), "kind 'midi'"),
        (lambda d: d["media"][1].update(audio_rate=0), "neither video"),
    ],
)  # fmt: skip
def test_a_timeline_that_breaks_the_sound_rules_is_refused_naming_why(change, message):
    data = base()
    change(data)
    with pytest.raises(BadTimeline, match=message.replace("(", r"\(").replace(".", r"\.")):
        Timeline.from_wire(data)
