"""A calculation stream in the Engine: frames of a timeline, computed by jobs, into a ring in order.

A stream is the frames ``first .. first+count-1`` of a timeline towards one
ring, in a mode:

- ``render``: every frame, in order, as fast as the workers go; the ring's
  back-pressure blocks (a ``block`` ring).
- ``playback``: real time at ``rate``: frame *k* is due at
  ``start + (k - first) / rate`` (``time.monotonic``, which is one clock for
  every process of the machine). A frame is put into the ring at its due time,
  not before; one that is not computed by then (plus half a frame period of
  grace) is dropped and counted, and the stream goes on with the next, so it
  never builds a backlog.

The work is split into jobs for the scheduler, as Lumiera's engine splits a
frame into its dependencies:

- **prefetch** (:class:`~lumiera.vault.feeds.ClipReader`): one reader per
  clip decodes that clip's source frames in order (one decoder running
  forward, its own MediaPool) into the shared frame cache, a chunk of frames
  per job, keeping ``lead`` output frames ahead of the stream's position. A
  reader opens its file at its first read and closes it when it has read its
  clip, so a stream holds open only the files of the clips within its lead.
  At most one job of a reader is queued or running at a time, so a file's
  frames are decoded once each and in order, while different clips decode in
  parallel on different workers. Reader jobs have the stream's priority class
  and a deadline before the frames they feed. Clips of sound alone have none.
- **render**: one job per output frame, submitted once every clip visible in
  that frame has been read (at most ``window`` frames ahead of the position),
  composites the cached frames (a cache miss, e.g. after an eviction, decodes
  in the worker's own pool: slower, never wrong). **A render into a block ring
  is rendered straight into the ring's slots**: the thread claims frame n's slot
  (:meth:`~lumiera.shm.producer.Producer.claim_ahead`, in order, never waiting)
  before it submits n's job, which writes into the slot's planes; publishing is
  a header write, no copy. A frame whose slot is still read (by the encoder)
  gets its job once one is released: the Player sizes its render ring to the
  window (:func:`~lumiera.vault.streamspec.render_slots`). No job writes into a
  slot once its stream ended (:class:`~lumiera.vault.render.SlotWriters`).
  Playback renders into buffers of the stream's own, reused, copied in at the
  frame's due time.
- **audio** (:class:`~lumiera.vault.feeds.AudioFeed`, with an audio ring):
  the sound of each output frame, its span of samples
  ``[Output.sample_of(n), Output.sample_of(n+1))``, mixed from every sounding
  clip by one :class:`~lumiera.vault.audio.AudioMixer` (its decoders run
  forward, so one job at a time mixes the next chunk of frames, in order),
  kept until the frame is published, at most ``lead`` frames ahead.

The stream's own thread (the rings' one producer), woken by every job that
ends, submits the jobs and publishes the frames in order; with an audio ring,
each frame's sound too (:func:`~lumiera.vault.feeds.pcm_slot`; layout in
:mod:`lumiera.shm.layout`, AUDIO RINGS) with the picture's pts: in render mode
sound n follows picture n. In render mode a frame read leaves the cache once
its output frame is computed (:meth:`ClipReader.used`).

In playback, sound n and picture n are due at the same time, ``due(n)``, on
the stream's one clock, and sound n is put in just before picture n. **The
sound is never dropped for a late picture**: a picture not computed in time
is dropped (counted in ``dropped``) but its sound still goes into the audio
ring (once the picture's grace of half a frame is over), so the sound runs on
without a gap and the pictures follow its clock (a gap in sound is heard; a
dropped picture is barely seen). Sound is mixed ahead (cheap beside
compositing) with jobs that come before the pictures' by deadline; a frame of
sound that is still not mixed when its frame is passed is dropped and counted
(``sound_dropped``), never put in late or out of order. So the audio ring's pts
rise strictly, and every picture n in the frames' ring has its sound n (mixed
in time) in the audio ring, published no later than the picture.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from lumiera.bus.topics import EngineStreamInfo
from lumiera.errors import DeadlineMissed
from lumiera.shm.layout import PixelFormat, frame_bytes
from lumiera.vault.cache import FrameCache
from lumiera.vault.feeds import AudioFeed, ClipReader, pcm_slot
from lumiera.vault.media import MediaPool
from lumiera.vault.render import FrameBuffers, Planes, SlotWriters, render_frame
from lumiera.vault.scheduler import JobHandle, Priority, Scheduler
from lumiera.vault.streamspec import FORMATS, MODES, StreamSpec, StreamState, render_window

CHUNK = 4  # source frames one reader job decodes
AUDIO_CHUNK = 8  # output frames one audio job mixes
RENDER_DEADLINE_S = 60.0  # a render-mode job is late (counted) this long after it was queued
WAIT_FRAME_S = 120.0  # render mode: the bound on one frame (a job that never ends)
POLL_S = 0.05  # the thread's longest sleep: it sees a stop within this
# At a stream's end: the bound on the jobs still writing into slots, as long as a render
# job may take (a ring is never closed under a job: that would keep its segment open).
WRITERS_WAIT_S = WAIT_FRAME_S


class RenderStream:
    """Runs one stream in its own thread: submits the jobs, publishes the frames in order."""

    def __init__(
        self,
        spec: StreamSpec,
        scheduler: Scheduler,
        cache: FrameCache,
        pool: Callable[[], MediaPool],
        *,
        workers: int,
        lead: int,
        delay: Callable[[int], float] = lambda _index: 0.0,
    ) -> None:
        if spec.fmt not in FORMATS:
            raise ValueError(f"fmt {spec.fmt!r}: one of {', '.join(FORMATS)}")
        if spec.mode not in MODES:
            raise ValueError(f"mode {spec.mode!r}: one of {', '.join(MODES)}")
        self.spec, self.scheduler, self.cache, self.pool = spec, scheduler, cache, pool
        self.delay = delay  # fault injection (tests): seconds a frame's render job sleeps
        self.priority = Priority.PLAYBACK if spec.mode == "playback" else Priority.RENDER
        self.status = StreamState(position=spec.first)
        self.woken = threading.Event()
        self.stopping = threading.Event()
        self.missed = 0  # frames whose job a worker took after its deadline
        self.thread: threading.Thread | None = None  # the owner's thread running it
        timeline = spec.timeline
        self.readers = [  # the clips that show pictures (not those of sound alone)
            ClipReader(clip, timeline.media_of(clip), spec, cache)
            for clip in timeline.clips_within(spec.first, spec.count)
            if timeline.is_video(clip)
        ]
        self.audio = AudioFeed(spec) if spec.audio_ring is not None else None
        self._audio_out: Any = None  # the audio ring's producer, while run() runs
        self.window = render_window(workers)  # render jobs queued or running ahead
        # Frames read ahead of the position: at least the window, and within half the
        # cache (read frames evicted before their render job would be decoded twice).
        # A render reads no further than its window: every frame is computed once, in
        # order, as fast as the workers go, so a longer lead would only hold decoded
        # frames (3 MB each at 1080p, per clip) longer; playback's lead rides out a
        # slow stretch of decoding (``lead``, [engine] prefetch_frames).
        size = frame_bytes(FORMATS[spec.fmt], *spec.size)
        fits = cache.max_bytes // (2 * size * max(1, len(self.readers)))
        wanted = lead if spec.mode == "playback" else self.window
        self.lead = max(self.window, min(wanted, fits))
        self.buffers = FrameBuffers(spec.fmt, spec.size, keep=self.window + 2)
        self.writers = SlotWriters()

    # -- what the owner sees ----------------------------------------------------------

    def stop(self) -> None:
        """Ask the stream to end after the frame it is on (state ``stopped``)."""
        self.stopping.set()
        self.woken.set()

    def prefetch_lead(self) -> int | None:
        """Frames read ahead of the position by the slowest reader of a visible clip."""
        pos = self.status.position
        leads = [r.next - pos for r in self.readers if r.needed(pos)]
        return min(leads) if leads else None

    def info(self) -> EngineStreamInfo:
        """Where it stands, as ``streams``, ``stats.engine`` and its end event show it."""
        s, spec = self.status, self.spec
        lateness = sorted(s.lateness_ms)
        return EngineStreamInfo(
            id=spec.id,
            ring=spec.ring,
            mode=spec.mode,
            first=spec.first,
            count=spec.count,
            position=s.position,
            state=s.state,
            frames=s.frames,
            dropped=s.dropped,
            missed=self.missed,
            failed=s.failed,
            decoded=sum(r.decoded for r in self.readers),
            prefetch_lead=self.prefetch_lead(),
            lateness_ms_p50=lateness[len(lateness) // 2] if lateness else None,
            error=s.error or None,
        )

    # -- the stream's thread ------------------------------------------------------------

    def run(self, producer: Any, audio: Any = None) -> None:
        """Compute and publish every frame (or until stopped); never raises.

        ``producer`` is the ring's :class:`~lumiera.shm.ring.Producer`, ``audio``
        the audio ring's (with ``spec.audio_ring``), used by this thread only. Ends
        with ``state`` done, stopped or failed (``error`` says why).
        """
        self._audio_out = audio
        try:
            if self.audio is not None and audio is None:
                raise ValueError(f"no producer for the audio ring {self.spec.audio_ring}")
            self._run(producer)
        except Exception as e:  # noqa: BLE001 - the stream fails; the engine goes on
            self.status.state = "failed"
            self.status.error = f"{type(e).__name__}: {e}"
        finally:
            if not self.writers.close(WRITERS_WAIT_S):
                self.status.error = self.status.error or (
                    f"render jobs still writing into ring {self.spec.ring} after"
                    f" {WRITERS_WAIT_S:g} s"
                )
            for reader in self.readers:
                reader.retire()  # never waits: a stop ends the stream after its frame
            if self.audio is not None:
                self.audio.retire()

    def _run(self, producer: Any) -> None:
        spec, s = self.spec, self.status
        # Render into a block ring: each frame's job writes into its claimed slot.
        direct = spec.mode == "render" and bool(getattr(producer, "block", False))
        jobs: dict[int, JobHandle] = {}
        slots: dict[int, Any] = {}  # direct: output frame -> its claimed ring frame
        queued = spec.first  # the next output frame to get a render job
        moved = time.monotonic()  # when the position last moved
        while s.position < spec.end:
            if self.stopping.is_set():
                s.state = "stopped"
                return
            self.woken.clear()
            pos = s.position
            self._feed_readers(pos)
            if self.audio is not None:
                self._feed_audio(self.audio, pos)
            while queued < min(spec.end, pos + self.window) and all(
                r.ready(queued) for r in self.readers
            ):
                slot = None
                if direct:
                    width, height = spec.size
                    slot = producer.claim_ahead(width, height, FORMATS[spec.fmt], pts=queued)
                    if slot is None:
                        break  # its slot is still read: once a reader releases it
                    slots[queued] = slot
                jobs[queued] = self._render_job(queued, slot)
                queued += 1
            handle = jobs.get(pos)
            if handle is not None and handle.done and (self.audio is None or self.audio.has(pos)):
                del jobs[pos]
                self._publish(producer, pos, handle, slots.pop(pos, None))
                s.position += 1
                moved = time.monotonic()
                continue
            if spec.mode == "playback":
                late_by = time.monotonic() - (spec.due(pos) + self._grace)
                if late_by >= 0:  # not all ready in time: what is goes, the rest is dropped
                    handle = jobs.pop(pos, None)
                    self._publish(producer, pos, handle if handle and handle.done else None)
                    s.position += 1
                    queued = max(queued, s.position)
                    continue
                self.woken.wait(min(0.05, -late_by))
            else:
                if time.monotonic() - moved > WAIT_FRAME_S:
                    if direct and handle is None and queued == pos:
                        raise TimeoutError(
                            f"ring {spec.ring}: no slot for frame {pos} released by its"
                            f" readers within {WAIT_FRAME_S:g} s"
                        )
                    raise TimeoutError(f"frame {pos} not computed within {WAIT_FRAME_S:g} s")
                if direct and queued == pos and all(r.ready(pos) for r in self.readers):
                    producer.wait_free(POLL_S)  # no job in flight: woken by a reader's release
                else:
                    self.woken.wait(POLL_S)
        s.state = "done"

    @property
    def _grace(self) -> float:
        return float(0.5 / self.spec.rate)

    def _feed_readers(self, pos: int) -> None:
        spec = self.spec
        for reader in self.readers:
            if reader.job is not None:
                if not reader.job.done:
                    continue
                try:
                    reader.job.result(0)
                except DeadlineMissed:
                    pass  # playback: dropped as too late; the position moves past it
                except Exception:
                    self.status.failed += 1  # a source cannot be read: the stream fails
                    raise
                reader.job = None
            if reader.next >= min(spec.end, reader.end):
                reader.retire()  # read to its end: its file closes now, not with the stream
                continue
            if spec.mode == "playback":
                reader.skip(pos, self._grace)
            target = min(spec.end, reader.end, pos + self.lead)
            if reader.next >= target:
                continue
            upto = min(target, reader.next + CHUNK)
            if spec.mode == "playback":
                deadline = spec.due(reader.next) - 2 * self._grace
            else:
                deadline = time.monotonic() + RENDER_DEADLINE_S - 1.0  # before its frames' jobs
            reader.job = self.scheduler.submit(
                reader.read(upto, self.woken),
                deadline,
                self.priority,
                f"{spec.id} read {reader.clip.id} {reader.next}..{upto - 1}",
                on_done=self.woken.set,
            )

    def _feed_audio(self, feed: AudioFeed, pos: int) -> None:
        """Keep one mixing job going, up to ``lead`` frames ahead of the position."""
        spec, grace = self.spec, self._grace
        playback = spec.mode == "playback"
        try:
            feed.feed(
                self.scheduler,
                pos,
                lead=self.lead,
                chunk=AUDIO_CHUNK,
                priority=self.priority,
                # Before the reads and pictures of its frames (render: before the frames' jobs).
                deadline=lambda n: (
                    spec.due(n) - 3 * grace
                    if playback
                    else time.monotonic() + RENDER_DEADLINE_S - 1.0
                ),
                woken=self.woken,
            )
        except Exception:
            self.status.failed += 1  # the sound cannot be mixed: the stream fails
            raise

    def _render_job(self, index: int, slot: Any = None) -> JobHandle:
        """Frame ``index``'s job: into ``slot`` (a claimed ring frame), else a buffer it returns."""
        spec = self.spec

        def job() -> Planes | None:
            def draw(out: Planes) -> None:
                render_frame(spec.timeline, index, self.pool(), out, fmt=spec.fmt, cache=self.cache)

            if pause := self.delay(index):
                time.sleep(pause)
            out = None
            if slot is None:
                draw(out := self.buffers.take())
            elif not self.writers.draw(draw, slot):
                return None  # the stream ended: its slot is given back unwritten
            for reader in self.readers:
                reader.used(index)
            return out

        if spec.mode == "playback":
            deadline = spec.due(index) - self._grace
        else:
            deadline = time.monotonic() + RENDER_DEADLINE_S
        name = f"{spec.id} frame {index}"
        return self.scheduler.submit(job, deadline, self.priority, name, on_done=self.woken.set)

    def _publish(
        self, producer: Any, index: int, handle: JobHandle | None, slot: Any = None
    ) -> None:
        """Frame ``index`` into the ring(s): its picture (None: not computed in time), its sound.

        ``slot``: the ring frame the job rendered into (render mode), published as
        it is. Playback: at its due time, the sound first; a picture that is not
        there is counted as dropped, a sound that is not there as ``sound_dropped``.
        """
        spec, s = self.spec, self.status
        planes = None
        if handle is None:
            s.dropped += 1  # playback: not computed by its due time (and the grace)
        else:
            self.missed += handle.late
            try:
                planes = handle.result(0)
            except DeadlineMissed:
                if slot is not None:  # cannot happen while render jobs run at RENDER
                    # priority (never dropped): a slot no job wrote is never published; the
                    # stream fails, and closing the producer gives the claim back
                    s.failed += 1
                    raise RuntimeError(
                        f"frame {index}: its render job was dropped, its slot unwritten"
                    ) from None
                s.dropped += 1  # playback: the scheduler dropped it as too late
            except Exception:
                s.failed += 1  # this frame's job raised: the stream ends here
                raise
        if slot is not None:  # rendered in place: a block ring, render mode
            producer.publish(slot)
            s.frames += 1
            if self.audio is not None:
                self._sound(index)
            return
        if spec.mode == "playback":
            due = spec.due(index)
            if self.stopping.wait(max(0.0, due - time.monotonic())):
                return  # stopped while waiting; the loop ends it
            if self.audio is not None:
                self._sound(index)
            if planes is None:
                return
            s.lateness_ms.append(round((time.monotonic() - due) * 1000, 3))
            if len(s.lateness_ms) > 10_000:
                del s.lateness_ms[:5_000]
        if planes is None:
            return
        if producer.write(planes if len(planes) > 1 else planes[0], FORMATS[spec.fmt], pts=index):
            s.frames += 1
        else:
            s.dropped += 1  # a drop ring with every slot held by its readers
        self.buffers.give(planes)  # copied into the slot: the next job may write them
        if self.audio is not None and spec.mode == "render":  # a block ring: picture n went in
            self._sound(index)

    def _sound(self, index: int) -> None:
        """Frame ``index``'s sound into the audio ring, or counted as dropped (not mixed yet)."""
        assert self.audio is not None
        if not self.audio.has(index):
            self.status.sound_dropped += 1
            return
        if self._audio_out.write(pcm_slot(self.audio.take(index)), PixelFormat.GRAY, pts=index):
            self.status.sound_frames += 1
        else:
            self.status.sound_dropped += 1  # a drop ring with every slot held by its readers
