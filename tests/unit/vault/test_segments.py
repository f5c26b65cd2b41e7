"""Segments of a render range, and segment files joined by remuxing into one exact file.

The parts are written as the Player writes a segment: the Vault's own
:class:`Encoder`, a fresh one per segment, its first frame at PTS 0. Every
frame carries its number (mediakit), so a join is exact when frame ``i`` of
the joined file shows ``i``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import pytest
from av.video.stream import VideoStream
from hypothesis import given
from hypothesis import strategies as st

from lumiera.errors import BadArguments, JoinFailed, JoinMismatch, JoinRefused
from lumiera.vault import join as join_module
from lumiera.vault.codecs import REGISTRY, Encoder
from lumiera.vault.codecspec import EncoderSpec
from lumiera.vault.segments import Segment, job_id, join, split

from .mediakit import coded_planes, fill, read_code

RATE = Fraction(25)
FRAMES = 23  # not a multiple of the segment length
FFV1 = REGISTRY.encoder("ffv1")
_veryfast = REGISTRY.encoder("h264-veryfast")
H264_B = replace(_veryfast, options={**_veryfast.options, "bf": "3"})  # B-frames, pyramid
SPECS = {"ffv1": FFV1, "h264-bframes": H264_B}


# -- split -----------------------------------------------------------------------------


@given(
    first=st.integers(0, 10_000),
    count=st.integers(1, 500),
    segment_frames=st.integers(1, 120),
)
def test_split_covers_the_range_exactly_in_whole_frame_segments(
    first: int, count: int, segment_frames: int
) -> None:
    segments = split(first, count, segment_frames, job="j1")
    covered = [f for s in segments for f in range(s.first, s.end)]
    assert covered == list(range(first, first + count))  # each frame once, in order
    assert [s.index for s in segments] == list(range(len(segments)))
    assert all(s.count == segment_frames for s in segments[:-1])
    assert 1 <= segments[-1].count <= segment_frames
    assert len(segments) == -(-count // segment_frames)
    assert len({s.key for s in segments}) == len(segments)


@pytest.mark.parametrize(
    ("first", "count", "segment_frames", "counts"),
    [
        (0, 23, 5, [5, 5, 5, 5, 3]),  # count not a multiple
        (100, 3, 1, [1, 1, 1]),  # 1-frame segments
        (7, 1, 50, [1]),  # one frame, one segment
        (0, 50, 50, [50]),  # exactly one segment
        (10, 51, 25, [25, 25, 1]),  # a 1-frame tail
    ],
)
def test_split_cases(first: int, count: int, segment_frames: int, counts: list[int]) -> None:
    segments = split(first, count, segment_frames, job="j")
    assert [s.count for s in segments] == counts
    assert segments[0].first == first and segments[-1].end == first + count


def test_a_segments_key_is_stable_and_belongs_to_its_job_and_range() -> None:
    job = job_id(b"timeline wire form", "0:250", "h264")
    assert job == job_id(b"timeline wire form", "0:250", "h264")  # a retry, a restart
    assert re.fullmatch(r"[0-9a-f]{24}", job)
    assert job != job_id(b"timeline wire form", "0:250", "ffv1")
    assert job_id("ab", "c") != job_id("a", "bc")
    again = split(0, 250, 50, job=job)
    assert split(0, 250, 50, job=job) == again
    assert again[1] == Segment(1, 50, 50, f"lumiera-segment-{job}-50-50")
    other = split(0, 250, 50, job=job_id("another timeline"))
    assert not {s.key for s in again} & {s.key for s in other}


@pytest.mark.parametrize(
    ("first", "count", "segment_frames", "job"),
    [(-1, 5, 2, "j"), (0, 0, 2, "j"), (0, 5, 0, "j"), (0, 5, 2, "")],
)
def test_split_refuses_an_empty_range_a_bad_length_or_no_job(
    first: int, count: int, segment_frames: int, job: str
) -> None:
    with pytest.raises(BadArguments):
        split(first, count, segment_frames, job=job)


# -- rendering segments ----------------------------------------------------------------


def _suffix(spec: EncoderSpec) -> str:
    return ".mkv" if spec.container == "matroska" else ".mp4"


def encode(path: Path, spec: EncoderSpec, first: int, count: int, rate: Fraction = RATE) -> Path:
    """Frames first..first+count-1 into ``path`` as the Player renders a segment."""
    with Encoder(path, spec, 64, 48, rate) as encoder:
        for number in range(first, first + count):
            encoder.write(coded_planes(number))
    return path


def render_segments(
    d: Path, spec: EncoderSpec, segments: list[Segment], rate: Fraction = RATE
) -> list[Path]:
    return [
        encode(d / f"part{s.index}{_suffix(spec)}", spec, s.first, s.count, rate) for s in segments
    ]


@dataclass
class Probe:
    codes: list[int]  # each frame's coded number, in presentation order
    shown: list[int]  # presentation timestamps, sorted
    decode_order: list[tuple[int, int]]  # (pts, dts) of each packet
    time_base: Fraction
    duration: Fraction  # seconds: the stream's or the container's


def probe(path: Path) -> Probe:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.time_base is not None
        packets: list[tuple[int, int]] = []
        for packet in c.demux(stream):
            if packet.size:
                assert packet.pts is not None and packet.dts is not None
                packets.append((packet.pts, packet.dts))
        recorded = stream.duration
        whole = c.duration
        time_base = Fraction(stream.time_base)
    with av.open(str(path)) as c:
        codes = [read_code(f.to_ndarray(format="gray")) for f in c.decode(video=0)]
    assert whole is not None
    duration = recorded * time_base if recorded is not None else Fraction(whole, 1_000_000)
    return Probe(codes, sorted(p for p, _ in packets), packets, time_base, duration)


def _steps(shown: list[int]) -> set[int]:
    return {b - a for a, b in itertools.pairwise(shown)}


def _names(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("segment_frames", [5, 1, FRAMES])
def test_joined_segments_are_exactly_the_frames_of_a_single_encode(
    tmp_path: Path, name: str, segment_frames: int
) -> None:
    spec = SPECS[name]
    segments = split(0, FRAMES, segment_frames, job="t")
    parts = render_segments(tmp_path, spec, segments)
    out = tmp_path / f"joined{_suffix(spec)}"

    report = join(parts, out, RATE, FRAMES, counts=[s.count for s in segments])

    joined = probe(out)
    assert joined.codes == list(range(FRAMES))  # every frame, once, in order
    assert len(_steps(joined.shown)) == 1 and min(_steps(joined.shown)) > 0  # uniform, increasing
    assert joined.shown[0] == 0
    assert joined.duration == Fraction(FRAMES) / RATE == report.duration
    single = probe(encode(tmp_path / f"single{_suffix(spec)}", spec, 0, FRAMES))
    assert joined.codes == single.codes
    assert joined.shown == single.shown and joined.time_base == single.time_base
    assert joined.duration == single.duration
    assert report.frames == FRAMES and report.rate == RATE
    assert report.parts == tuple((s.first, s.count) for s in segments)
    assert report.size == out.stat().st_size
    assert not [n for n in _names(tmp_path) if "partial" in n]


def test_the_h264_parts_really_have_b_frames_and_their_first_dts_is_before_their_first_frame(
    tmp_path: Path,
) -> None:
    """What the join must not be misled by: a segment's first DTS is 2 frames early."""
    part = probe(encode(tmp_path / "part.mp4", H264_B, 0, 10))
    ticks = part.shown[1] - part.shown[0]
    assert [p for p, _ in part.decode_order] != part.shown  # reordered: B-frames
    assert part.decode_order[0] == (0, -2 * ticks)  # the reorder delay of bf=3 with pyramid


