"""One output frame of a timeline: the work of a render job.

The timeline is the contract's :class:`~lumiera.bus.timeline.Timeline`. For
output frame *n*, every clip that shows it (``Timeline.visible``) shows its
media's frame ``source_in + n - position``. The frames are fetched
(through the cache, else decoded by the pool) at the output size, and
composited bottom track first with each clip's opacity, over black, into the
caller's buffer (a ring slot's planes, or arrays of the same shapes). Two
clips of a track in a transition are one layer: their dissolve
(:func:`~lumiera.vault.composite.dissolve`).

Runs in an engine worker thread; each worker has its own MediaPool.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from lumiera.bus.timeline import Clip, Timeline
from lumiera.vault.cache import FrameCache
from lumiera.vault.composite import FULL, dissolve, over, weight_of
from lumiera.vault.media import MediaPool

Planes = tuple[np.ndarray[Any, np.dtype[np.uint8]], ...]
# Black in each pixel format (yuv420p: Y 16, U and V 128).
BLACK = {"rgb24": (0,), "gray": (16,), "yuv420p": (16, 128, 128)}


def frame_buffers(fmt: str, size: tuple[int, int]) -> Planes:
    """Empty planes for one frame of ``fmt`` at ``size``."""
    w, h = size
    if fmt == "yuv420p":
        cw, ch = (w + 1) // 2, (h + 1) // 2
        return (
            np.empty((h, w), np.uint8),
            np.empty((ch, cw), np.uint8),
            np.empty((ch, cw), np.uint8),
        )
    return (np.empty((h, w, 3) if fmt == "rgb24" else (h, w), np.uint8),)


class FrameBuffers:
    """Output planes reused by a stream's render jobs, at most ``keep`` kept for reuse.

    Fresh planes of a 1080p frame page-fault on their first touch (system time on
    every frame); ones given back after their frame went into the ring do not.
    """

    def __init__(self, fmt: str, size: tuple[int, int], keep: int) -> None:
        self.fmt, self.size, self.keep = fmt, size, keep
        self._free: list[Planes] = []
        self._lock = threading.Lock()

    def take(self) -> Planes:
        with self._lock:
            if self._free:
                return self._free.pop()
        return frame_buffers(self.fmt, self.size)

    def give(self, planes: Planes) -> None:
        """``planes`` (from :meth:`take`) are not used any more: the next job may write them."""
        with self._lock:
            if len(self._free) < self.keep:
                self._free.append(planes)


class SlotWriters:
    """The render jobs writing into claimed ring slots; none enters once the stream ended.

    The stream's end waits for those inside (:meth:`close`) before its ring is
    closed: a slot's memory stays mapped while a job writes into it.
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._inside = 0
        self._closed = False

    def enter(self) -> bool:
        """False once closed: the job writes nothing (its slot is being given back)."""
        with self._cv:
            if self._closed:
                return False
            self._inside += 1
            return True

    def leave(self) -> None:
        with self._cv:
            self._inside -= 1
            self._cv.notify_all()

    def draw(self, draw: Callable[[Planes], None], slot: Any) -> bool:
        """``draw(slot.planes)`` unless closed (False: nothing written). Raises what it raises,
        without the traceback's frames (one holds views of the ring: kept by the job's handle
        they would keep the ring from being closed); the traceback goes into a note."""
        if not self.enter():
            return False
        try:
            draw(slot.planes)
        except Exception as e:  # noqa: BLE001 - raised again, its traceback a note
            e.add_note("".join(traceback.format_exception(e)).rstrip())
            e.__context__ = e.__cause__ = None  # their tracebacks could hold the views too
            raise e.with_traceback(None) from None
        finally:
            self.leave()
        return True

    def close(self, timeout: float) -> bool:
        """No more writers; wait up to ``timeout`` s for those inside. True when none is left."""
        with self._cv:
            self._closed = True
            return self._cv.wait_for(lambda: self._inside == 0, timeout)


def render_frame(
    timeline: Timeline,
    index: int,
    pool: MediaPool,
    out: Planes,
    *,
    fmt: str = "rgb24",
    cache: FrameCache | None = None,
) -> Planes:
    """Compute output frame ``index`` into ``out`` (one plane, or three for yuv420p).

    Raises MediaError (a missing, changed or undecodable source) and leaves
    ``out`` half-written: the caller does not publish it.
    """
    if fmt not in BLACK:
        raise ValueError(f"render format {fmt!r}: one of {', '.join(BLACK)}")
    size = (timeline.output.width, timeline.output.height)
    layers = _layers(timeline, index, pool=pool, fmt=fmt, size=size, cache=cache)
    below: Planes = out
    if not layers or weight_of(layers[0][1]) < FULL:
        for plane, level in zip(out, BLACK[fmt], strict=True):
            plane.fill(level)
    elif len(layers) > 1:
        # The bottom layer is opaque and has layers over it: the next one is blended
        # over it straight into ``out`` (the same samples as copying it there first).
        below = layers[0][0]
        layers = layers[1:]
    # else the bottom layer is opaque and alone: over() copies it
    for pixels, opacity in layers:
        for plane, under, layer in zip(out, below, pixels, strict=True):
            over(under, layer, opacity, plane)
        below = out
    return out


def _layers(
    timeline: Timeline,
    index: int,
    *,
    pool: MediaPool,
    fmt: str,
    size: tuple[int, int],
    cache: FrameCache | None,
) -> list[tuple[Planes, float]]:
    """The pictures of frame ``index``, bottom track first; a transition's two: dissolved."""
    shown = timeline.visible(index)
    layers: list[tuple[Planes, float]] = []
    k = 0
    while k < len(shown):
        clip, source_index = shown[k]
        pixels = _picture(timeline, clip, source_index, pool=pool, fmt=fmt, size=size, cache=cache)
        partner = shown[k + 1][0] if k + 1 < len(shown) else None
        if partner is not None and partner.track == clip.track:  # a transition: a, then b
            step, length = timeline.dissolve_step(clip, partner, index)
            other = _picture(
                timeline, partner, shown[k + 1][1], pool=pool, fmt=fmt, size=size, cache=cache
            )
            pixels = tuple(dissolve(x, y, step, length) for x, y in zip(pixels, other, strict=True))
            opacity = (clip.opacity * (length - step) + partner.opacity * step) / length
            layers.append((pixels, opacity))
            k += 2
            continue
        layers.append((pixels, clip.opacity))
        k += 1
    return layers


def _picture(
    timeline: Timeline,
    clip: Clip,
    source_index: int,
    *,
    pool: MediaPool,
    fmt: str,
    size: tuple[int, int],
    cache: FrameCache | None,
) -> Planes:
    media = timeline.media_of(clip)
    key = (media.path, source_index, fmt, size)
    pixels = cache.get(key) if cache is not None else None
    if pixels is None:
        pool.expect(media)  # decoded only if it is still the file that was probed
        pixels = pool.frame(media.path, source_index, fmt, size)
        if cache is not None:
            cache.put(key, pixels)
    return pixels if isinstance(pixels, tuple) else (pixels,)
