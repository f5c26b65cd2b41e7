"""Helpers of the audio tests: sound with beeps at known samples, written with PyAV.

A beep is a 1 kHz sine that starts at sample 0 of its phase at a known
sample; :func:`onset` finds where a decoded signal first rises above a
threshold, so that a beep's start can be located to the sample. Files are
written with PyAV's bundled encoders: WAV (pcm_s16le), FLAC, AAC in MP4 and
M4A, MP3 (libmp3lame), and H.264 or FFV1 video with sound (:func:`write_av`).
:func:`media_of` describes a file as a session's probe would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from lumiera.bus.timeline import Media
from tests.unit.vault.mediakit import H, W, coded_planes, fill

Signal = np.ndarray[Any, np.dtype[np.float64]]

# suffix -> (codec, sample format it is fed)
CODECS = {
    ".wav": ("pcm_s16le", "s16"),
    ".flac": ("flac", "s16"),
    ".mp4": ("aac", "fltp"),
    ".m4a": ("aac", "fltp"),
    ".mp3": ("libmp3lame", "fltp"),
    ".mkv": ("flac", "s16"),
    ".aac": ("aac", "fltp"),
}
FREQ = 1000.0


def has_encoder(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError):
        return False
    return True


def beeps(
    rate: int,
    samples: int,
    at: Sequence[int],
    length: int,
    *,
    channels: int = 1,
    amplitude: float = 0.5,
    first: int = 0,
) -> Signal:
    """Samples ``first .. first+samples-1`` of silence with a 1 kHz beep of ``length``
    samples from each sample in ``at`` (its phase 0 there)."""
    signal = np.zeros((channels, samples))
    for start in at:
        lo, hi = max(start, first), min(start + length, first + samples)
        if lo < hi:
            t = np.arange(lo - start, hi - start)
            signal[:, lo - first : hi - first] = amplitude * np.sin(2 * np.pi * FREQ * t / rate)
    return signal


def onset(signal: np.ndarray[Any, Any], threshold: float = 0.02) -> int:
    """The first sample whose magnitude exceeds ``threshold`` (-1: none).

    The beep's first sample is sin(0) = 0: its start is one sample before the
    first sample above a low threshold (sin(2 pi 1000/48000) x 0.5 = 0.065).
    """
    above = np.flatnonzero(np.abs(np.asarray(signal)) > threshold)
    return int(above[0]) - 1 if above.size else -1


def _frames(signal: Signal, rate: int, fmt: str, layout: str, size: int) -> list[av.AudioFrame]:
    frames = []
    for i in range(0, signal.shape[1], size):
        chunk = signal[:, i : i + size]
        if fmt == "s16":  # packed: channels interleaved in one plane
            data = (np.clip(chunk, -1, 1) * 32767).round().astype(np.int16).T.reshape(1, -1)
        else:
            data = chunk.astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout=layout)
        frame.sample_rate, frame.pts = rate, i
        frames.append(frame)
    return frames


def _add_audio(out: Any, signal: Signal, rate: int, codec: str, fmt: str) -> AudioStream:
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[signal.shape[0]]
    stream = cast(AudioStream, out.add_stream(codec, rate=rate))
    stream.layout, stream.format = layout, fmt
    return stream


def write_audio(
    path: Path, signal: Signal, rate: int, *, block: int = 48000, codec: str = ""
) -> Path:
    """Write ``signal`` (channels, samples; -1..1) at ``rate``; the codec from the suffix
    unless given (``aac``: fed fltp), ``.aac`` raw ADTS."""
    codec, fmt = (codec, "fltp") if codec else CODECS[path.suffix]
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[signal.shape[0]]
    with av.open(str(path), "w", format="adts" if path.suffix == ".aac" else None) as out:
        stream = _add_audio(out, signal, rate, codec, fmt)
        for frame in _frames(signal, rate, fmt, layout, block):
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_silence_flac(path: Path, rate: int, seconds: int, at: Sequence[int], length: int) -> Path:
    """A long mono FLAC, silent but for beeps at samples ``at`` (cheap: silence packs well)."""
    with av.open(str(path), "w") as out:
        stream = _add_audio(out, np.zeros((1, 1)), rate, "flac", "s16")
        quiet = np.zeros((1, rate))
        for second in range(seconds):
            lo = second * rate
            heard = any(a < lo + rate and a + length > lo for a in at)
            block = beeps(rate, rate, at, length, first=lo) if heard else quiet
            (frame,) = _frames(block, rate, "s16", "mono", rate)
            frame.pts = lo
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_av(
    path: Path,
    frames: int,
    signal: Signal,
    audio_rate: int,
    *,
    rate: int | Fraction = 25,
    video_codec: str = "libx264",
    audio_codec: str = "aac",
) -> Path:
    """``frames`` numbered video frames (mediakit's code) and ``signal`` as sound."""
    fmt = {"aac": "fltp", "flac": "s16", "pcm_s16le": "s16"}[audio_codec]
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[signal.shape[0]]
    with av.open(str(path), "w") as out:
        video = cast(VideoStream, out.add_stream(video_codec, rate=rate))
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        audio = _add_audio(out, signal, audio_rate, audio_codec, fmt)
        sounds = _frames(signal, audio_rate, fmt, layout, 1024)
        per_frame = Fraction(audio_rate) / Fraction(rate)
        for i in range(frames):
            picture = av.VideoFrame(W, H, "yuv420p")
            fill(picture, coded_planes(i))
            picture.pts = i
            for packet in video.encode(picture):
                out.mux(packet)
            while sounds and sounds[0].pts is not None and sounds[0].pts < (i + 1) * per_frame:
                for packet in audio.encode(sounds.pop(0)):
                    out.mux(packet)
        for frame in sounds:
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in (*video.encode(), *audio.encode()):
            out.mux(packet)
    return path


def media_of(path: Path, media_id: str = "m1", *, rate: Fraction = Fraction(25)) -> Media:
    """``path`` described as a session's probe would (audio-only media: frames at ``rate``)."""
    st = os.stat(path)
    with av.open(str(path)) as container:
        width = height = frames = 0
        pix_fmt = ""
        if container.streams.video:
            v = container.streams.video[0]
            width, height, pix_fmt = v.codec_context.width, v.codec_context.height, "yuv420p"
            rate = Fraction(v.average_rate or rate)
            frames = v.frames
        a = container.streams.audio[0] if container.streams.audio else None
        audio_rate = a.codec_context.sample_rate if a else 0
        samples = 0
        if a is not None:
            seconds = (
                Fraction(a.duration) * Fraction(a.time_base or 1)
                if a.duration
                else Fraction(container.duration or 0, av.time_base)
            )
            samples = round(seconds * audio_rate)
        if not frames:
            frames = int(Fraction(samples, audio_rate or 1) * rate)
    return Media(
        media_id,
        str(path),
        frames,
        rate,
        width,
        height,
        pix_fmt,
        st.st_size,
        st.st_mtime_ns,
        st.st_ino,
        audio_rate,
        a.codec_context.channels if a else 0,
        a.codec_context.layout.name if a else "",
        samples,
    )