def test_the_check_catches_a_join_offset_by_each_parts_first_dts(tmp_path: Path) -> None:
    """The mistake FINDINGS warns of: every part lands the reorder delay late."""
    segments = split(0, FRAMES, 5, job="t")
    parts = render_segments(tmp_path, H264_B, segments)
    naive = tmp_path / "naive.mp4"
    with av.open(str(naive), "w") as dst:
        target = None
        for part, segment in zip(parts, segments, strict=True):
            with av.open(str(part)) as src:
                stream = src.streams.video[0]
                target = target or dst.add_stream_from_template(stream)
                packets = [p for p in src.demux(stream) if p.size]
                assert packets[0].dts is not None
                shift = segment.first * 512 - packets[0].dts  # 512 ticks a frame
                for packet in packets:
                    assert packet.pts is not None and packet.dts is not None
                    packet.stream = target
                    packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                    dst.mux(packet)
    with pytest.raises(JoinMismatch, match="first frame is at tick 1024, not 0"):
        join_module._verify(naive, RATE, FRAMES)


def test_parts_at_an_ntsc_rate_join_exactly_where_the_container_can_say_so(
    tmp_path: Path,
) -> None:
    rate = Fraction(30000, 1001)
    for spec in (H264_B, FFV1):
        d = tmp_path / spec.codec
        d.mkdir()
        segments = split(0, FRAMES, 4, job="ntsc")
        out = d / f"out{_suffix(spec)}"
        report = join(render_segments(d, spec, segments, rate), out, rate, FRAMES)
        joined = probe(out)
        assert joined.codes == list(range(FRAMES))
        frame = 1 / (rate * joined.time_base)  # a frame's duration in ticks
        assert all(abs(pts - i * frame) < 1 for i, pts in enumerate(joined.shown))
        if spec is H264_B:  # MP4 at 1/30000: exact
            assert report.duration == FRAMES / rate == joined.duration
        else:  # Matroska counts milliseconds: to the millisecond
            assert abs(report.duration - FRAMES / rate) < Fraction(1, 1000)


