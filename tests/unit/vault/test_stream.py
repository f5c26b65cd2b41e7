"""A calculation stream: jobs on real worker threads, frames into a fake ring producer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lumiera.actors import ActorContext
from lumiera.config import load
from lumiera.errors import MediaError
from lumiera.shm.layout import PixelFormat
from lumiera.vault import engine as engine_module
from lumiera.vault import stream as stream_module
from lumiera.vault.cache import FrameCache
from lumiera.vault.engine import EngineActor
from lumiera.vault.media import MediaPool
from lumiera.vault.render import frame_buffers, render_frame
from lumiera.vault.scheduler import Priority, Scheduler
from lumiera.vault.stream import RenderStream
from lumiera.vault.streamspec import FORMATS, StreamSpec
from tests.support import timeline_of

from .mediakit import H, W, read_code, write_video

WORKERS = 2
FIRST, COUNT = 2, 34  # output frames 2..35 of a timeline 40 frames long
B_FIRST = 1000  # the number coded in b.mkv's frame 0

Array = np.ndarray[Any, np.dtype[np.uint8]]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("stream-media")
    return {
        "a": write_video(d / "a.mkv", 30, "ffv1"),
        "b": write_video(d / "b.mkv", 40, "ffv1", first=B_FIRST),
    }


def _clip(cid: str, media: str, track: str, position: int, src: tuple[int, int], *, opacity=1.0):
    return {
        "id": cid,
        "media": media,
        "track": track,
        "position": position,
        "source_in": src[0],
        "source_out": src[1],
        "opacity": opacity,
    }


@pytest.fixture
def timeline(media):
    """V1: a cut at 20 from a to b; V2: b at 40 % over 12..23 (frames c2 does not show)."""
    return {
        "output": {"width": W, "height": H, "rate": "25"},
        "media": [
            {"id": "ma", "path": str(media["a"]), "frames": 30},
            {"id": "mb", "path": str(media["b"]), "frames": 40},
        ],
        "tracks": [{"id": "v1", "name": "V1"}, {"id": "v2", "name": "V2"}],
        "clips": [
            _clip("c1", "ma", "v1", 0, (0, 20)),
            _clip("c2", "mb", "v1", 20, (2, 22)),
            _clip("c3", "mb", "v2", 12, (24, 36), opacity=0.4),
        ],
    }


@dataclass
class Written:
    pts: int
    planes: tuple[Array, ...]
    at: float  # time.monotonic() when write was called
    fmt: PixelFormat


@dataclass
class FakeProducer:
    """A ring's producer: records what it is given; slow (``delay``) or full (``refuse``)."""

    delay: float = 0.0
    refuse: frozenset[int] = frozenset()  # pts it does not take (a drop ring, every slot held)
    on_write: Callable[[int], None] | None = None
    written: list[Written] = field(default_factory=list)
    calls: int = 0

    def write(self, pixels: Any, fmt: PixelFormat, pts: int = 0, timeout: Any = None) -> bool:
        at = time.monotonic()
        self.calls += 1
        if self.on_write is not None:
            self.on_write(pts)
        if self.delay:
            time.sleep(self.delay)
        if pts in self.refuse:
            return False
        planes = pixels if isinstance(pixels, tuple) else (pixels,)
        self.written.append(Written(pts, tuple(p.copy() for p in planes), at, fmt))
        return True

    @property
    def pts(self) -> list[int]:
        return [w.pts for w in self.written]


