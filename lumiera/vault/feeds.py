"""What feeds a calculation stream (:mod:`lumiera.vault.stream`): pictures and sound.

- :class:`ClipReader`: one clip's source frames, decoded in order into the
  frame cache by one job at a time, ahead of the stream's position.
- :class:`AudioFeed`: each output frame's sound, mixed in order by one
  :class:`~lumiera.vault.audio.AudioMixer` job at a time, kept until the
  frame is published; :func:`pcm_slot` / :func:`pcm_of_slot` are how a
  frame's sound lies in an audio ring's slot (:mod:`lumiera.shm.layout`,
  AUDIO RINGS). In playback its jobs have the playback priority and a
  deadline before the frames they mix (before the pictures' jobs: the sound
  is what must not miss); one the scheduler dropped as too late, or a feed
  the position overtook, goes on from the position (the mixer seeks).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from lumiera.bus.timeline import Clip, Media, Timeline
from lumiera.errors import DeadlineMissed
from lumiera.vault.cache import FrameCache
from lumiera.vault.media import MediaPool
from lumiera.vault.scheduler import JobHandle, Priority, Scheduler

if TYPE_CHECKING:
    from lumiera.vault.streamspec import StreamSpec


class ClipReader:
    """The prefetcher of one clip: decodes its source frames in order into the cache."""

    def __init__(self, clip: Clip, media: Media, spec: StreamSpec, cache: FrameCache) -> None:
        self.clip, self.path, self.spec, self.cache = clip, media.path, spec, cache
        self.begin, self.end = clip.position, clip.end
        self.next = max(self.begin, spec.first)  # the first output frame not read yet
        self.pool = MediaPool(1, spec.decode_threads)  # its own decoder: one job at a time
        self.pool.expect(media)
        self.job: JobHandle | None = None
        self.decoded = 0
        self.retired = False
        # Render mode reads each source frame once: the frames this reader put into the
        # cache leave it once their output frame is computed (:meth:`used`), so the cache
        # holds about the lead, not ``vault.cache_mb`` of frames nobody asks for again.
        self.owned: set[tuple[str, int, str, tuple[int, int]]] | None = (
            set() if spec.mode == "render" else None
        )
        # Invariants, under _lock: a read decodes only while _running; the pool is closed
        # once (_closed), by retire() when no read runs, else by the read when it ends.
        self._running = False
        self._closed = False
        self._lock = threading.Lock()

    def key(self, index: int) -> tuple[str, int, str, tuple[int, int]]:
        """The cache key of the source frame shown at output frame ``index``."""
        return (self.path, self.clip.source(index), self.spec.fmt, self.spec.size)

    def needed(self, index: int) -> bool:
        return self.begin <= index < self.end

    def ready(self, index: int) -> bool:
        """Whether output frame ``index`` needs nothing more of this clip."""
        return not self.needed(index) or self.next > index

    def used(self, index: int) -> None:
        """Render mode: output frame ``index`` is computed; its frame of this clip leaves the
        cache if this reader put it there (one another stream or clip put there stays)."""
        if self.owned is None or not self.needed(index):
            return
        key = self.key(index)
        if key in self.owned:
            self.owned.discard(key)
            self.cache.discard(key)

    def skip(self, pos: int, grace: float) -> None:
        """Playback: if this reader's next read is already too late, it jumps ahead.

        It goes to the first frame at or after the position ``pos`` whose read
        deadline is still to come (those in between are dropped anyway), so a
        stall longer than the lead costs the frames of the stall, not the rest of
        the stream. ``grace``: the stream's, half a frame period.
        """
        spec = self.spec
        now = time.monotonic()
        if self.next >= self.end:
            return
        if self.next >= pos and spec.due(self.next) - 2 * grace > now:
            return
        behind = (now - spec.due(pos)) * spec.rate + 1  # frames until deadlines are ahead
        target = pos + max(0, math.floor(behind) + 1)
        self.next = max(self.next, min(target, self.end))

    def read(self, upto: int, woken: threading.Event) -> Callable[[], None]:
        """A job: decode this clip's frames for output frames ``next .. upto-1``."""

        def job() -> None:
            with self._lock:
                if self.retired:  # the stream ended before this read ran
                    self._close()
                    return
                self._running = True
            try:
                while self.next < upto and not self.retired:
                    key = self.key(self.next)
                    if key not in self.cache:
                        self.cache.put(key, self.pool.frame(self.path, key[1], key[2], key[3]))
                        self.decoded += 1
                        if self.owned is not None:
                            self.owned.add(key)
                    self.next += 1
                    if self.decoded == 1:  # a stream's first frame waits for no whole chunk
                        woken.set()
            finally:
                with self._lock:
                    self._running = False
                    if self.retired:  # the stream ended meanwhile: this job closes the pool
                        self._close()

        return job

    def retire(self) -> None:
        """The stream is over: close the decoder now, or let a running read close it.

        Never waits for a read. A read still queued closes the pool when it runs;
        one the scheduler drops unrun leaves the pool to the garbage collector
        (which closes its file).
        """
        with self._lock:
            self.retired = True
            if not self._running:
                self._close()

    def _close(self) -> None:
        """Close the pool, once; with ``_lock`` held, so no read decodes while it closes.

        Two threads closing one PyAV container at once crash the process (seen:
        a stream's end and a queued read closing together).
        """
        if not self._closed:
            self._closed = True
            self.pool.close()