def _write_packets(path: Path, spec: EncoderSpec, frames: list[int], first_pts: int) -> Path:
    """Coded frames written with their PTS from ``first_pts`` (not 0, as the Player would)."""
    with av.open(str(path), "w", format=spec.container) as out:
        stream = cast(VideoStream, out.add_stream(spec.codec, rate=RATE))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = dict(spec.options)
        for i, number in enumerate(frames):
            frame = av.VideoFrame(64, 48, "yuv420p")
            fill(frame, coded_planes(number))
            frame.pts = first_pts + i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def test_parts_stamped_from_their_position_on_the_timeline_join_the_same(
    tmp_path: Path,
) -> None:
    segments = split(0, FRAMES, 6, job="t")
    parts = [
        _write_packets(tmp_path / f"p{s.index}.mp4", H264_B, list(range(s.first, s.end)), s.first)
        for s in segments
    ]
    out = tmp_path / "out.mp4"
    join(parts, out, RATE, FRAMES)
    joined = probe(out)
    assert joined.codes == list(range(FRAMES))
    assert len(_steps(joined.shown)) == 1 and joined.duration == FRAMES / RATE


# -- refusals and failures: no file, no partial ----------------------------------------


def _refused(
    tmp_path: Path,
    parts: list[Path],
    out: Path,
    error: type[BaseException],
    match: str | None,
    **kw: object,
) -> None:
    before = _names(tmp_path)
    with pytest.raises(error, match=match):
        join(parts, out, RATE, kw.pop("frames", FRAMES), **kw)  # type: ignore[arg-type]
    assert _names(tmp_path) == before  # nothing written, nothing left


@pytest.mark.parametrize(
    ("head_spec", "make_other", "match"),
    [
        (FFV1, lambda d: encode(d / "o.mp4", H264_B, 10, 13), r"codec: h264, part 0 has ffv1"),
        (
            FFV1,
            lambda d: encode(d / "o.mkv", FFV1, 10, 13, Fraction(50)),
            r"at 50 fps, the join at 25",
        ),
        (FFV1, lambda d: _ffv1_sized(d / "o.mkv", 10, 13), r"size: 32x48, part 0 has 64x48"),
        # other x264 settings (ultrafast: no CABAC, no B-frames): other SPS/PPS
        (H264_B, lambda d: encode(d / "o.mp4", REGISTRY.encoder("h264"), 10, 13), r"headers"),
    ],
    ids=["codec", "rate", "size", "settings"],
)
def test_parts_that_cannot_make_one_stream_are_refused_before_anything_is_written(
    tmp_path: Path, head_spec: EncoderSpec, make_other: Callable[[Path], Path], match: str
) -> None:
    other = make_other(tmp_path)
    head = encode(tmp_path / f"head{_suffix(head_spec)}", head_spec, 0, 10)
    out = tmp_path / f"out{_suffix(head_spec)}"
    _refused(tmp_path, [head, other], out, JoinRefused, match)


