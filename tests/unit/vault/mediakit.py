"""Helpers of the Vault media tests: video whose frames carry their own number.

A frame's number is drawn into its luma as a binary code: 16 blocks of 8x8
pixels (two rows of eight at the top left of the picture), each black (0) for
a 0 bit and white (255) for a 1 bit. Below the code the picture moves from
frame to frame, so that inter-frame coding has something to do. The code
survives what a plain gray level does not: yuv420p conversion (gray levels
come back off by one), scaling and lossy H.264. :func:`read_code` takes each
block's mean and thresholds it at 128.

Files are written with PyAV (there is no ffmpeg binary): H.264 in MP4, FFV1 in
Matroska, at 64x48 (or any size of at least 64x16) and any frame rate.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
from av.video.stream import VideoStream

from lumiera.vault.media import MediaPool

W, H = 64, 48
BLOCK = 8  # pixels per side of one bit's block
BITS = 16  # two rows of eight blocks: frame numbers up to 65535

Array = np.ndarray[Any, np.dtype[np.uint8]]
Planes = tuple[Array, Array, Array]


def luma(number: int, width: int = W, height: int = H) -> Array:
    """The Y plane of frame ``number``: its code at the top left, a moving ramp elsewhere."""
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    y = ((cols * 3 + rows * 2 + number * 7) % 160 + 48).astype(np.uint8)
    for bit in range(BITS):
        row, col = divmod(bit, 8)
        block = y[row * BLOCK : (row + 1) * BLOCK, col * BLOCK : (col + 1) * BLOCK]
        block[:] = 255 if number >> bit & 1 else 0
    return y


def coded_planes(number: int, width: int = W, height: int = H) -> Planes:
    """Frame ``number`` as yuv420p planes (neutral chroma: the picture is gray)."""
    cw, ch = (width + 1) // 2, (height + 1) // 2
    neutral = np.full((ch, cw), 128, np.uint8)
    return luma(number, width, height), neutral, neutral.copy()


def read_code(pixels: np.ndarray[Any, Any], scale: tuple[float, float] = (1.0, 1.0)) -> int:
    """The number coded in a frame (gray, rgb24 or rgba), scaled by ``scale`` (x, y)."""
    a = pixels.astype(np.float64)
    if a.ndim == 3:
        a = a[..., :3].mean(axis=2)
    bw, bh = BLOCK * scale[0], BLOCK * scale[1]
    number = 0
    for bit in range(BITS):
        row, col = divmod(bit, 8)
        # the inner half of the block: scaling blurs its edges
        top, left = int((row + 0.25) * bh), int((col + 0.25) * bw)
        bottom, right = max(int((row + 0.75) * bh), top + 1), max(int((col + 0.75) * bw), left + 1)
        if a[top:bottom, left:right].mean() >= 128:
            number |= 1 << bit
    return number


def fill(frame: av.VideoFrame, planes: tuple[Array, ...]) -> None:
    """Copy planes into a yuv420p frame (whose rows may be padded)."""
    for i, plane in enumerate(planes):
        target = frame.planes[i]
        rows = np.frombuffer(memoryview(target), np.uint8).reshape(-1, target.line_size)
        rows[: plane.shape[0], : plane.shape[1]] = plane


def write_planes(
    path: Path,
    frames: list[Planes],
    codec: str = "ffv1",
    *,
    rate: int | Fraction = 25,
    options: dict[str, str] | None = None,
) -> Path:
    """Write yuv420p frames given as planes to ``path`` (the container from its suffix)."""
    height, width = frames[0][0].shape
    with av.open(str(path), "w") as out:
        stream = cast(VideoStream, out.add_stream(codec, rate=rate))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = dict(options or {})
        for i, planes in enumerate(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            fill(frame, planes)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_video(
    path: Path,
    frames: int,
    codec: str = "libx264",
    *,
    rate: int | Fraction = 25,
    options: dict[str, str] | None = None,
    first: int = 0,
    width: int = W,
    height: int = H,
) -> Path:
    """Write ``frames`` coded frames numbered from ``first`` to ``path``."""
    coded = [coded_planes(first + i, width, height) for i in range(frames)]
    return write_planes(path, coded, codec, rate=rate, options=options)


def keyframes(path: Path) -> list[int]:
    """Frame numbers of the keyframes of ``path``'s video (from the packets' timestamps)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate is not None
        assert stream.time_base is not None
        rate = Fraction(stream.average_rate)
        base = Fraction(stream.time_base)
        start = stream.start_time or 0
        found = [
            round((packet.pts - start) * base * rate)
            for packet in container.demux(stream)
            if packet.is_keyframe and packet.pts is not None
        ]
    return sorted(found)


def image(pool: MediaPool, path: Path | str, index: int, fmt: str = "gray", **kw: Any) -> Array:
    """A frame as one array (every format but yuv420p)."""
    pixels = pool.frame(str(path), index, fmt, **kw)
    assert isinstance(pixels, np.ndarray)
    return pixels


def planes_of(pool: MediaPool, path: Path | str, index: int, **kw: Any) -> tuple[Array, ...]:
    """A frame as yuv420p planes."""
    planes = pool.frame(str(path), index, "yuv420p", **kw)
    assert isinstance(planes, tuple)
    return planes


def code_at(pool: MediaPool, path: Path | str, index: int) -> int:
    """The number coded in frame ``index`` of ``path``."""
    return read_code(image(pool, path, index))
