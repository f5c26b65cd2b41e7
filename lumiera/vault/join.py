"""Segment files joined into one by remuxing: packets copied, nothing re-encoded.

A farm render encodes each segment of a timeline with a fresh encoder
(identical settings), so every part starts on a keyframe (an IDR frame for
H.264) and needs nothing from the part before it. :func:`join` copies the
parts' packets into one file, moving each part's timestamps so that its first
frame in presentation order (its minimum PTS) lands on the output frame after
the previous part's last. The first packet's DTS is no anchor: with B-frames
it lies before the first frame by the reorder delay, and joins offset by it
drift by that delay at every join (../shared/FINDINGS.md).

Timestamps are worked out in frames: each packet's position in its part is
``(pts - min_pts) * time_base * rate``, which must be a whole frame (to within
one tick of the part's time base, as a Matroska millisecond clock rounds
29.97 fps). The output's packets are stamped in frames and the muxer rescales
them to its own time base. So a part may start at PTS 0 (as the Player's
:class:`~lumiera.vault.codecs.Encoder` writes every file) or at its segment's
position on the timeline: only the order of the parts places it.

A render with sound gives :func:`join` its sound as one more file (``audio``:
one audio stream, the whole range encoded once by
:class:`~lumiera.vault.codecs.AudioEncoder`, never per segment: each AAC
encoding primes its first frame, and parts encoded apart would gap at every
join). Its packets are copied as they are, their timestamps in samples from
the range's first (the file's time 0, as the pictures' are), interleaved with
the pictures' by time.

The file is written under a temporary name beside the target, checked
(frame count, timestamps, duration, and that the sound is there), and only
then renamed into place; on any failure the partial file is removed and no
file has the target's name.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from lumiera.errors import BadArguments, JoinFailed, JoinMismatch, JoinRefused, LumieraError
from lumiera.vault.joinsound import (
    only_stream,
    probe_sound,
    sound_stream,
    timed_sound,
    verify_sound,
    video_of_joined,
)

# The muxer for an output's suffix where the caller names none.
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".nut": "nut"}


@dataclass(frozen=True)
class JoinReport:
    """What :func:`join` wrote: the file, its frames and duration, and where each part went."""

    path: Path
    frames: int
    rate: Fraction
    duration: Fraction  # seconds, as the file records it
    codec: str
    width: int
    height: int
    parts: tuple[tuple[int, int], ...]  # each part's (first output frame, frame count)
    size: int  # bytes
    audio_codec: str = ""  # the sound's codec; "" without sound


@dataclass(frozen=True)
class _Part:
    """One part as its probe found it: what must match the others, and its frames."""

    path: Path
    codec: str
    width: int
    height: int
    pix_fmt: str
    extradata: bytes
    rate: Fraction | None
    time_base: Fraction
    start: int  # its minimum PTS: the first frame in presentation order
    frames: int


def join(
    parts: Sequence[Path],
    out: Path,
    rate: Fraction,
    expected_frames: int,
    *,
    counts: Sequence[int] | None = None,
    container: str | None = None,
    audio: Path | None = None,
) -> JoinReport:
    """Join ``parts`` (in timeline order) into ``out`` without re-encoding, and check it.

    Each part is one video stream, encoded by a fresh encoder with the same
    settings as the others. ``counts``, if given, is each part's frame count
    (its segment's ``count``), checked before anything is written. The muxer is
    ``container`` or the one of ``out``'s suffix (:data:`MUXERS`). When this
    returns, ``out`` holds exactly ``expected_frames`` frames at ``rate``, their
    timestamps strictly increasing in uniform steps, and lasts
    ``expected_frames / rate`` seconds (to one tick of its time base: exactly,
    wherever that time base can express a frame's duration); a file already
    there under that name is replaced. ``audio``: a file of one audio stream
    (the range's sound, from the first frame's time on), copied in beside them.

    Raises BadArguments (no parts, a count that is not positive, ``counts`` of
    another length, a rate that is not positive), JoinRefused (parts that
    differ in codec, size, pixel format, rate or codec headers, a part that
    does not start on a keyframe or whose frames are not consecutive, a part
    whose frame count is not its ``counts`` entry: nothing is written),
    JoinMismatch (the written file fails the check above) and JoinFailed (a
    part cannot be read, ``out`` cannot be written, no muxer for its suffix).
    After any of them, and after an interruption, no file has ``out``'s name
    and no partial file is left.
    """
    rate = Fraction(rate)
    if not parts:
        raise BadArguments("nothing to join: no parts")
    if expected_frames < 1 or rate <= 0:
        raise BadArguments(f"cannot join to {expected_frames} frames at {rate} fps")
    if counts is not None and len(counts) != len(parts):
        raise BadArguments(f"{len(counts)} frame counts for {len(parts)} parts")
    muxer = container or MUXERS.get(out.suffix.lower())
    if muxer is None:
        raise JoinFailed(f"{out}: no muxer for {out.suffix or 'no suffix'!r}; name a container")
    probed = [_probe(Path(p), rate) for p in parts]
    _refuse_mismatches(probed, counts)
    sound = None if audio is None else probe_sound(Path(audio))

    tmp = out.with_name(f".{out.name}.partial")
    try:
        placed = _write(probed, tmp, muxer, rate, audio)
        duration = _verify(tmp, rate, expected_frames)
        verify_sound(tmp, sound is not None)
        size = tmp.stat().st_size
        os.replace(tmp, out)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, LumieraError) or not isinstance(
            e, (av.error.FFmpegError, OSError, ValueError)
        ):
            raise
        raise JoinFailed(f"joining {len(parts)} parts into {out}: {e}") from None
    first = probed[0]
    return JoinReport(
        out,
        expected_frames,
        rate,
        duration,
        first.codec,
        first.width,
        first.height,
        placed,
        size,
        sound or "",
    )


def frame_at(ts: int, start: int, time_base: Fraction, rate: Fraction) -> int | None:
    """The frame (from ``start``, 0-based) at timestamp ``ts``; None if it is no whole frame.

    A whole frame is one within one tick of ``time_base``: a clock that cannot
    express a frame's duration (milliseconds at 30000/1001 fps) rounds it.
    """
    frames = (ts - start) * time_base * rate
    index = round(frames)
    ticks_off = abs(frames - index) / (time_base * rate)
    return index if ticks_off < 1 else None


def _video(container: av.container.InputContainer, path: Path) -> VideoStream:
    """The part's one stream, which must be video (segments carry no audio)."""
    stream: VideoStream = only_stream(container, path, VideoStream, "a segment is one video stream")
    return stream


def _packets(
    container: av.container.InputContainer, stream: VideoStream | AudioStream
) -> Iterator[av.Packet[Any]]:
    """The stream's packets in decode order, without the demuxer's empty flush packets."""
    for packet in container.demux(stream):
        if packet.size:
            yield packet


def _probe(path: Path, rate: Fraction) -> _Part:
    """Read a part's stream and packets (no decoding); JoinRefused if it cannot start a join.

    Raises JoinFailed if the part cannot be read.
    """
    try:
        with av.open(str(path)) as src:
            stream = _video(src, path)
            ctx = stream.codec_context
            if stream.time_base is None:
                raise JoinRefused(f"{path}: its stream has no time base")
            time_base = Fraction(stream.time_base)
            keys: list[bool] = []
            stamps: list[int] = []
            decode: list[int] = []
            for packet in _packets(src, stream):
                if packet.pts is None:
                    raise JoinRefused(f"{path}: packet {len(stamps)} has no timestamp")
                keys.append(packet.is_keyframe)
                stamps.append(packet.pts)
                if packet.dts is not None:
                    decode.append(packet.dts)
            part = _Part(
                path,
                ctx.name,
                ctx.width,
                ctx.height,
                ctx.format.name if ctx.format is not None else "",
                bytes(ctx.extradata or b""),
                Fraction(stream.average_rate) if stream.average_rate else None,
                time_base,
                min(stamps, default=0),
                len(stamps),
            )
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise JoinFailed(f"cannot read part {path}: {e}") from None
    if not stamps:
        raise JoinRefused(f"{path}: no frames")
    if part.rate is not None and part.rate != rate:
        raise JoinRefused(f"{path} is at {part.rate} fps, the join at {rate}")
    if not keys[0] or stamps[0] != part.start:
        raise JoinRefused(
            f"{path}: does not start on a keyframe shown first (not a fresh encoder's file?)"
        )
    at = [frame_at(ts, part.start, time_base, rate) for ts in stamps + decode]
    frames = sorted(f for f in at[: len(stamps)] if f is not None)
    if None in at:
        raise JoinRefused(f"{path}: a timestamp off the grid of frames at {rate} fps")
    for want, got in enumerate(frames):
        if got != want:
            raise JoinRefused(
                f"{path}: its frames are not 0..{len(frames) - 1} at {rate} fps "
                f"(frame {got} where frame {want} was due)"
            )
    return part


def _refuse_mismatches(parts: list[_Part], counts: Sequence[int] | None) -> None:
    """JoinRefused naming the first part that cannot follow part 0 (or miscounts)."""
    first = parts[0]
    for i, part in enumerate(parts):
        for what, mine, theirs in (
            ("codec", part.codec, first.codec),
            ("size", f"{part.width}x{part.height}", f"{first.width}x{first.height}"),
            ("pixel format", part.pix_fmt, first.pix_fmt),
        ):
            if mine != theirs:
                raise JoinRefused(
                    f"part {i} ({part.path}) differs in {what}: {mine}, part 0 has {theirs}"
                )
        if part.extradata != first.extradata:
            raise JoinRefused(
                f"part {i} ({part.path}) has other codec headers than part 0 "
                "(other encoder settings?)"
            )
        if counts is not None and part.frames != counts[i]:
            raise JoinRefused(
                f"part {i} ({part.path}) has {part.frames} frames, its segment {counts[i]}"
            )


def _write(
    parts: list[_Part], tmp: Path, muxer: str, rate: Fraction, audio: Path | None = None
) -> tuple[tuple[int, int], ...]:
    """Copy every part's packets into ``tmp``, stamped in frames; each part's (first, count).

    The sound's packets (``audio``) go in too, each where its time falls among the
    pictures' (the muxer would otherwise hold all the pictures, then write the sound).
    """
    placed: list[tuple[int, int]] = []
    with av.open(str(tmp), "w", format=muxer) as dst, contextlib.ExitStack() as held:
        timed: list[Iterator[tuple[Fraction, int, av.Packet[Any]]]] = []
        timed.append(_placed_video(parts, dst, rate, placed))
        if audio is not None:
            src = held.enter_context(av.open(str(audio)))
            stream = sound_stream(src, audio)
            target = dst.add_stream_from_template(stream)
            timed.append(timed_sound(src, stream, target))
        for _, _, packet in heapq.merge(*timed, key=lambda t: (t[0], t[1])):
            dst.mux(packet)
    return tuple(placed)


def _placed_video(
    parts: list[_Part],
    dst: av.container.OutputContainer,
    rate: Fraction,
    placed: list[tuple[int, int]],
) -> Iterator[tuple[Fraction, int, av.Packet[Any]]]:
    """Every part's packets, stamped in frames, in order, each with its decode time (s).

    Adds the output's video stream before the first packet; appends each part's
    (first frame, count) to ``placed`` once its packets are through.
    """
    frame_base = 1 / rate
    offset = 0
    target: VideoStream | None = None
    for part in parts:
        with av.open(str(part.path)) as src:
            stream = _video(src, part.path)
            if target is None:
                target = dst.add_stream_from_template(stream)
                # the rate the file declares (Matroska's default duration: the last
                # frame's duration comes from it)
                target.codec_context.framerate = rate
            for packet in _packets(src, stream):
                assert packet.pts is not None  # probed
                pts = frame_at(packet.pts, part.start, part.time_base, rate)
                dts = None
                if packet.dts is not None:
                    dts = frame_at(packet.dts, part.start, part.time_base, rate)
                if pts is None or (dts is None and packet.dts is not None):
                    raise JoinFailed(f"{part.path} changed while it was joined")
                packet.stream = target
                packet.time_base = frame_base
                packet.pts = offset + pts
                packet.dts = None if dts is None else offset + dts
                packet.duration = 1
                yield (offset + (pts if dts is None else dts)) * frame_base, 0, packet
        placed.append((offset, part.frames))
        offset += part.frames


def _verify(path: Path, rate: Fraction, expected: int) -> Fraction:
    """The duration of the joined file in seconds, after checking it; JoinMismatch if it is off.

    Checks: one video stream (and at most one audio stream beside it, checked by
    :func:`~lumiera.vault.joinsound.verify_sound`) of ``expected`` packets (frames); presentation
    timestamps strictly increasing, frame ``i`` at ``i / rate`` (to
    within a tick); decode timestamps strictly increasing; the first packet a
    keyframe; the duration ``expected / rate`` (to within a tick).
    """
    with av.open(str(path)) as src:
        stream = video_of_joined(src, path)
        assert stream.time_base is not None
        time_base = Fraction(stream.time_base)
        shown: list[int] = []
        decoded: list[int] = []
        first_key = None
        end = None
        for packet in _packets(src, stream):
            if packet.pts is None:
                raise JoinMismatch(f"{path}: packet {len(shown)} has no timestamp")
            if first_key is None:
                first_key = packet.is_keyframe
            shown.append(packet.pts)
            if packet.dts is not None:
                decoded.append(packet.dts)
            stop = packet.pts + (packet.duration or 0)
            end = stop if end is None else max(end, stop)
        recorded = stream.duration
    if len(shown) != expected:
        raise JoinMismatch(f"{path}: {len(shown)} frames joined, {expected} expected")
    if not first_key:
        raise JoinMismatch(f"{path}: does not start on a keyframe")
    ticks = 1 / (time_base * rate)  # a frame's duration in ticks of the time base
    shown.sort()
    start = shown[0]
    if start != 0:
        raise JoinMismatch(f"{path}: its first frame is at tick {start}, not 0")
    for i, pts in enumerate(shown):
        if i and pts <= shown[i - 1]:
            raise JoinMismatch(
                f"{path}: frames {i - 1} and {i} have timestamps {shown[i - 1]}, {pts}"
            )
        if abs(pts - start - i * ticks) >= 1:
            raise JoinMismatch(
                f"{path}: frame {i} is at tick {pts - start}, not {float(i * ticks):g} "
                f"(steps of {float(ticks):g} ticks of {time_base})"
            )
    if any(b <= a for a, b in itertools.pairwise(decoded)):
        raise JoinMismatch(f"{path}: decode timestamps do not increase")
    length = recorded if recorded is not None else (end or start) - start
    if abs(length - expected * ticks) >= 1:
        raise JoinMismatch(
            f"{path}: lasts {float(length * time_base):g} s, "
            f"{expected} frames at {rate} fps are {float(expected / rate):g} s"
        )
    return Fraction(length) * time_base
