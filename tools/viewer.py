"""A viewer of the Player's output ring: frame stats, and every Nth frame as PNG.

Run beside a running instance (``lumiera up``; then ``lumiera send player play``)::

    .venv/bin/python tools/viewer.py viewer-640x360 --png-every 25 --out /tmp/frames
    .venv/bin/python tools/viewer.py viewer-640x360 --seconds 10

It attaches as one more consumer of the ring (read-only, in place), so it sees
the frames published after it started. Once a second it prints the frames
received, their rate, and the gaps in their numbers (frames the engine
dropped, or that this viewer missed because the drop ring gave way). With ``--png-every N`` it
writes every Nth frame (yuv420p, rgb24 or gray rings) to ``OUT/frame-<pts>.png``.
The GUI shows this ring live; this tool looks at it without a browser.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from lumiera import runtime_dir
from lumiera.errors import LumieraError, RingTimeout
from lumiera.shm.ring import Consumer


def png_bytes(pixels: np.ndarray[Any, Any]) -> bytes:
    """An 8-bit PNG of an (h, w, 3) rgb or (h, w) gray array."""
    h, w = pixels.shape[:2]
    color = 2 if pixels.ndim == 3 else 0
    rows = np.ascontiguousarray(pixels).reshape(h, -1)
    raw = b"".join(b"\0" + rows[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def rgb_of(planes: tuple[np.ndarray[Any, Any], ...]) -> np.ndarray[Any, Any]:
    """An (h, w, 3) rgb array of a yuv420p frame (BT.601, limited range), or the one plane."""
    if len(planes) == 1:
        return planes[0]
    y, u, v = planes
    h, w = y.shape
    up = np.ones((2, 2), np.float32)
    cb = np.kron(u.astype(np.float32) - 128, up)[:h, :w]
    cr = np.kron(v.astype(np.float32) - 128, up)[:h, :w]
    luma = (y.astype(np.float32) - 16) * 1.164
    rgb = np.stack([luma + 1.596 * cr, luma - 0.392 * cb - 0.813 * cr, luma + 2.017 * cb], axis=-1)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ring", help="ring name, e.g. viewer-640x360")
    p.add_argument("--instance", default="default")
    p.add_argument("--runtime-dir")
    p.add_argument("--png-every", type=int, default=0, metavar="N", help="write every Nth frame")
    p.add_argument("--out", default=".", help="directory of the PNG files")
    p.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    args = p.parse_args(argv)
    rd = runtime_dir.resolve(args.instance, args.runtime_dir)
    out = Path(args.out)
    if args.png_every:
        out.mkdir(parents=True, exist_ok=True)
    try:
        consumer = Consumer(rd, args.ring, timeout=1.0)
    except LumieraError as e:
        print(f"viewer: {e}", file=sys.stderr)
        return 1
    frames = gaps = written = 0
    last_pts: int | None = None
    started = last_report = time.monotonic()
    try:
        while args.seconds is None or time.monotonic() - started < args.seconds:
            try:
                frame = consumer.acquire(1.0)
            except RingTimeout:
                frame = None
            if frame is not None:
                try:
                    frames += 1
                    if last_pts is not None and frame.pts > last_pts + 1:
                        gaps += frame.pts - last_pts - 1
                    last_pts = frame.pts
                    if args.png_every and frame.pts % args.png_every == 0:
                        pixels = png_bytes(rgb_of(frame.planes))
                        (out / f"frame-{frame.pts:06d}.png").write_bytes(pixels)
                        written += 1
                finally:
                    consumer.release(frame)
            now = time.monotonic()
            if now - last_report >= 1.0:
                rate = frames / (now - started)
                print(
                    f"viewer: {frames} frames ({rate:.1f}/s), last {last_pts}, "
                    f"{gaps} missing in the sequence, {written} PNG written"
                )
                last_report = now
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    print(f"viewer: {frames} frames, {gaps} missing, {written} PNG in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