class Engine:
    """A scheduler with worker threads and a MediaPool per thread, as the engine has."""

    def __init__(self) -> None:
        self.scheduler = Scheduler(WORKERS)
        self._local = threading.local()
        self._pools: list[MediaPool] = []
        self._lock = threading.Lock()
        self.streams: list[RenderStream] = []
        self.threads: list[threading.Thread] = []

    def pool(self) -> MediaPool:
        pool: MediaPool | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = MediaPool(4)
            with self._lock:
                self._pools.append(pool)
        return pool

    def stream(
        self,
        timeline: dict[str, Any],
        *,
        fmt: str = "rgb24",
        mode: str = "render",
        first: int = FIRST,
        count: int = COUNT,
        rate: Fraction = Fraction(25),
        start: float = 0.0,
        lead: int = 16,
        cache: FrameCache | None = None,
        decode_threads: int = 0,
    ) -> RenderStream:
        spec = StreamSpec(
            "s1",
            timeline_of(timeline),
            first,
            count,
            "ring",
            fmt,
            mode,
            rate,
            start,
            decode_threads=decode_threads,
        )
        cache = cache if cache is not None else FrameCache(64 << 20)
        made = RenderStream(spec, self.scheduler, cache, self.pool, workers=WORKERS, lead=lead)
        self.streams.append(made)
        return made

    def start(self, stream: RenderStream, producer: FakeProducer) -> threading.Thread:
        thread = threading.Thread(target=stream.run, args=(producer,), daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread

    def close(self) -> None:
        for s in self.streams:
            s.stop()
        for t in self.threads:
            t.join(10)
        self.scheduler.shutdown()
        with self._lock:
            for pool in self._pools:
                pool.close()


@pytest.fixture
def engine() -> Iterator[Engine]:
    made = Engine()
    try:
        yield made
    finally:
        made.close()


def expected_frames(timeline: dict[str, Any], fmt: str, indices: range) -> dict[int, Any]:
    """Each output frame rendered on its own: a fresh pool, no cache."""
    pool, contract = MediaPool(), timeline_of(timeline)
    try:
        return {
            n: tuple(
                p.copy()
                for p in render_frame(contract, n, pool, frame_buffers(fmt, (W, H)), fmt=fmt)
            )
            for n in indices
        }
    finally:
        pool.close()


def distinct_sources(timeline: dict[str, Any], indices: range) -> set[tuple[str, int]]:
    contract = timeline_of(timeline)
    return {(clip.id, source) for n in indices for clip, source in contract.visible(n)}


# -- render mode ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yuv420p", "rgb24"])
def test_render_mode_writes_every_frame_in_order_each_the_exact_composite(engine, timeline, fmt):
    stream = engine.stream(timeline, fmt=fmt)
    producer = FakeProducer()
    stream.run(producer)
    info = stream.info().to_wire()
    assert info["state"] == "done", info
    assert producer.pts == list(range(FIRST, FIRST + COUNT))
    assert info["frames"] == COUNT and info["dropped"] == 0 and info["failed"] == 0
    assert info["position"] == FIRST + COUNT
    expected = expected_frames(timeline, fmt, range(FIRST, FIRST + COUNT))
    for w in producer.written:
        assert w.fmt == FORMATS[fmt]
        assert len(w.planes) == len(expected[w.pts])
        for got, exp in zip(w.planes, expected[w.pts], strict=True):
            assert got.shape == exp.shape and (got == exp).all(), w.pts
    # where one opaque clip is shown, the frame is that clip's source frame
    by_pts = {w.pts: w.planes[0] for w in producer.written}
    assert [read_code(by_pts[n]) for n in range(FIRST, 12)] == list(range(FIRST, 12))
    assert [read_code(by_pts[n]) for n in range(24, FIRST + COUNT)] == [
        B_FIRST + 2 + n - 20 for n in range(24, FIRST + COUNT)
    ]


def test_clip_readers_decode_with_the_streams_decoder_threads_and_the_frames_stay_exact(
    engine, timeline
):
    stream = engine.stream(timeline, fmt="yuv420p", decode_threads=1)
    assert stream.readers and all(r.pool.threads == 1 for r in stream.readers)
    producer = FakeProducer()
    stream.run(producer)
    assert stream.info().to_wire()["state"] == "done"
    expected = expected_frames(timeline, "yuv420p", range(FIRST, FIRST + COUNT))
    assert producer.pts == list(range(FIRST, FIRST + COUNT))
    for w in producer.written:
        for got, exp in zip(w.planes, expected[w.pts], strict=True):
            assert (got == exp).all(), w.pts


def engine_actor(tmp_path: Path, defs: list[str]) -> EngineActor:
    """The Engine's actor with configuration ``defs``, in this process (not started)."""
    return EngineActor(
        ActorContext(
            name="engine",
            instance="t1",
            config=load(defs=defs),
            options={},
            runtime_dir=str(tmp_path),
            temp_dir=str(tmp_path),
        )
    )


@pytest.mark.parametrize(
    ("defs", "threads"),
    [
        (["engine.workers=2"], 1),  # 2 cores' worth or fewer: one thread each
        (["engine.workers=2", "engine.decode_threads=3"], 3),  # configured: as configured
    ],
)
def test_the_engine_gives_its_decoders_and_the_streams_it_starts_its_decoder_threads(
    timeline, tmp_path, monkeypatch, defs, threads
):
    specs: list[StreamSpec] = []

    class Made(Exception):
        pass

    def made(spec: StreamSpec, *_args: Any, **_kw: Any) -> None:
        specs.append(spec)
        raise Made  # no stream runs: only what it was given is looked at

    monkeypatch.setattr(engine_module, "RenderStream", made)
    actor = engine_actor(tmp_path, defs)
    assert actor.decode_threads == threads
    actor.on_start()
    try:
        assert actor._pool().threads == threads  # a worker's own pool
        with pytest.raises(Made):
            actor.on_render(timeline=timeline_of(timeline), first=FIRST, count=2, ring="r")
    finally:
        actor.on_stop()
    assert [s.decode_threads for s in specs] == [threads]  # its clip readers' pools


def test_each_source_frame_is_decoded_once_and_render_jobs_find_it_prefetched(engine, timeline):
    cache = FrameCache(64 << 20)
    stream = engine.stream(timeline, cache=cache)
    stream.run(FakeProducer())
    info = stream.info().to_wire()
    assert info["state"] == "done", info
    frames = range(FIRST, FIRST + COUNT)
    sources = distinct_sources(timeline, frames)
    assert len(sources) == 46  # c1: 2..19, c2: 20..35, c3: 12..23
    assert info["decoded"] == len(sources)
    shown = sum(len(timeline_of(timeline).visible(n)) for n in frames)
    stats = cache.stats()
    assert stats["hits"] >= shown
    assert stats["misses"] == 0  # no render job decoded a frame itself
    assert stats["evictions"] == 0
    # a render reads each frame once: what it read left the cache once used
    assert stats["frames"] == 0 and stats["bytes"] == 0


def test_a_render_leaves_in_the_cache_what_it_did_not_put_there(engine, timeline):
    cache = FrameCache(64 << 20)
    stream = engine.stream(timeline, cache=cache)
    clip, _source = timeline_of(timeline).visible(FIRST)[0]
    key = next(r for r in stream.readers if r.clip.id == clip.id).key(FIRST)
    before = expected_frames(timeline, "rgb24", range(FIRST, FIRST + 1))[FIRST][0].copy()
    cache.put(key, before)  # another stream's frame, say (the right picture)
    stream.run(FakeProducer())
    assert stream.info().state == "done"
    assert cache.get(key) is before and cache.stats()["frames"] == 1


def test_prefetch_keeps_ahead_of_a_slow_consumer_and_never_beyond_the_lead(engine, timeline):
    leads: dict[int, int | None] = {}
    stream: RenderStream = engine.stream(timeline, lead=12)

    def sample(pts: int) -> None:  # while the frame ``pts`` is written
        leads[pts] = stream.prefetch_lead()

    stream.run(FakeProducer(delay=0.02, on_write=sample))
    assert stream.info().to_wire()["state"] == "done"
    # A render reads only as far ahead as its jobs in flight, whatever lead it was given.
    assert stream.lead == stream.window == 2 * WORKERS + 2 < 12
    assert sorted(leads) == list(range(FIRST, FIRST + COUNT))
    values = [v for v in leads.values() if v is not None]
    assert len(values) == COUNT  # some clip is visible in every frame
    assert all(0 < v <= stream.lead for v in values), leads
    # after the first few frames, the slowest reader is well ahead: each clip's reader
    # fills to the lead (or to the clip's end) while the consumer takes a frame
    later = {n: v for n, v in leads.items() if n >= FIRST + 6 and v is not None}
    end = stream.spec.end
    full = {  # how far the slowest visible clip's reader may read at n
        n: min(min(stream.lead, min(r.end, end) - n) for r in stream.readers if r.needed(n))
        for n in later
    }
    near_full = [n for n in later if later[n] >= full[n] - 4]  # 4: one reader job's chunk
    assert len(near_full) >= 0.8 * len(later), (leads, full)


def test_a_missing_or_unreadable_source_fails_the_stream_before_any_frame_is_written(
    engine, timeline, tmp_path
):
    not_media = tmp_path / "notes.mkv"
    not_media.write_text("not a video\n")
    for path in (tmp_path / "gone.mkv", not_media):
        timeline["media"][0]["path"] = str(path)
        stream = engine.stream(timeline)
        producer = FakeProducer()
        stream.run(producer)
        info = stream.info().to_wire()
        assert info["state"] == "failed", info
        assert str(path) in info["error"]
        assert producer.calls == 0 and info["frames"] == 0
        assert info["failed"] >= 1
    # the workers go on
    handle = engine.scheduler.submit(lambda: 42, time.monotonic() + 30, Priority.RENDER, "after")
    assert handle.result(10) == 42


def test_a_full_drop_ring_counts_refused_frames_as_dropped_and_the_stream_ends_done(
    engine, timeline
):
    refused = frozenset({3, 4, 17, 30})
    stream = engine.stream(timeline)
    producer = FakeProducer(refuse=refused)
    stream.run(producer)
    info = stream.info().to_wire()
    assert info["state"] == "done", info
    assert producer.pts == [n for n in range(FIRST, FIRST + COUNT) if n not in refused]
    assert info["dropped"] == len(refused) and info["failed"] == 0
    assert info["frames"] == COUNT - len(refused)


def test_a_cache_too_small_for_the_lead_still_gives_every_frame_exactly(engine, timeline):
    cache = FrameCache(0)  # keeps nothing: every render job decodes in its worker's pool
    stream = engine.stream(timeline, cache=cache)
    assert stream.lead == 2 * WORKERS + 2  # the lead is bounded by the cache, not below the window
    producer = FakeProducer()
    stream.run(producer)
    info = stream.info().to_wire()
    assert info["state"] == "done", info
    frames = range(FIRST, FIRST + COUNT)
    assert producer.pts == list(frames)
    expected = expected_frames(timeline, "rgb24", frames)
    for w in producer.written:
        assert (w.planes[0] == expected[w.pts][0]).all(), w.pts
    assert info["decoded"] == len(distinct_sources(timeline, frames))
    stats = cache.stats()
    assert stats["frames"] == 0 and stats["hits"] == 0
    assert stats["misses"] == sum(len(timeline_of(timeline).visible(n)) for n in frames)


def test_a_render_job_that_raises_fails_the_stream_after_the_frames_before_it(
    engine, timeline, monkeypatch
):
    real = render_frame

    def render(timeline, index, pool, out, **kw):
        if index == 7:
            raise MediaError("media x.mkv: frame 7 is corrupt")
        return real(timeline, index, pool, out, **kw)

    monkeypatch.setattr(stream_module, "render_frame", render)
    stream = engine.stream(timeline)
    producer = FakeProducer()
    stream.run(producer)
    info = stream.info().to_wire()
    assert info["state"] == "failed", info
    assert info["error"] == "MediaError: media x.mkv: frame 7 is corrupt"
    assert producer.pts == list(range(FIRST, 7))
    assert info["failed"] == 1 and info["frames"] == 7 - FIRST


def test_render_mode_gives_up_on_a_job_that_never_ends(engine, timeline, monkeypatch):
    release = threading.Event()
    real = render_frame

    def render(timeline, index, pool, out, **kw):
        if index == 6:
            release.wait(30)
        return real(timeline, index, pool, out, **kw)

    monkeypatch.setattr(stream_module, "render_frame", render)
    monkeypatch.setattr(stream_module, "WAIT_FRAME_S", 0.5)
    stream = engine.stream(timeline)
    producer = FakeProducer()
    thread = engine.start(stream, producer)
    try:
        thread.join(2.0)
        ended = not thread.is_alive()
        info = stream.info().to_wire()
    finally:
        release.set()  # the stuck job ends; the engine fixture stops the stream
    assert ended, info
    assert info["state"] == "failed", info
    assert producer.pts == list(range(FIRST, 6))


def test_stop_ends_the_stream_soon_after_the_frame_it_is_on(engine, timeline):
    stream = engine.stream(timeline)
    producer = FakeProducer(delay=0.05)
    thread = engine.start(stream, producer)
    deadline = time.monotonic() + 10
    while len(producer.written) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    stopped_at = time.monotonic()
    stream.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - stopped_at < 2.0
    info = stream.info().to_wire()
    assert info["state"] == "stopped", info
    assert 5 <= len(producer.written) < COUNT
    assert producer.pts == list(range(FIRST, FIRST + len(producer.written)))
    assert info["frames"] == len(producer.written)


# -- playback mode -------------------------------------------------------------------------

RATE = Fraction(50)


def test_playback_writes_each_frame_at_its_due_time_not_before(engine, timeline):
    start = time.monotonic() + 0.2
    stream = engine.stream(timeline, mode="playback", rate=RATE, start=start)
    producer = FakeProducer()
    stream.run(producer)
    info = stream.info().to_wire()
    assert info["state"] == "done", info
    spec = stream.spec
    assert info["frames"] + info["dropped"] == COUNT
    assert producer.pts == sorted(producer.pts)
    assert len(producer.written) >= COUNT * 3 // 4  # a noisy machine may drop a few
    for w in producer.written:
        assert w.at >= spec.due(w.pts), (w.pts, w.at - spec.due(w.pts))
    lateness = sorted(w.at - spec.due(w.pts) for w in producer.written)
    assert lateness[len(lateness) // 2] < 0.05
    assert info["lateness_ms_p50"] is not None and info["lateness_ms_p50"] < 50


def _slow_render(monkeypatch, slow: range, seconds: float) -> None:
    real = render_frame

    def render(timeline, index, pool, out, **kw):
        if index in slow:
            time.sleep(seconds)
        return real(timeline, index, pool, out, **kw)

    monkeypatch.setattr(stream_module, "render_frame", render)


def _check_no_backlog(stream: RenderStream, producer: FakeProducer, slow: range, ended: float):
    info = stream.info().to_wire()
    spec = stream.spec
    assert info["state"] == "done", info
    assert info["frames"] + info["dropped"] == COUNT
    assert info["frames"] == len(producer.written)
    assert producer.pts == sorted(producer.pts)
    assert not set(slow) & set(producer.pts)  # too late: dropped, never shown late
    assert info["dropped"] >= len(slow)
    for w in producer.written:
        assert w.at >= spec.due(w.pts)
    # the stream caught up after the stall: the frames of its last third are shown on time
    last = spec.end - 1
    tail = [w for w in producer.written if w.pts >= spec.first + 2 * COUNT // 3]
    assert len(tail) >= (spec.end - (spec.first + 2 * COUNT // 3)) // 2, producer.pts
    assert producer.pts[-1] >= last - 2, producer.pts
    assert producer.written[-1].at - spec.due(producer.pts[-1]) < 0.1
    assert ended - spec.start < COUNT / RATE + 0.5


def test_playback_drops_frames_rendered_too_late_and_keeps_time_after(
    engine, timeline, monkeypatch
):
    slow = range(10, 13)
    _slow_render(monkeypatch, slow, 0.3)
    start = time.monotonic() + 0.2
    stream = engine.stream(timeline, mode="playback", rate=RATE, start=start, lead=40)
    producer = FakeProducer()
    stream.run(producer)
    _check_no_backlog(stream, producer, slow, time.monotonic())


def test_playback_recovers_from_a_stall_longer_than_the_prefetch_lead(
    engine, timeline, monkeypatch
):
    slow = range(10, 13)
    _slow_render(monkeypatch, slow, 0.3)  # 15 frame periods at 50 fps; the lead is 6
    start = time.monotonic() + 0.2
    stream = engine.stream(timeline, mode="playback", rate=RATE, start=start, lead=0)
    assert stream.lead == 2 * WORKERS + 2
    producer = FakeProducer()
    stream.run(producer)
    _check_no_backlog(stream, producer, slow, time.monotonic())


# -- the stream's spec ---------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "mode"), [("rgba", "render"), ("rgb24", "live")])
def test_an_unknown_format_or_mode_is_a_value_error(timeline, fmt, mode):
    spec = StreamSpec("s1", timeline, 0, 4, "ring", fmt, mode)
    scheduler = Scheduler(0)
    try:
        with pytest.raises(ValueError, match=fmt if fmt == "rgba" else mode):
            RenderStream(spec, scheduler, FrameCache(1 << 20), MediaPool, workers=1, lead=4)
    finally:
        scheduler.shutdown()


def test_a_reader_closes_its_file_once_its_clip_is_read(engine, media):
    # Ten cuts of 4 frames: at any time only the clips within the lead are open.
    clips = [_clip(f"c{k}", "ma", "v1", 4 * k, (k, k + 4)) for k in range(10)]
    timeline = {
        "output": {"width": W, "height": H, "rate": "25"},
        "media": [{"id": "ma", "path": str(media["a"]), "frames": 30}],
        "tracks": [{"id": "v1", "name": "V1"}],
        "clips": clips,
    }
    stream = engine.stream(timeline, first=0, count=40, lead=8)
    open_readers: list[int] = []

    def sample(_pts: int) -> None:
        open_readers.append(sum(r.pool.open_count for r in stream.readers))

    stream.run(FakeProducer(delay=0.01, on_write=sample))
    assert stream.info().to_wire()["state"] == "done"
    # the lead (at least the window, 6) spans at most 4 clips of 4 frames, plus the current
    assert max(open_readers) <= stream.lead // 4 + 2, open_readers
    assert all(r.pool.open_count == 0 for r in stream.readers)
