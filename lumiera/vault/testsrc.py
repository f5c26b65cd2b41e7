"""Synthetic media, as ffmpeg's ``testsrc`` makes: for the demo and benchmarks.

:func:`write_clip` writes ``frames`` frames of a moving pattern with PyAV
(H.264 in MP4 by default; ``codec="ffv1"`` for Matroska). Each frame shows
colour bars sliding sideways, a square moving along a diagonal, and a bar
whose length is the frame number, so a cut or an overlay is visible.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
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
) -> Path:
    """Write ``frames`` frames of the pattern to ``path``; returns the path."""
    options: dict[str, object] = {"preset": "ultrafast"} if codec == "libx264" else {}
    with av.open(str(path), "w") as out:
        stream = cast(VideoStream, out.add_stream(codec, rate=Fraction(rate)))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options
        for k in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern(k, width, height, hue), format="rgb24")
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
