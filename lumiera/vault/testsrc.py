"""Synthetic media, as ffmpeg's ``testsrc`` and ``sine`` make: for the demo and benchmarks.

:func:`write_clip` writes ``frames`` frames of a moving pattern with PyAV
(H.264 in MP4 by default; ``codec="ffv1"`` for Matroska). Each frame shows
colour bars sliding sideways, a square moving along a diagonal, and a bar
whose length is the frame number, so a cut or an overlay is visible. With
``tone`` (Hz) the clip has sound too: a stereo sine (AAC in MP4, FLAC in
Matroska). :func:`write_tone` writes sound alone (a WAV or FLAC file).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

BARS = np.array(
    [[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16], [235, 16, 235], [235, 16, 16],
     [16, 16, 235], [16, 16, 16]],
    np.uint8,
)  # fmt: skip


def pattern(
    index: int, width: int, height: int, hue: int = 0
) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Frame ``index`` of the pattern as rgb24; ``hue`` rolls the bars' colours."""
    cols = (np.arange(width) * 8 // width + index // 4 + hue) % 8
    rgb = np.repeat(BARS[cols][None, :, :], height, axis=0)
    side = max(4, height // 6)
    y = (index * 3) % max(1, height - side)
    x = (index * 5) % max(1, width - side)
    rgb[y : y + side, x : x + side] = (255 - 40 * hue) % 256, 128, 40 * hue % 256
    bar = min(width, (index * 4) % (width + 1))
    rgb[height - max(2, height // 20) :, :bar] = 255
    return rgb


def write_clip(
    path: Path,
    frames: int,
    *,
    width: int = 640,
    height: int = 360,
    rate: int = 25,
    codec: str = "libx264",
    hue: int = 0,
    tone: float | None = None,
    audio_rate: int = 48000,
) -> Path:
    """Write ``frames`` frames of the pattern (and, with ``tone``, a sine); returns the path."""
    options: dict[str, object] = {"preset": "ultrafast"} if codec == "libx264" else {}
    with av.open(str(path), "w") as out:
        stream = cast(VideoStream, out.add_stream(codec, rate=Fraction(rate)))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options
        sound = None
        if tone is not None:
            name = "flac" if path.suffix in (".mkv", ".flac") else "aac"
            sound = cast(AudioStream, out.add_stream(name, rate=audio_rate, layout="stereo"))
        for k in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern(k, width, height, hue), format="rgb24")
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
            if sound is not None and tone is not None:
                first, end = k * audio_rate // rate, (k + 1) * audio_rate // rate
                for packet in sound.encode(_sine(tone, first, end - first, audio_rate)):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if sound is not None:
            for packet in sound.encode():
                out.mux(packet)
    return path


def write_tone(path: Path, seconds: float, tone: float, *, audio_rate: int = 48000) -> Path:
    """``seconds`` of a stereo sine of ``tone`` Hz, fading in and out (WAV, or FLAC by suffix)."""
    total = round(seconds * audio_rate)
    with av.open(str(path), "w") as out:
        codec = "flac" if path.suffix == ".flac" else "pcm_s16le"
        sound = cast(AudioStream, out.add_stream(codec, rate=audio_rate, layout="stereo"))
        step = audio_rate // 10
        for first in range(0, total, step):
            count = min(step, total - first)
            envelope = np.minimum(1.0, np.minimum(np.arange(first, first + count),
                                                  total - np.arange(first, first + count))
                                  / (audio_rate / 2))  # fmt: skip
            for packet in sound.encode(_sine(tone, first, count, audio_rate, envelope)):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    return path


def _sine(
    tone: float, first: int, count: int, audio_rate: int, envelope: Any = 0.25
) -> av.AudioFrame:
    """Samples ``first .. first+count-1`` of a sine, planar float, stereo, as an AudioFrame."""
    t = np.arange(first, first + count) / audio_rate
    wave = (np.sin(2 * np.pi * tone * t) * envelope * 0.5).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
    frame.sample_rate = audio_rate
    frame.pts = first
    return frame