def _ffv1_sized(path: Path, first: int, count: int) -> Path:
    with Encoder(path, FFV1, 32, 48, RATE) as encoder:
        for number in range(first, first + count):
            encoder.write(tuple(p[:, : p.shape[1] // 2].copy() for p in coded_planes(number)))
    return path


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("off_by", [-1, 1])
def test_a_segment_with_a_frame_missing_or_extra_fails_the_check_and_leaves_no_file(
    tmp_path: Path, name: str, off_by: int
) -> None:
    spec = SPECS[name]
    segments = split(0, FRAMES, 5, job="t")
    parts = render_segments(tmp_path, spec, segments)
    bad = segments[2]
    encode(parts[2], spec, bad.first, bad.count + off_by)  # the retried task went wrong
    out = tmp_path / f"out{_suffix(spec)}"
    _refused(tmp_path, parts, out, JoinMismatch, rf"{FRAMES + off_by} frames joined, {FRAMES}")
    # with the segments' counts, the part is named before anything is written
    counts = [s.count for s in segments]
    _refused(
        tmp_path,
        parts,
        out,
        JoinRefused,
        rf"part 2 .* has {bad.count + off_by} frames, its segment 5",
        counts=counts,
    )


def test_a_part_that_does_not_start_on_a_keyframe_is_refused(tmp_path: Path) -> None:
    whole = encode(tmp_path / "whole.mp4", REGISTRY.encoder("h264"), 0, 8)
    cut = tmp_path / "cut.mp4"
    with av.open(str(whole)) as src, av.open(str(cut), "w") as dst:
        stream = src.streams.video[0]
        target = dst.add_stream_from_template(stream)
        for i, packet in enumerate(p for p in src.demux(stream) if p.size):
            if i >= 2:  # no keyframe: the first was packet 0
                packet.stream = target
                dst.mux(packet)
    head = encode(tmp_path / "head.mp4", REGISTRY.encoder("h264"), 0, 4)
    _refused(tmp_path, [head, cut], tmp_path / "out.mp4", JoinRefused, "keyframe", frames=10)


def test_a_part_that_is_not_media_fails_the_join_and_an_existing_output_stays(
    tmp_path: Path,
) -> None:
    head = encode(tmp_path / "head.mkv", FFV1, 0, 4)
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"not a video at all" * 100)
    out = tmp_path / "out.mkv"
    out.write_bytes(b"the previous render")
    _refused(tmp_path, [head, junk], out, JoinFailed, "cannot read part .*junk.mkv", frames=8)
    assert out.read_bytes() == b"the previous render"
    _refused(tmp_path, [head, tmp_path / "gone.mkv"], out, JoinFailed, "gone.mkv", frames=8)


def test_an_interrupted_join_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = render_segments(tmp_path, FFV1, split(0, 10, 5, job="t"))
    seen: list[Path] = []

    def interrupted(path: Path, rate: Fraction, expected: int) -> Fraction:
        seen.append(path)
        assert path.exists()  # written, not yet checked or renamed
        raise KeyboardInterrupt

    monkeypatch.setattr(join_module, "_verify", interrupted)
    _refused(tmp_path, parts, tmp_path / "out.mkv", KeyboardInterrupt, None, frames=10)
    assert seen and not seen[0].exists()


def test_join_refuses_bad_arguments_and_an_output_without_a_known_container(
    tmp_path: Path,
) -> None:
    part = encode(tmp_path / "p.mkv", FFV1, 0, 2)
    for kw in ({"frames": 0}, {"counts": [1, 1]}):
        _refused(tmp_path, [part], tmp_path / "o.mkv", BadArguments, None, **kw)
    _refused(tmp_path, [], tmp_path / "o.mkv", BadArguments, "no parts")
    _refused(tmp_path, [part], tmp_path / "o.xyz", JoinFailed, "no muxer", frames=2)
    report = join([part], tmp_path / "o.xyz", RATE, 2, container="matroska")
    assert probe(report.path).codes == [0, 1]


# -- the codec settings a seamless join needs ------------------------------------------


@pytest.mark.parametrize("name", ["h264", "h264-veryfast"])
def test_h264_encodes_at_constant_quality_never_a_bit_rate(tmp_path: Path, name: str) -> None:
    path = encode(tmp_path / "q.mp4", REGISTRY.encoder(name), 0, 3)
    options = re.search(rb"x264 - core .*? options: ([^\x00]*)", path.read_bytes())
    assert options is not None
    assert b" rc=crf " in options.group(1) and b" crf=23.0 " in options.group(1)
