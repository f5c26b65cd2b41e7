"""The Engine subsystem (Vault): calculation streams of render jobs on a worker pool.

``render`` starts a stream: frames ``first .. first+count-1`` of a timeline
(the contract's :class:`~lumiera.bus.timeline.Timeline`, as the session's
``timeline`` command gives it; decoded and checked before the handler runs)
into a ring the supervisor
created (e.g. ``[rings] declared = render:block``), in mode ``render`` (every
frame, as fast as possible) or ``playback`` (real time at the output's rate,
late frames dropped and counted); see :mod:`lumiera.vault.stream` for how a
stream is split into prefetch and render jobs. It answers at once with the
stream's id (and, in playback, when its first frame is due). With
``audio_ring`` the stream also mixes each frame's sound and puts it into that
ring with the picture's pts (layout: :mod:`lumiera.shm.layout`, AUDIO RINGS):
in render mode sound n after picture n; in playback sound n just before
picture n, both at frame n's due time, and never dropped for a late picture
(see :mod:`lumiera.vault.stream`). ``streams`` then also says
``sound_frames`` and ``sound_dropped``. When a stream
ends, ``engine.render.done`` is published with its counts (state ``done`` or
``stopped``), or ``engine.render.failed`` with the reason. ``stop_stream``
ends one; ``streams`` lists them; ``stats.engine`` is published every
``engine.stats_interval`` s (queue, jobs, misses, cache, each stream's
position and prefetch lead); ``describe`` has the same.

Worker threads (``engine.workers``, 0: one per core) take the scheduler's most
urgent job. Each has its own MediaPool (``vault.max_open_files``) for cache
misses; each clip being read has its own decoder, open only while the clip is
within its stream's lead. So the engine holds at most ``vault.max_open_files``
files per worker plus one per clip being read. The frame cache
(``vault.cache_mb``) is shared.

NOT BUILT: worker processes (threads use the cores: decoding and numpy release
the GIL; the README's Figures give the scaling measured on 2 cores).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import threading
import time
from pathlib import Path
from typing import Any

from lumiera.actors import Actor, ActorContext, command
from lumiera.bus.timeline import Timeline, rate_of, rate_text
from lumiera.bus.topics import EngineRenderEnded, StatsEngine
from lumiera.errors import BadArguments, FaultsDisabled, NotFound, Unavailable
from lumiera.runtime_dir import RuntimeDir
from lumiera.vault.cache import FrameCache
from lumiera.vault.media import MediaPool, check_sources
from lumiera.vault.scheduler import Scheduler
from lumiera.vault.stream import WAIT_FRAME_S, RenderStream
from lumiera.vault.streamspec import FORMATS, MODES, StreamSpec, decode_threads, engine_workers

PREROLL_S = 0.25  # playback: the first frame is due this long after the request, by default
KEEP_ENDED = 64  # ended streams kept for ``streams``


class EngineActor(Actor):
    name = "engine"
    summary = "calculation streams of render jobs on a worker pool, media I/O, frame cache"

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__(ctx)
        cfg = ctx.config
        self.workers = engine_workers(cfg.get_int("engine.workers"))
        self.decode_threads = decode_threads(cfg.get_int("engine.decode_threads"), self.workers)
        self.lead = cfg.get_int("engine.prefetch_frames")
        self.cache = FrameCache(cfg.get_int("vault.cache_mb") * 2**20)
        self.max_open = cfg.get_int("vault.max_open_files")
        self.tick_interval = cfg.get_float("engine.stats_interval")
        self.scheduler: Scheduler | None = None  # its worker threads run from on_start on
        self.rd: RuntimeDir | None = None
        self._local = threading.local()
        self._pools: list[MediaPool] = []
        self._pools_lock = threading.Lock()
        self.streams: dict[str, RenderStream] = {}
        self._ids = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._ring_threads: dict[str, threading.Thread] = {}  # the last stream's, per ring
        self.slow: dict[int, float] = {}  # fault injection: output frame -> seconds

    def on_start(self) -> None:
        assert self.ctx.runtime_dir is not None
        self.rd = RuntimeDir(Path(self.ctx.runtime_dir), self.ctx.instance, False)
        self.scheduler = Scheduler(self.workers)

    def on_stop(self) -> None:
        if self.scheduler is None:  # stopped before it was started
            return
        for stream in self.streams.values():
            stream.stop()
        # Within half the grace period the supervisor gives an orderly stop.
        deadline = time.monotonic() + self.ctx.config.get_float("appstate.grace_period") / 2
        self.scheduler.shutdown(timeout=deadline - time.monotonic())
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._pools_lock:
            for pool in self._pools:
                pool.close()

    def on_tick(self) -> None:
        self.ctx.publish("stats.engine", self.stats())

    def _pool(self) -> MediaPool:
        """This worker thread's own pool (PyAV containers are used by one thread)."""
        pool: MediaPool | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = MediaPool(self.max_open, self.decode_threads)
            with self._pools_lock:
                self._pools.append(pool)
        return pool

    @command
    def on_render(
        self,
        *,
        timeline: Timeline,
        first: int,
        count: int,
        ring: str,
        fmt: str = "rgb24",
        mode: str = "render",
        rate: str | None = None,
        start: float | None = None,
        audio_ring: str | None = None,
    ) -> dict[str, Any]:
        """Start a stream: frames first..first+count-1 of ``timeline`` into ``ring``; at once.

        ``mode``: render (every frame) or playback (real time; ``rate``, default
        the output's, and ``start``, the time.monotonic() when frame ``first`` is due).
        ``audio_ring``: each frame's sound into that ring too (playback: a drop ring).
        Fails before any frame when a media of the range is missing (``media``) or
        is not the file the session probed (``media_changed``).
        """
        if fmt not in FORMATS:
            raise BadArguments(f"fmt {fmt!r}: one of {', '.join(FORMATS)}")
        if mode not in MODES:
            raise BadArguments(f"mode {mode!r}: one of {', '.join(MODES)}")
        if first < 0 or count < 1:
            raise BadArguments("first must be 0 or more and count at least 1")
        if audio_ring == ring:
            raise BadArguments("audio_ring: a ring of its own, not the frames' ring")
        try:
            fps = timeline.output.rate if rate is None else rate_of(rate)
        except ValueError as e:
            raise BadArguments(f"rate: {e}") from None
        check_sources(timeline, first, count)
        scheduler = self._scheduler()
        sid = f"s{next(self._ids)}"
        due = start if start is not None else time.monotonic() + PREROLL_S
        spec = StreamSpec(
            sid,
            timeline,
            first,
            count,
            ring,
            fmt=fmt,
            mode=mode,
            rate=fps,
            start=due,
            audio_ring=audio_ring,
            decode_threads=self.decode_threads,
        )
        stream = RenderStream(
            spec,
            scheduler,
            self.cache,
            self._pool,
            workers=self.workers,
            lead=self.lead,
            delay=lambda index: self.slow.get(index, 0.0),
        )
        self.streams[sid] = stream
        self._forget_ended()
        rings = [ring] if audio_ring is None else [ring, audio_ring]
        before = [t for t in map(self._ring_threads.get, rings) if t is not None]
        thread = threading.Thread(
            target=self._run_stream,
            args=(stream, before),
            name=f"stream-{sid}",
            daemon=True,  # a stream blocked on a slow ring must not hold the process past stop
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        for name in rings:
            self._ring_threads[name] = thread
        stream.thread = thread
        thread.start()
        reply = {"stream": sid, "frames": count, "mode": mode, "rate": rate_text(fps), "start": due}
        return reply | ({"audio_ring": audio_ring} if audio_ring is not None else {})

    def _scheduler(self) -> Scheduler:
        if self.scheduler is None:
            raise Unavailable("the engine has not started")
        return self.scheduler

    def _run_stream(self, stream: RenderStream, before: list[threading.Thread]) -> None:
        """The stream's thread: its rings' one producer; publishes the stream's end itself.

        A ring has one producer at a time: a stream waits for the ones before it on
        the same rings (stopped, e.g. by a seek) to end first.
        """
        from lumiera.shm.ring import Producer

        assert self.rd is not None  # set by on_start
        for thread in before:
            thread.join(WAIT_FRAME_S)
        started = time.monotonic()
        try:
            with contextlib.ExitStack() as rings:
                producer = rings.enter_context(
                    Producer(self.rd, stream.spec.ring, timeout=WAIT_FRAME_S)
                )
                audio = None
                if stream.spec.audio_ring is not None:  # its sound: a producer of that ring too
                    audio = rings.enter_context(
                        Producer(self.rd, stream.spec.audio_ring, timeout=WAIT_FRAME_S)
                    )
                stream.run(producer, audio)
        except Exception as e:  # noqa: BLE001 - e.g. no such ring: this stream fails
            said = f"{type(e).__name__}: {e}"
            failed = stream.status.state == "failed" and stream.status.error
            stream.status.state = "failed"
            # Closing a ring can fail after the stream did (a job still in it): the first
            # reason is the one to tell.
            stream.status.error = f"{stream.status.error}; then {said}" if failed else said
        info = stream.info()
        if info.state == "failed":
            self.log.error("stream %s failed: %s", info.id, info.error)
        ended = EngineRenderEnded(
            **dataclasses.asdict(info), seconds=round(time.monotonic() - started, 3)
        )
        topic = "engine.render.failed" if info.state == "failed" else "engine.render.done"
        self.ctx.publish(topic, ended)

    def _forget_ended(self) -> None:
        ended = [k for k, s in self.streams.items() if s.status.state != "running"]
        for key in ended[: max(0, len(ended) - KEEP_ENDED)]:
            del self.streams[key]

    @command
    def on_stop_stream(self, *, stream: str) -> dict[str, Any]:
        """End a stream after the frame it is on; its end is published as state ``stopped``."""
        found = self.streams.get(stream)
        if found is None:
            raise NotFound(f"no stream {stream!r}")
        found.stop()
        # Answer once it has ended (bounded): a stream started next into the same
        # ring, as a seek does, then starts at once and on time.
        thread = found.thread
        if thread is not None:
            # Bounded well within the heartbeat watchdog: this is the main thread.
            thread.join(self.ctx.config.get_float("appstate.watchdog_timeout") / 4)
        return {"stream": stream, "state": found.status.state}

    @command
    def on_slow(self, *, first: int, last: int, ms: float) -> dict[str, Any]:
        """Make the render jobs of frames first..last sleep ``ms`` (with debug.faults; 0 clears)."""
        if not self.ctx.config.get_bool("debug.faults"):
            raise FaultsDisabled("fault injection is off (set debug.faults = yes)")
        for index in range(first, last + 1):
            if ms > 0:
                self.slow[index] = ms / 1000
            else:
                self.slow.pop(index, None)
        return {"slow": len(self.slow)}

    @command
    def on_streams(self) -> list[dict[str, Any]]:
        """The streams of this engine and where each stands."""
        return [self._listed(s) for s in self.streams.values()]

    @staticmethod
    def _listed(stream: RenderStream) -> dict[str, Any]:
        """A stream as ``streams`` lists it: its info, and its sound's counts if it has sound."""
        listed: dict[str, Any] = stream.info().to_wire()
        if stream.spec.audio_ring is not None:
            listed["audio_ring"] = stream.spec.audio_ring
            listed["sound_frames"] = stream.status.sound_frames
            listed["sound_dropped"] = stream.status.sound_dropped
        return listed

    def stats(self) -> StatsEngine:
        scheduler = self._scheduler()
        return StatsEngine(
            workers=self.workers,
            queued=scheduler.queued,
            jobs=dict(scheduler.stats),
            cache=self.cache.stats(),
            streams=[s.info() for s in self.streams.values() if s.status.state == "running"],
        )

    def describe_state(self) -> dict[str, Any]:
        started = self.scheduler is not None
        return {"built": True, **(self.stats().to_wire() if started else {})}


ACTOR = EngineActor
