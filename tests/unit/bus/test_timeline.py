"""The timeline contract: round trips through msgpack, and malformed timelines named."""

from __future__ import annotations

import copy
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lumiera.bus import messages as m
from lumiera.bus.codec import pack, unpack
from lumiera.bus.commands import Commands, command
from lumiera.bus.timeline import Clip, Media, Output, Timeline, Track, rate_text
from lumiera.errors import BadArguments, BadTimeline, MediaChanged, MediaError
from lumiera.vault.media import Identity, MediaPool, check_sources

ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)
rates = st.builds(
    Fraction, st.integers(1, 120_000), st.integers(1, 1001).filter(lambda d: d > 0)
).filter(lambda r: 0 < r <= 1000)
outputs = st.builds(Output, st.integers(1, 16384), st.integers(1, 16384), rates)
medias = st.builds(
    Media,
    id=ids,
    path=st.text(min_size=1, max_size=40),
    frames=st.integers(1, 10_000),
    rate=rates,
    width=st.integers(1, 8192),
    height=st.integers(0, 8192),
    pix_fmt=st.sampled_from(["yuv420p", "rgb24", ""]),
    size=st.integers(0, 2**62),
    mtime_ns=st.integers(0, 2**62),
    inode=st.integers(0, 2**62),
    audio_rate=st.sampled_from([0, 44100, 48000]),
    audio_channels=st.integers(1, 8),
    audio_layout=st.sampled_from(["", "stereo", "mono"]),
    audio_samples=st.integers(0, 2**40),
)
tracks = st.builds(Track, ids, st.text(max_size=20))


@st.composite
def timelines(draw: st.DrawFn) -> Timeline:
    media = draw(st.lists(medias, min_size=1, max_size=4, unique_by=lambda x: x.id))
    track_list = draw(st.lists(tracks, min_size=1, max_size=4, unique_by=lambda x: x.id))
    clips, ends = [], dict.fromkeys((t.id for t in track_list), 0)
    for k in range(draw(st.integers(0, 8))):
        source = draw(st.sampled_from(media))
        track = draw(st.sampled_from(track_list))
        start = draw(st.integers(0, source.frames - 1))
        out = draw(st.integers(start + 1, source.frames))
        position = ends[track.id] + draw(st.integers(0, 50))  # after the track's last clip
        opacity = draw(st.floats(0.0, 1.0))
        clips.append(Clip(f"c{k}", source.id, track.id, position, start, out, opacity))
        ends[track.id] = position + out - start
    return Timeline(
        draw(outputs), tuple(media), tuple(track_list), tuple(clips), draw(st.integers(0, 10**9))
    )


@given(timelines())
def test_every_timeline_round_trips_through_msgpack_exactly(timeline):
    assert Timeline.from_wire(unpack(pack({"t": timeline}))["t"]) == timeline


@given(st.one_of(outputs, medias, tracks))
def test_every_part_round_trips_through_msgpack_exactly(part):
    assert type(part).from_wire(unpack(pack(part.to_wire()))) == part


@given(timelines())
def test_a_timeline_travels_as_a_request_argument_and_comes_out_checked(timeline):
    request = m.decode(m.encode(m.Request("r1", "engine", "render", {"timeline": timeline})))
    assert isinstance(request, m.Request)
    assert Timeline.from_wire(request.args["timeline"]) == timeline


def test_a_clip_defines_its_length_end_and_the_frames_it_shows_once():
    clip = Clip("c1", "m1", "t1", position=100, source_in=10, source_out=35)
    assert (clip.length, clip.end) == (25, 125)
    assert clip.shows(100) and clip.shows(124) and not clip.shows(125) and not clip.shows(99)
    assert clip.source(100) == 10 and clip.source(124) == 34
    assert clip.within(120, 10) and clip.within(90, 11) and not clip.within(125, 5)
    assert not clip.within(90, 10)


def sample() -> dict[str, Any]:
    return {
        "revision": 3,
        "output": {"width": 64, "height": 48, "rate": "30000/1001"},
        "media": [
            {
                "id": "m1",
                "path": "/a.mkv",
                "frames": 10,
                "rate": "25",
                "width": 64,
                "height": 48,
                "pix_fmt": "yuv420p",
                "size": 9,
                "mtime_ns": 2,
                "inode": 5,
            }
        ],
        "tracks": [{"id": "t1", "name": "V1"}, {"id": "t2", "name": "V2"}],
        "clips": [
            {
                "id": "c1",
                "media": "m1",
                "track": "t1",
                "position": 0,
                "source_in": 0,
                "source_out": 10,
                "opacity": 1.0,
            },
            {
                "id": "c2",
                "media": "m1",
                "track": "t2",
                "position": 5,
                "source_in": 2,
                "source_out": 4,
                "opacity": 0.5,
            },
        ],
    }


def test_the_sample_is_a_valid_timeline_and_answers_by_track_order():
    t = Timeline.from_wire(sample())
    assert t.output.rate == Fraction(30000, 1001) and rate_text(t.output.rate) == "30000/1001"
    assert t.length == 10
    assert [(c.id, s) for c, s in t.visible(5)] == [("c1", 5), ("c2", 2)]
    assert [c.id for c in t.clips_within(7, 3)] == ["c1"]
    assert t.media_of(t.clips[1]).path == "/a.mkv"


