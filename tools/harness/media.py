"""Generated H.264 media for the benchmarks that decode: written with PyAV, timed."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

Pixels = np.ndarray[Any, np.dtype[np.uint8]]


@dataclass
class Media:
    """A file written by :func:`write_h264`."""

    path: Path
    frames: int
    bytes: int
    encode_s: float
    rate: int

    @property
    def mbit_s(self) -> float:
        return self.bytes * 8 / (self.frames / self.rate) / 1e6


def plane(frame: av.VideoFrame, i: int) -> Pixels:
    """Plane ``i`` of a yuv420p frame as a (height, width) view, without the line padding."""
    p = frame.planes[i]
    w = frame.width if i == 0 else (frame.width + 1) // 2
    h = frame.height if i == 0 else (frame.height + 1) // 2
    raw: Pixels = np.frombuffer(memoryview(p), np.uint8).reshape(-1, p.line_size)
    return raw[:h, :w]


def write_h264(
    path: Path,
    frames: int,
    paint: Callable[[av.VideoFrame, int], None],
    *,
    size: tuple[int, int],
    rate: int,
    options: Mapping[str, str],
) -> Media:
    """An MP4 of ``frames`` yuv420p frames, each painted by ``paint(frame, k)``, through
    libx264 (``options``, threads AUTO); timed from the opening of the file to its close."""
    t0 = time.perf_counter()
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = dict(options)
        stream.thread_type = "AUTO"
        for k in range(frames):
            frame = av.VideoFrame(size[0], size[1], "yuv420p")
            paint(frame, k)
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return Media(path, frames, path.stat().st_size, time.perf_counter() - t0, rate)
