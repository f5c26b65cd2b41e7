"""The Engine subsystem (Vault): render jobs against deadlines on a worker pool.

``render`` renders frames ``first .. first+count-1`` of a timeline (the
session's ``describe()["session"]`` data) into a ring (one the supervisor
created, e.g. ``[rings] declared = render:block``). It answers at once with a
stream id; the frames are computed by the scheduler's workers in parallel,
each into its own buffer (decoding and numpy release the GIL), and a
publisher thread, the ring's one producer, copies them into the ring in
order. When the stream ends, ``engine.render.done`` is published with its
counts (frames, missed deadlines, failures, seconds), or ``engine.render.failed``
with the reason. ``streams`` lists them; ``describe`` adds the scheduler's and
the cache's stats.

Each worker thread has its own MediaPool (``vault.max_open_files``); the frame
cache (``vault.cache_mb``) is shared. ``engine.workers`` = 0 means one per core.

NOT BUILT YET: prefetch ahead of a playback position, playback streams with
real-time deadlines (the Player issue), worker processes, the temp area.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from lumiera.actors import Actor, command
from lumiera.bus.codec import pack
from lumiera.errors import BadArguments, LumieraError
from lumiera.runtime_dir import RuntimeDir
from lumiera.shm.layout import PixelFormat
from lumiera.vault.cache import FrameCache
from lumiera.vault.media import MediaPool
from lumiera.vault.render import render_frame
from lumiera.vault.scheduler import JobHandle, Priority, Scheduler

FORMATS = {"rgb24": PixelFormat.RGB24, "gray": PixelFormat.GRAY, "yuv420p": PixelFormat.YUV420P}
JOB_DEADLINE_S = 60.0  # a background render's frame is late after this long
WAIT_FRAME_S = 120.0  # the publisher's bound on one frame (a job that never ends)


class EngineActor(Actor):
    name = "engine"
    summary = "render jobs on a worker pool, media I/O, frame cache"

    def on_start(self) -> None:
        cfg = self.ctx.config
        workers = cfg.get_int("engine.workers") or os.cpu_count() or 1
        self.scheduler = Scheduler(workers)
        self.cache = FrameCache(cfg.get_int("vault.cache_mb") * 2**20)
        self.max_open = cfg.get_int("vault.max_open_files")
        self._local = threading.local()
        self._pools: list[MediaPool] = []
        self._pools_lock = threading.Lock()
        self.streams: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def on_stop(self) -> None:
        self._stop.set()
        self.scheduler.shutdown(timeout=5.0)
        for t in self._threads:
            t.join(timeout=5.0)
        with self._pools_lock:
            for pool in self._pools:
                pool.close()

    def _pool(self) -> MediaPool:
        """This worker thread's own pool (PyAV containers are used by one thread)."""
        pool: MediaPool | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = MediaPool(self.max_open)
            with self._pools_lock:
                self._pools.append(pool)
        return pool

    @command
    def on_render(
        self, *, timeline: dict[str, Any], first: int, count: int, ring: str, fmt: str = "rgb24"
    ) -> dict[str, Any]:
        """Render frames first..first+count-1 of ``timeline`` into ``ring``; answers at once."""
        if fmt not in FORMATS:
            raise BadArguments(f"fmt {fmt!r}: one of {', '.join(FORMATS)}")
        if first < 0 or count < 1:
            raise BadArguments("first must be 0 or more and count at least 1")
        try:
            size = (int(timeline["output"]["width"]), int(timeline["output"]["height"]))
            for key in ("media", "tracks", "clips"):
                if not isinstance(timeline[key], list):
                    raise TypeError(key)
        except (KeyError, TypeError, ValueError) as e:
            raise BadArguments(f"timeline is not a session description ({e})") from None
        sid = f"s{next(self._ids)}"
        info = {
            "id": sid,
            "ring": ring,
            "first": first,
            "count": count,
            "state": "running",
            "frames": 0,
            "missed": 0,
            "failed": 0,
            "started": time.time(),
        }
        self.streams[sid] = info
        thread = threading.Thread(
            target=self._publish_stream,
            args=(info, timeline, fmt, size),
            name=f"render-{sid}",
            daemon=True,  # a stream blocked on a slow ring must not hold the process past stop
        )
        self._threads.append(thread)
        thread.start()
        return {"stream": sid, "frames": count}

    def _publish_stream(
        self, info: dict[str, Any], timeline: dict[str, Any], fmt: str, size: tuple[int, int]
    ) -> None:
        """The publisher: submits the jobs, then puts their frames into the ring in order."""
        from lumiera.shm.ring import Producer  # the one producer of this ring, in this thread

        started = time.monotonic()
        handles: list[JobHandle] = []
        assert self.ctx.runtime_dir is not None
        rd = RuntimeDir(Path(self.ctx.runtime_dir), self.ctx.instance, False)
        # zmq sockets belong to one thread: this one publishes its events itself,
        # and connects now, so the bus has subscribed by the time the stream ends.
        events: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PUB)
        events.connect(rd.endpoint("publish"))
        try:
            with Producer(rd, info["ring"], timeout=WAIT_FRAME_S) as producer:
                handles = [
                    self._submit(timeline, fmt, size, n)
                    for n in range(info["first"], info["first"] + info["count"])
                ]
                for n, handle in zip(itertools.count(info["first"]), handles, strict=False):
                    if self._stop.is_set():
                        raise LumieraError("the engine is stopping")
                    try:
                        planes = handle.result(WAIT_FRAME_S)
                    except Exception:
                        info["failed"] += 1  # this frame's job raised: the stream ends here
                        raise
                    producer.write(planes if len(planes) > 1 else planes[0], FORMATS[fmt], pts=n)
                    info["frames"] += 1
            info["state"] = "done"
        except Exception as e:  # noqa: BLE001 - the stream fails; the engine goes on
            info["state"], info["error"] = "failed", f"{type(e).__name__}: {e}"
            self.log.error("render stream %s failed: %s", info["id"], info["error"])
        info["missed"] = sum(h.late for h in handles)  # this stream's own, not the engine's
        info["seconds"] = round(time.monotonic() - started, 3)
        topic = "engine.render.done" if info["state"] == "done" else "engine.render.failed"
        body = {"sender": self.ctx.name, "ts": time.time(), **info}
        try:
            events.send_multipart([topic.encode(), pack(body)])
        finally:
            events.close(linger=1000)

    def _submit(
        self, timeline: dict[str, Any], fmt: str, size: tuple[int, int], n: int
    ) -> JobHandle:
        def job() -> tuple[np.ndarray[Any, np.dtype[np.uint8]], ...]:
            w, h = size
            out: tuple[np.ndarray[Any, np.dtype[np.uint8]], ...]
            if fmt == "yuv420p":
                cw, ch = (w + 1) // 2, (h + 1) // 2
                out = (
                    np.empty((h, w), np.uint8),
                    np.empty((ch, cw), np.uint8),
                    np.empty((ch, cw), np.uint8),
                )
            else:
                out = (np.empty((h, w, 3) if fmt == "rgb24" else (h, w), np.uint8),)
            return render_frame(timeline, n, self._pool(), out, fmt=fmt, cache=self.cache)

        deadline = time.monotonic() + JOB_DEADLINE_S
        return self.scheduler.submit(job, deadline, Priority.RENDER, f"frame {n}")

    @command
    def on_streams(self) -> list[dict[str, Any]]:
        """The render streams of this engine and where each stands."""
        return list(self.streams.values())

    def describe_state(self) -> dict[str, Any]:
        started = hasattr(self, "scheduler")
        return {
            "built": True,
            "scheduler": dict(self.scheduler.stats) if started else None,
            "cache": self.cache.stats() if started else None,
        }


ACTOR = EngineActor
