"""Where a stream of the Player stands, the frame range a request names, the Player's rings.

Runs in the player process: the main thread changes a stream (start, pause,
seek, stop); the render thread and the engine-event watcher update its counts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from lumiera.bus.events import Subscriber
from lumiera.bus.timeline import Output, Timeline, rate_text
from lumiera.bus.topics import EngineRenderEnded, PlayerStreamInfo, SoundInfo
from lumiera.errors import BadArguments
from lumiera.shm.layout import PixelFormat, frame_bytes
from lumiera.vault.streamspec import engine_workers, render_slots

if TYPE_CHECKING:
    from lumiera.bus.client import ControlClient
    from lumiera.steam.soundsink import SoundOut

# The Player's rings, made through appstate create_ring on first use of a frame size.
RING_KINDS: dict[str, dict[str, Any]] = {
    # yuv420p frames for the encoder, in order, rendered straight into the slots: as many
    # slots as the Engine's window needs (PlayerRings' render_slots), at least these.
    "render": {"policy": "block", "slots": 4},
    "viewer": {"policy": "drop", "slots": 4},  # previews (yuv420p; slots fit rgb24 too)
    "render-audio": {"policy": "block", "slots": 4},  # each frame's sound, after its picture
    # A playback's sound, for its sink and the viewers: 16 frames (0.64 s at 25 fps) of
    # slack for a reader, as the sound must not gap where a picture may be skipped.
    "viewer-audio": {"policy": "drop", "slots": 16},
}


def parse_range(timeline: Timeline, first: int | None, count: int | None) -> tuple[int, int]:
    """(first, count) of a request, defaulting to the whole timeline; BadArguments if empty."""
    length = timeline.length
    start = 0 if first is None else first
    n = (length - start) if count is None else count
    if start < 0 or n < 1:
        raise BadArguments(
            f"nothing to render: frames {start}..{start + n - 1} (the timeline has {length})"
        )
    return start, n


def preview(timeline: Timeline, box: tuple[int, int]) -> Timeline:
    """``timeline`` as the viewer plays it: its output scaled down (never up) to fit ``box``.

    The viewer shows a preview (``[gui] preview_width/height``): the Engine
    composites at that size (a quarter of the pixels of 1080p at 960x540) and the
    GUI encodes what it reads, with no scaling of its own. Scaled sides are even
    (yuv420p's chroma is half the size). A timeline that fits is returned as it is.
    """
    out = timeline.output
    scale = min(box[0] / out.width, box[1] / out.height)
    if scale >= 1:
        return timeline
    width = max(2, round(out.width * scale / 2) * 2)
    height = max(2, round(out.height * scale / 2) * 2)
    smaller = dataclasses.replace(out, width=width, height=height)
    return dataclasses.replace(timeline, output=smaller)


def ring_slot_mb(width: int, height: int, channels: int = 3) -> int:
    """Slot size (MiB) of a ring for frames of this size."""
    return max(1, -(-width * height * channels // 2**20))


# The render ring's /dev/shm, reserved when it is made: its slots beyond RING_KINDS' 4 stop
# here (Docker gives a container 64 MiB of /dev/shm; 1080p: 10 slots, 4K: 4).
RENDER_RING_MB = 32


def yuv420p_slot_mb(width: int, height: int) -> int:
    """Slot size (MiB) of a ring for yuv420p frames of this size (chroma: half each way)."""
    return max(1, -(-frame_bytes(PixelFormat.YUV420P, width, height) // 2**20))


class PlayerRings:
    """The Player's rings (:data:`RING_KINDS`), made through appstate on first use.

    ``workers``: ``[engine] workers`` (0: one per core). The render ring has a slot
    for each frame of the Engine's window (:func:`lumiera.vault.streamspec.render_slots`,
    at least RING_KINDS'), so that it renders all of them straight into the slots, within
    :data:`RENDER_RING_MB` (the Engine then keeps fewer frames in flight).
    """

    def __init__(self, client: Callable[[], ControlClient], workers: int = 0) -> None:
        self.client = client
        self.render_slots = render_slots(engine_workers(workers))
        self.made: set[str] = set()

    def frames(self, kind: str, width: int, height: int) -> str:
        """The ring of ``kind`` (render, viewer) for this frame size."""
        if kind == "render":  # yuv420p, always
            mb = yuv420p_slot_mb(width, height)
            fits = min(self.render_slots, RENDER_RING_MB // mb)
            slots = max(int(RING_KINDS[kind]["slots"]), fits)
            return self._made(kind, f"{kind}-{width}x{height}", mb, slots=slots)
        return self._made(kind, f"{kind}-{width}x{height}", ring_slot_mb(width, height))

    def sound(self, kind: str, output: Output) -> str:
        """The sound ring of ``kind`` (render-audio, viewer-audio), slots for ``output``'s."""
        longest = -(-output.audio_rate // output.rate) + 1  # samples, rounded up
        mb = max(1, -(-longest * output.channels * 4 // 2**20))
        return self._made(kind, f"{kind}-{mb}mb", mb)

    def _made(self, kind: str, name: str, slot_mb: int, **more: Any) -> str:
        if name not in self.made:
            args = {"name": name, **RING_KINDS[kind], "slot_mb": slot_mb, **more}
            with contextlib.suppress(BadArguments):  # made by an earlier player process
                self.client().request("appstate", "create_ring", args)
            self.made.add(name)
        return name


class EngineWatcher:
    """The Player's thread that collects the Engine's stream ends (``engine.render.*``) for
    ``on_end``; :meth:`stop` wakes it at once (a pipe), so a stop never waits on a poll."""

    WAIT_S = 1.0  # its longest wait for an event (a stop ends it sooner)

    def __init__(self, on_end: Callable[[EngineRenderEnded], None]) -> None:
        self.on_end = on_end
        self.thread = threading.Thread(target=self._run, name="engine-events", daemon=True)
        self._stopping = threading.Event()
        self._rd: Any = None
        self._pipe: tuple[int, int] | None = None

    def start(self, rd: Any) -> None:
        self._rd, self._pipe = rd, os.pipe2(os.O_CLOEXEC)
        self.thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._pipe is not None:
            os.write(self._pipe[1], b"!")

    def close(self) -> None:
        """Its pipe closed, once its thread has ended (else the process's end closes it)."""
        if self._pipe is not None and not self.thread.is_alive():
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None

    def _run(self) -> None:
        assert self._pipe is not None
        with Subscriber(self._rd, "engine.render.") as sub:
            while not self._stopping.is_set():
                event = sub.receive(self.WAIT_S, wake=self._pipe[0])
                if event is not None and isinstance(event.body, EngineRenderEnded):
                    self.on_end(event.body)


class PlayerStream:
    """One stream of the Player: where it stands (what ``streams`` and stats show)."""

    def __init__(self, sid: str, mode: str, first: int, count: int, rate: Fraction) -> None:
        self.id, self.mode, self.first, self.count, self.rate = sid, mode, first, count, rate
        self.state = "starting"
        self.frames = 0  # render: frames encoded
        self.dropped = 0
        self.engine_stream: str | None = None
        self.ring: str | None = None
        self.output: str | None = None
        self.error: str | None = None
        self.started = time.monotonic()
        self.ended: float | None = None
        self.start_due = 0.0  # playback: when frame ``position_at_start`` is due
        self.position_at_start = first
        self.paused_at: int | None = None
        self.cancel = threading.Event()
        self.timeline: Timeline | None = None  # playback: what it plays (a pause keeps it)
        self.audio_ring: str | None = None  # playback of a sounding timeline: its sound's ring
        self.sound: SoundOut | None = None  # ... and what plays it (the [audio] sink)

    def position(self) -> int:
        if self.mode == "render":
            return self.first + self.frames
        if self.paused_at is not None:
            return self.paused_at
        elapsed = max(0.0, time.monotonic() - self.start_due)
        pos = self.position_at_start + int(elapsed * self.rate)
        return min(pos, self.first + self.count)

    def info(self) -> PlayerStreamInfo:
        """Where it stands, as ``stats.player`` and its end event show it."""
        seconds = (self.ended or time.monotonic()) - self.started
        done = self.position() - self.first
        fps = done / seconds if seconds > 0 and self.mode == "render" else float(self.rate)
        left = self.first + self.count - self.position()
        eta = left / fps if fps > 0 and self.state in ("running", "starting") else 0.0
        playback = self.mode == "playback"
        return PlayerStreamInfo(
            id=self.id,
            mode=self.mode,
            state=self.state,
            first=self.first,
            count=self.count,
            frame=self.position(),
            frames=self.frames if self.mode == "render" else done,
            fps=round(fps, 2),
            dropped=self.dropped,
            eta_s=round(eta, 2),
            seconds=round(seconds, 3),
            rate=rate_text(self.rate),
            engine_stream=self.engine_stream,
            # playback: when frame ``start_frame`` is (was) due, on CLOCK_MONOTONIC
            start=self.start_due if playback else None,
            start_frame=self.position_at_start if playback else None,
            ring=self.ring,
            output=self.output or None,
            error=self.error or None,
            audio_ring=self.audio_ring if self.sound is not None else None,
            sound=None if self.sound is None else SoundInfo(**self.sound.state()),
        )

    def data(self) -> dict[str, Any]:
        """:meth:`info` as plain data (a command's answer), a playback's sound's state with it.

        ``audio_ring`` and ``sound`` (sink, ring, sent, dropped, stale, error: see
        :class:`~lumiera.steam.soundsink.SoundOut`) for a playback with sound.
        """
        plain: dict[str, Any] = self.info().to_wire()
        return plain