def edit(change: str) -> dict[str, Any]:
    data = copy.deepcopy(sample())
    exec(change, {"d": data})  # the one change a case makes, written as it reads
    return data


@pytest.mark.parametrize(
    "change, named",
    [
        ("del d['output']", "timeline: missing field 'output'"),
        ("d['output']['width'] = '64'", "timeline.output.width: str is not int"),
        ("d['output']['width'] = 0", "timeline.output: size 0x48 is not within 1..16384"),
        ("d['output']['rate'] = '29.97'", "timeline.output.rate: frame rate '29.97'"),
        ("d['output']['rate'] = 25.0", "timeline.output.rate: float is not a rate"),
        ("d['media'][0]['frames'] = True", "timeline.media[0].frames: bool is not int"),
        ("del d['media'][0]['size']", "timeline.media[0]: missing field 'size'"),
        ("d['media'][0]['colour'] = 'red'", "timeline.media[0]: unknown field(s) colour"),
        ("d['tracks'] = {}", "timeline.tracks: dict is not list"),
        ("d['clips'][1] = 7", "timeline.clips[1]: int is not a map"),
        ("d['clips'][1]['position'] = -1", "timeline.clips[1]: position -1 is before the start"),
        ("d['clips'][1]['source_out'] = 2", "timeline.clips[1]: source range [2, 2)"),
        ("d['clips'][1]['opacity'] = 1.5", "timeline.clips[1]: opacity 1.5 is not within 0..1"),
        ("d['clips'][1]['media'] = 'm9'", "timeline: clips[1].media: no media 'm9'"),
        ("d['clips'][1]['track'] = 't9'", "timeline: clips[1].track: no track 't9'"),
        ("d['clips'][1]['source_out'] = 11", "timeline: clips[1].source_out: 11 is past"),
        ("d['clips'][1]['track'] = 't1'", "timeline: clips: c1 and c2 overlap on t1"),
        ("d['tracks'].append({'id': 't1', 'name': 'x'})", "timeline: tracks: an id is given twice"),
        ("d['media'][0]['id'] = 'x' * 129", "timeline.media[0].id: longer than 128 characters"),
    ],
)
def test_a_malformed_timeline_is_refused_naming_the_field(change, named):
    with pytest.raises(BadTimeline) as caught:
        Timeline.from_wire(edit(change))
    assert str(caught.value).startswith(named), str(caught.value)
    assert caught.value.code == "bad_timeline"


def test_a_media_without_an_inode_is_from_a_session_made_before_it_was_recorded():
    data = edit("del d['media'][0]['inode']")
    assert Timeline.from_wire(data).media[0].inode == 0


class Renderer(Commands):
    @command
    def on_render(self, *, timeline: Timeline, first: int = 0) -> int:
        return timeline.length - first


def test_a_command_taking_a_timeline_gets_it_decoded_or_answers_bad_timeline():
    assert Renderer().handle("render", {"timeline": sample(), "first": 4}) == 6
    with pytest.raises(BadTimeline, match=r"render\.timeline\.clips\[0\]: missing field 'id'"):
        Renderer().handle("render", {"timeline": edit("del d['clips'][0]['id']")})
    with pytest.raises(BadArguments, match=r"render\.first: str is not int"):
        Renderer().handle("render", {"timeline": sample(), "first": "4"})


def probed(path: Path, frames: int = 10) -> dict[str, Any]:
    st_ = os.stat(path)
    data = edit(f"d['media'][0]['path'] = {str(path)!r}")
    data["media"][0].update(size=st_.st_size, mtime_ns=st_.st_mtime_ns, inode=st_.st_ino)
    return data


def test_check_sources_names_a_missing_file_and_a_file_replaced_since_its_probe(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"x" * 100)
    timeline = Timeline.from_wire(probed(path))
    check_sources(timeline, 0, 10)  # the file probed: fine
    replacement = tmp_path / "b.mkv"
    replacement.write_bytes(b"y" * 100)
    os.replace(replacement, path)  # same path and size, another file
    with pytest.raises(MediaChanged, match=r"media m1: .*a\.mkv changed on disk"):
        check_sources(timeline, 0, 10)
    check_sources(timeline, 10, 5)  # no clip of the range shows it
    path.unlink()
    with pytest.raises(MediaError, match=r"media m1: .*a\.mkv is missing"):
        check_sources(timeline, 0, 10)


def test_an_identity_without_an_inode_matches_on_size_and_mtime(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"x")
    now = Identity.of(str(path))
    assert Identity(now.size, now.mtime_ns, 0).matches(now)
    assert not Identity(now.size, now.mtime_ns + 1, 0).matches(now)
    assert not Identity(now.size, now.mtime_ns, now.inode + 1).matches(now)


def test_a_pool_told_what_a_media_must_be_refuses_to_decode_another_file(tmp_path):
    path = tmp_path / "a.mkv"
    path.write_bytes(b"not decoded anyway")
    media = Timeline.from_wire(probed(path)).media[0]
    pool = MediaPool()
    try:
        pool.expect(media)
        os.utime(path, ns=(0, media.mtime_ns + 10**9))  # rewritten, as far as anyone can tell
        with pytest.raises(MediaChanged, match=r"a\.mkv changed on disk"):
            pool.frame(str(path), 0, "gray")
    finally:
        pool.close()
