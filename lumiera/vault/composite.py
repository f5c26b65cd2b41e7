"""Compositing: layers of a frame, bottom to top, each over the result with its opacity.

Exact integer arithmetic, so results can be checked per pixel: with the
weight ``w = round(opacity * 256)`` (0..256), each sample is
``out = (top * w + below * (256 - w) + 128) >> 8``. Opacity 1 copies the
layer, opacity 0 leaves what is below, and opacity 0.5 is the mean of the
two rounded half up, the same whichever is on top. Works on any pixel format
whose samples are 8-bit and blend linearly (rgb24, gray, and each yuv420p
plane). numpy does the work (it releases the GIL, so engine workers run in
parallel).

Why 256 and not 255: 257 weights resolve opacity as finely as 256 do, and a
division by 256 is a shift. The earlier ``(top * a + below * (255 - a) + 127)
// 255`` needed two more passes over each block for the exact division (7
numpy passes, now 5): a 1080p yuv420p blend went from 1.35 to 1.04 ms on this
machine, and numpy's blend was 12% of ``lumiera render``'s CPU.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

Array = np.ndarray[Any, np.dtype[np.uint8]]


FULL = 256  # the weight of an opaque layer


def weight_of(opacity: float) -> int:
    """The layer's weight in :func:`over`'s formula: ``round(opacity * 256)``, 0..256."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity {opacity} is not within 0..1")
    return round(opacity * FULL)


def over(below: Array, top: Array, opacity: float, out: Array | None = None) -> Array:
    """``top`` over ``below`` with ``opacity``, into ``out`` (may be ``below``)."""
    if below.shape != top.shape:
        raise ValueError(f"layer shapes differ: {below.shape} and {top.shape}")
    target = out if out is not None else np.empty_like(below)
    return _weighted(below, top, weight_of(opacity), target)


def _weighted(below: Array, top: Array, w: int, target: Array) -> Array:
    """``top`` over ``below`` at weight ``w`` (0..256) into ``target``."""
    if w == FULL:
        np.copyto(target, top)
    elif w == 0:
        if target is not below:
            np.copyto(target, below)
    else:
        b2, t2, o2 = _rows(below), _rows(top), _rows(target)
        if b2 is not None and t2 is not None and o2 is not None:
            _blend_rows(b2, t2, o2, w)
        else:
            _blend(below, top, w, target)
    return target


# Elements of a block of rows blended at a time: the two uint16 scratch arrays (512 KiB)
# stay within the core's cache, where whole-plane temporaries went to memory on each of
# the passes (about 3x faster for a 1080p yuv420p frame), and no fresh buffers (page faults).
BLOCK = 1 << 17
_scratch = threading.local()


def _rows(x: Array) -> Array | None:
    """``x`` as a 2-D view (rows, samples of a row), or None when it cannot be one."""
    if x.ndim == 2 and x.strides[1] == 1:
        return x
    if x.ndim == 3 and x.strides[2] == 1 and x.strides[1] == x.shape[2]:
        view: Array = x.reshape(x.shape[0], -1)
        return view if np.shares_memory(view, x) else None
    if x.ndim == 1 and x.strides[0] == 1:
        return x.reshape(1, -1)
    return None


def _buffers(n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """This thread's two uint16 scratch arrays of at least ``n`` elements."""
    held = getattr(_scratch, "held", None)
    if held is None or held[0].size < n:
        held = _scratch.held = (np.empty(n, np.uint16), np.empty(n, np.uint16))
    return held


def _blend_rows(below: Array, top: Array, target: Array, w: int) -> None:
    """:func:`over`'s formula, a block of rows at a time (each block read before written).

    In uint16: the largest sum, 255 * 256 + 128 = 65408, fits.
    """
    height, width = top.shape
    step = max(1, BLOCK // max(1, width))
    m0, l0 = _buffers(min(height, step) * width)
    for r in range(0, height, step):
        e = min(height, r + step)
        n = (e - r) * width
        mixed, lower = m0[:n].reshape(e - r, width), l0[:n].reshape(e - r, width)
        np.multiply(top[r:e], w, out=mixed, dtype=np.uint16)
        np.multiply(below[r:e], FULL - w, out=lower, dtype=np.uint16)
        mixed += lower
        mixed += 128
        np.right_shift(mixed, 8, out=target[r:e], casting="unsafe")


def _blend(below: Array, top: Array, w: int, target: Array) -> None:
    """The same for layouts that are not rows (strided views): whole-array temporaries."""
    mixed = top.astype(np.uint16)
    mixed *= w
    lower = below.astype(np.uint16)
    lower *= FULL - w
    mixed += lower
    mixed += 128
    mixed >>= 8
    np.copyto(target, mixed, casting="unsafe")


def composite(layers: Sequence[tuple[Array, float]], out: Array, background: int = 0) -> Array:
    """Layers (pixels, opacity), bottom first, over a uniform ``background``, into ``out``."""
    out.fill(background)
    for pixels, opacity in layers:
        over(out, pixels, opacity, out)
    return out


def dissolve(a: Array, b: Array, k: int, length: int) -> Array:
    """The dissolve's picture ``k`` of ``length``: ``b`` over ``a`` with the weight
    ``w = round(256 * k / length)`` (halves to even), by :func:`over`'s formula:
    ``(a * (256 - w) + b * w + 128) >> 8``, exact.

    ``k`` 0 is ``a``, ``k = length`` is ``b``; at ``k = length/2`` each sample is the
    mean of a and b rounded half up. A new array (the layers are cache entries: never
    written). The weight resolves a step as finely as a layer's opacity (1/256); the
    earlier ``(a x (L-k) + b x k + L//2) // L`` needed uint32 temporaries and a
    division: 6.2 ms a 1080p yuv420p frame, against 1.1 ms now.
    """
    if a.shape != b.shape:
        raise ValueError(f"layer shapes differ: {a.shape} and {b.shape}")
    if not 0 <= k <= length or length < 1:
        raise ValueError(f"dissolve step {k} of {length}")
    return _weighted(a, b, round(Fraction(FULL * k, length)), np.empty(a.shape, np.uint8))
