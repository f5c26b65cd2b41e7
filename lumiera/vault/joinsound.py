"""The sound of a join (:mod:`lumiera.vault.join`): its file probed, its packets, its check.

A farm render's sound is one file of one audio stream (the whole range's,
encoded once); the join copies its packets beside the pictures' and checks the
joined file has it (or, without sound, has none).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from lumiera.errors import JoinFailed, JoinMismatch, JoinRefused


def only_stream(
    container: av.container.InputContainer, path: Path, kind: type[Any], what: str
) -> Any:
    """The file's one stream, which must be of ``kind`` (JoinRefused naming what it has)."""
    streams = list(container.streams)
    if len(streams) != 1 or not isinstance(streams[0], kind):
        kinds = ", ".join(s.type for s in streams) or "none"
        raise JoinRefused(f"{path}: {what}, this has: {kinds}")
    return streams[0]


def sound_stream(container: av.container.InputContainer, path: Path) -> AudioStream:
    """The sound file's one stream, which must be audio."""
    stream: AudioStream = only_stream(container, path, AudioStream, "the sound is one audio stream")
    return stream


def probe_sound(path: Path) -> str:
    """The sound file's codec, after checking it is one audio stream with packets."""
    try:
        with av.open(str(path)) as src:
            stream = sound_stream(src, path)
            if not any(p.size for p in src.demux(stream)):
                raise JoinRefused(f"{path}: no sound in it")
            return str(stream.codec_context.name)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise JoinFailed(f"cannot read the sound {path}: {e}") from None


def timed_sound(
    src: av.container.InputContainer, stream: AudioStream, target: AudioStream
) -> Iterator[tuple[Fraction, int, av.Packet[Any]]]:
    """The sound's packets as they are (timestamps from the range's start), with their time."""
    assert stream.time_base is not None
    base = Fraction(stream.time_base)
    for packet in packets(src, stream):
        stamp = packet.dts if packet.dts is not None else packet.pts
        packet.stream = target
        yield (stamp or 0) * base, 1, packet


def video_of_joined(container: av.container.InputContainer, path: Path) -> VideoStream:
    """The joined file's one video stream (JoinMismatch unless it is that and at most a sound)."""
    videos, sounds = container.streams.video, container.streams.audio
    if len(videos) != 1 or len(sounds) > 1 or len(container.streams) != len(videos) + len(sounds):
        kinds = ", ".join(s.type for s in container.streams) or "none"
        raise JoinMismatch(f"{path}: one video stream (and a sound) expected, it has: {kinds}")
    return videos[0]


def verify_sound(path: Path, wanted: bool) -> None:
    """The joined file has a sound stream with packets if ``wanted``, else none (JoinMismatch)."""
    with av.open(str(path)) as src:
        sounds = src.streams.audio
        if not wanted and sounds:
            raise JoinMismatch(f"{path}: a sound stream that none was given for")
        if wanted and not (sounds and any(p.size for p in src.demux(sounds[0]))):
            raise JoinMismatch(f"{path}: its sound is missing")


def packets(container: av.container.InputContainer, stream: AudioStream) -> Iterator[Any]:
    """The stream's packets without the demuxer's empty flush packets."""
    for packet in container.demux(stream):
        if packet.size:
            yield packet