def timeline_sounds(timeline: Timeline) -> bool:
    """Whether any clip of the timeline carries sound (a render then has a sound stream)."""
    return any(timeline.sounds(c) for c in timeline.clips)


def pcm_slot(pcm: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A frame's sound as an audio ring slot's one gray row: its float32 planar bytes.

    (channels, n) float32 -> (1, channels x n x 4) uint8; a frame of no samples is
    one byte (a row cannot be empty), which :func:`pcm_of_slot` reads as none.
    """
    data = np.ascontiguousarray(pcm, np.float32).view(np.uint8).reshape(1, -1)
    return data if data.shape[1] else np.zeros((1, 1), np.uint8)


def pcm_of_slot(row: np.ndarray[Any, Any], channels: int) -> np.ndarray[Any, Any]:
    """The (channels, n) float32 samples an audio ring slot's gray row holds (a view)."""
    flat = row.reshape(-1)
    usable = flat.size - flat.size % (4 * channels)
    return flat[:usable].view(np.float32).reshape(channels, -1)


class AudioFeed:
    """The stream's sound: each output frame's samples, mixed in order, one job at a time.

    The mixer is made by the first job (in a worker) and closed once, by
    :meth:`retire` when no job runs, else by the job when it ends (as
    :class:`ClipReader` closes its pool).
    """

    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec
        self.next = spec.first  # the first output frame not mixed yet
        self.ready: dict[int, np.ndarray[Any, Any]] = {}  # frame -> (channels, n) float32
        self.job: JobHandle | None = None
        self.retired = False
        self._mixer: Any = None
        self._running = False
        self._closed = False
        self._lock = threading.Lock()

    def has(self, index: int) -> bool:
        return index in self.ready

    def take(self, index: int) -> np.ndarray[Any, Any]:
        return self.ready.pop(index)

    def feed(
        self,
        scheduler: Scheduler,
        pos: int,
        *,
        lead: int,
        chunk: int,
        priority: Priority,
        deadline: Callable[[int], float],
        woken: threading.Event,
    ) -> None:
        """Keep one mixing job going, up to ``lead`` frames ahead of the position ``pos``.

        ``deadline(n)``: the deadline of a job whose first frame is n. Raises what a
        job raised (the stream fails), but for a playback job dropped as too late
        (the stream counts the frames of sound it did not get in time).
        """
        spec = self.spec
        if self.job is not None:
            if not self.job.done:
                return
            with contextlib.suppress(DeadlineMissed):  # playback: too late to be heard
                self.job.result(0)
            self.job = None
        for n in [n for n in self.ready if n < pos]:  # passed unheard (playback)
            del self.ready[n]
        self.next = max(self.next, pos)  # overtaken (playback): on from there (the mixer seeks)
        target = min(spec.end, pos + lead)
        if self.next >= target:
            return
        upto = min(target, self.next + chunk)
        self.job = scheduler.submit(
            self.mix(upto),
            deadline(self.next),
            priority,
            f"{spec.id} audio {self.next}..{upto - 1}",
            on_done=woken.set,
        )

    def mix(self, upto: int) -> Callable[[], None]:
        """A job: the sound of output frames ``next .. upto-1``."""

        def job() -> None:
            with self._lock:
                if self.retired:
                    self._close()
                    return
                self._running = True
            try:
                if self._mixer is None:
                    from lumiera.vault.audio import AudioMixer  # only a sounding render needs it

                    self._mixer = AudioMixer(self.spec.timeline)
                while self.next < upto and not self.retired:
                    self.ready[self.next] = self._mixer.frame(self.next)
                    self.next += 1
            finally:
                with self._lock:
                    self._running = False
                    if self.retired:
                        self._close()

        return job

    def retire(self) -> None:
        """The stream is over: close the mixer now, or let a running job close it."""
        with self._lock:
            self.retired = True
            if not self._running:
                self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._mixer is not None:
                self._mixer.close()
