"""A render stream into a real block ring: each frame's job renders straight into its slot.

Real ring, real threads: the stream claims each frame's slot ahead
(``Producer.claim_ahead``), its job composites into the slot's planes and the
stream publishes it, no copy; a :class:`Consumer` in a thread of its own reads
the frames as the encoder would.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from lumiera.errors import DeadlineMissed, MediaError
from lumiera.shm import ring
from lumiera.shm.layout import PixelFormat, frame_bytes
from lumiera.shm.ring import RingTimeout
from lumiera.vault import stream as stream_module
from lumiera.vault.render import render_frame
from lumiera.vault.scheduler import JobHandle
from lumiera.vault.stream import RenderStream
from lumiera.vault.streamspec import render_slots, render_window
from tests.unit.shm.ringkit import WAIT_S, RingKit, put, ring_kit, take
from tests.unit.vault import test_stream as streamkit

from .mediakit import H, W

# The calculation stream tests' fixtures and helpers: the same timeline (cuts, a clip
# at 40 % over another), the same Engine (a scheduler with WORKERS threads).
media = streamkit.media
timeline = streamkit.timeline
engine = streamkit.engine
Engine = streamkit.Engine
expected_frames = streamkit.expected_frames
FIRST, COUNT, WORKERS = streamkit.FIRST, streamkit.COUNT, streamkit.WORKERS
RING = "ring"  # the ring of the Engine helper's streams
FRAMES = range(FIRST, FIRST + COUNT)

Array = np.ndarray[Any, np.dtype[np.uint8]]


@pytest.fixture
def kit() -> Iterator[RingKit]:
    """Rings of a fresh instance; whatever the test opened on them is closed after it."""
    with ring_kit() as k:
        yield k


def render_ring(kit: RingKit, slots: int = render_slots(WORKERS)) -> None:
    """The stream's block ring, its slots big enough for a frame of any of the formats."""
    kit.create(RING, slots=slots, payload_bytes=frame_bytes(PixelFormat.RGB24, W, H))


class Reader:
    """A consumer in a thread of its own: copies each frame (seq, pts, planes), releases it.

    ``pause``: seconds it holds each frame (a slow encoder). It reads until
    :meth:`finish` is called and no frame came for a while.
    """

    def __init__(self, consumer: ring.Consumer, pause: float = 0.0) -> None:
        self.consumer, self.pause = consumer, pause
        self.got: list[tuple[int, int, tuple[Array, ...]]] = []
        self.error: BaseException | None = None
        self._finished = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        c = self.consumer
        try:
            while True:
                try:
                    frame = c.acquire(0.05)
                except RingTimeout:
                    if self._finished.is_set():
                        return
                    continue
                try:
                    self.got.append((frame.seq, frame.pts, tuple(p.copy() for p in frame.planes)))
                    if self.pause:
                        time.sleep(self.pause)
                finally:
                    c.release(frame)
        except BaseException as e:  # noqa: BLE001 - reported by finish()
            self.error = e

    def finish(self) -> None:
        """Read what is left, then stop (the consumer is the test's again)."""
        self._finished.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "the reader did not stop"
        if self.error is not None:
            raise self.error

    @property
    def pts(self) -> list[int]:
        return [pts for _seq, pts, _planes in self.got]

    def check_exact(self, timeline: dict[str, Any], fmt: str) -> None:
        """Frames 1.. of the ring, in order, each the exact composite of its output frame."""
        assert [seq for seq, _pts, _planes in self.got] == list(range(1, len(self.got) + 1))
        expected = expected_frames(timeline, fmt, range(FIRST, FIRST + len(self.got)))
        assert self.pts == list(expected)
        for _seq, pts, planes in self.got:
            assert len(planes) == len(expected[pts])
            for got, exp in zip(planes, expected[pts], strict=True):
                assert got.shape == exp.shape and (got == exp).all(), pts


@contextlib.contextmanager
def reading(kit: RingKit, pause: float = 0.0) -> Iterator[Reader]:
    reader = Reader(kit.consumer(RING), pause)
    try:
        yield reader
    finally:
        reader.finish()


def start(engine: Engine, stream: RenderStream, producer: ring.Producer) -> threading.Thread:
    """The stream running in a thread of its own (Engine.start, for a real producer)."""
    thread = threading.Thread(target=stream.run, args=(producer,), daemon=True)
    engine.threads.append(thread)  # joined by the engine fixture, whatever happens
    thread.start()
    return thread


def no_copy(stream: RenderStream, producer: ring.Producer, monkeypatch) -> None:
    """Make the copy path (a buffer of the stream's, producer.write) fail the stream."""

    def refuse(*_args: Any, **_kw: Any) -> Any:
        raise AssertionError("the copy path was taken")

    monkeypatch.setattr(stream.buffers, "take", refuse)
    monkeypatch.setattr(producer, "write", refuse)


def clean_close(kit: RingKit, producer: ring.Producer, reader: Reader) -> None:
    """Close the stream's producer (no BufferError), then :func:`the_next_producer_follows`."""
    kit.detach(producer)  # gives back the slots the stream claimed and did not publish
    assert producer.claims == 0
    the_next_producer_follows(kit, reader)


def the_next_producer_follows(kit: RingKit, reader: Reader) -> None:
    """The next producer of the ring opens; its first frame follows the stream's, no gap."""
    after = kit.producer(RING)
    assert after.claims == 0
    seq = put(after, tag=7)
    assert seq == len(reader.got) + 1
    assert take(reader.consumer) == (seq, 7, True)
    assert reader.consumer.drops == 0


# -- every frame, straight into its slot --------------------------------------------------


@pytest.mark.parametrize("fmt", ["yuv420p", "rgb24"])
def test_a_render_into_a_block_ring_renders_each_frame_into_its_slot_exactly_and_in_order(
    engine: Engine, kit: RingKit, timeline, fmt: str, monkeypatch
):
    render_ring(kit)
    stream = engine.stream(timeline, fmt=fmt)
    with reading(kit) as reader:
        producer = kit.producer(RING)
        no_copy(stream, producer, monkeypatch)
        stream.run(producer)
        assert producer.claims == 0
    info = stream.info().to_wire()
    assert info["state"] == "done", info
    assert info["frames"] == COUNT and info["failed"] == 0 and info["dropped"] == 0
    assert reader.pts == list(FRAMES)
    reader.check_exact(timeline, fmt)
    assert stream.buffers._free == []  # no buffer was ever taken or given back
    clean_close(kit, producer, reader)


@pytest.mark.parametrize("slots", [1, 2, 3, render_slots(WORKERS)])
def test_a_ring_with_few_slots_and_a_slow_reader_still_gets_every_frame_exactly(
    engine: Engine, kit: RingKit, timeline, monkeypatch, slots: int
):
    """Fewer slots than the window (one, as the copy path took too): the stream waits for
    the reader to release each."""
    assert slots <= render_slots(WORKERS) == render_window(WORKERS) + 2
    monkeypatch.setattr(stream_module, "WAIT_FRAME_S", 2.0)  # a stall fails in 2 s, not 120
    render_ring(kit, slots)
    stream = engine.stream(timeline, count=16)
    with reading(kit, pause=0.01) as reader:
        producer = kit.producer(RING)
        no_copy(stream, producer, monkeypatch)
        stream.run(producer)
    info = stream.info().to_wire()
    assert info["state"] == "done", info
    assert reader.pts == list(range(FIRST, FIRST + 16))
    reader.check_exact(timeline, "rgb24")
    clean_close(kit, producer, reader)


# -- the stream's end ---------------------------------------------------------------------


def test_stop_in_the_middle_ends_the_stream_and_its_claims_go_with_the_producer(
    engine: Engine, kit: RingKit, timeline, monkeypatch
):
    render_ring(kit)
    stream = engine.stream(timeline)
    with reading(kit, pause=0.05) as reader:  # 1.7 s for all: stopped long before
        producer = kit.producer(RING)
        no_copy(stream, producer, monkeypatch)
        thread = start(engine, stream, producer)
        deadline = time.monotonic() + WAIT_S
        while len(reader.got) < 5 and time.monotonic() < deadline:
            time.sleep(0.005)
        stream.stop()
        thread.join(WAIT_S)
        assert not thread.is_alive()
    info = stream.info().to_wire()
    assert info["state"] == "stopped", info
    assert stream.status.error is None and info["failed"] == 0
    assert 5 <= len(reader.got) < COUNT
    assert info["frames"] == len(reader.got)  # every frame published was read
    reader.check_exact(timeline, "rgb24")
    clean_close(kit, producer, reader)  # the slots claimed ahead, never published, are unseen


def raise_at(monkeypatch, bad: int) -> None:
    """Frame ``bad``'s render job raises (a corrupt source frame), inside its slot's planes."""
    real = render_frame

    def render(timeline, index, pool, out, **kw):
        if index == bad:
            raise MediaError(f"media x.mkv: frame {bad} is corrupt")
        return real(timeline, index, pool, out, **kw)

    monkeypatch.setattr(stream_module, "render_frame", render)
    # The scheduler logs the failed job with its traceback: expected here, kept quiet.
    monkeypatch.setattr(logging.getLogger("lumiera.engine"), "disabled", True)


def drop_job(stream: RenderStream, index: int, monkeypatch) -> None:
    """Frame ``index``'s render job dropped by the scheduler (its slot claimed, unwritten).

    Render jobs run at RENDER priority, which the scheduler never drops: this is what
    would happen if one were dropped all the same.
    """
    real = stream._render_job

    def dropping(at: int, slot: Any = None) -> JobHandle:
        if at != index:
            return real(at, slot)
        handle = JobHandle(f"frame {at}")
        handle._finish(error=DeadlineMissed("dropped, too late"))
        stream.woken.set()
        return handle

    monkeypatch.setattr(stream, "_render_job", dropping)


@pytest.mark.parametrize(
    "case",
    [
        ("raises", "MediaError: media x.mkv: frame 7 is corrupt"),
        ("dropped", "RuntimeError: frame 7: its render job was dropped, its slot unwritten"),
    ],
    ids=["raises", "dropped"],
)
def test_a_render_job_that_fails_fails_the_stream_after_the_frames_before_it(
    engine: Engine, kit: RingKit, timeline, monkeypatch, case
):
    how, error = case
    if how == "raises":
        raise_at(monkeypatch, 7)
    render_ring(kit)
    stream = engine.stream(timeline, fmt="yuv420p")
    if how == "dropped":
        drop_job(stream, 7, monkeypatch)
    with reading(kit) as reader:
        producer = kit.producer(RING)
        stream.run(producer)
        assert producer.claims >= 1  # frame 7's slot at least: claimed, never published
    info = stream.info().to_wire()
    assert info["state"] == "failed", info
    assert info["error"] == error
    assert info["failed"] == 1 and info["frames"] == 7 - FIRST and info["dropped"] == 0
    assert reader.pts == list(range(FIRST, 7))  # never frame 7's unwritten slot
    reader.check_exact(timeline, "yuv420p")
    clean_close(kit, producer, reader)


def test_the_producer_closes_at_once_after_a_render_job_raised(
    engine: Engine, kit: RingKit, timeline, monkeypatch
):
    raise_at(monkeypatch, 7)
    render_ring(kit)
    stream = engine.stream(timeline)
    producer = kit.producer(RING)
    gc.disable()  # the collector does not run by chance: nothing may need it to
    try:
        stream.run(producer)
        assert stream.status.state == "failed"
        producer.close()  # as the Engine's stream thread does once run returns
    finally:
        gc.enable()
    kit.producer(RING)  # the ring is free for the next stream


def test_a_job_that_starts_after_the_stream_ended_writes_nothing_into_its_slot(
    engine: Engine, kit: RingKit, timeline, monkeypatch
):
    late = FIRST + 3
    started, go = threading.Event(), threading.Event()
    entered: list[bool] = []
    skipped = threading.Event()

    def delay(index: int) -> float:
        if index == late:
            started.set()
            go.wait(WAIT_S)  # until the stream ended and its producer closed
        return 0.0

    real_render = render_frame
    rendered: list[int] = []

    def render(timeline, index, pool, out, **kw):
        rendered.append(index)
        return real_render(timeline, index, pool, out, **kw)

    monkeypatch.setattr(stream_module, "render_frame", render)
    render_ring(kit)
    stream = engine.stream(timeline)
    stream.delay = delay
    real_enter = stream.writers.enter

    def enter() -> bool:
        ok = real_enter()
        entered.append(ok)
        if not ok:
            skipped.set()
        return ok

    monkeypatch.setattr(stream.writers, "enter", enter)
    with reading(kit) as reader:
        producer = kit.producer(RING)
        thread = start(engine, stream, producer)
        assert started.wait(WAIT_S)
        stream.stop()
        thread.join(WAIT_S)
        assert not thread.is_alive()
        kit.detach(producer)  # the late job's slot is given back while it sleeps
        go.set()
        assert skipped.wait(WAIT_S)  # it found the stream ended: nothing written
    info = stream.info().to_wire()
    assert info["state"] == "stopped", info
    assert stream.status.error is None
    assert late not in rendered
    assert False in entered  # the late job's, at least: jobs after the end enter no slot
    assert len(rendered) == entered.count(True)
    assert reader.pts == list(range(FIRST, FIRST + len(reader.got)))
    assert len(reader.got) <= late - FIRST
    reader.check_exact(timeline, "rgb24")
    the_next_producer_follows(kit, reader)


def test_the_stream_ends_only_once_the_jobs_writing_into_its_slots_are_done(
    engine: Engine, kit: RingKit, timeline, monkeypatch
):
    slow = FIRST + 2
    inside, go = threading.Event(), threading.Event()
    real = render_frame

    def render(timeline, index, pool, out, **kw):
        if index == slow:
            inside.set()
            go.wait(WAIT_S)  # writing into its slot while the stream is stopped
        return real(timeline, index, pool, out, **kw)

    monkeypatch.setattr(stream_module, "render_frame", render)
    render_ring(kit)
    stream = engine.stream(timeline)
    with reading(kit) as reader:
        producer = kit.producer(RING)
        thread = start(engine, stream, producer)
        try:
            assert inside.wait(WAIT_S)
            stream.stop()
            thread.join(0.3)
            still_running = thread.is_alive()  # waiting for the job inside the slot
        finally:
            go.set()
        thread.join(WAIT_S)
        assert not thread.is_alive()
        assert still_running
        kit.detach(producer)  # no BufferError: no job holds a slot's views any more
    info = stream.info().to_wire()
    assert info["state"] == "stopped", info
    assert stream.status.error is None
    assert reader.pts == list(range(FIRST, FIRST + len(reader.got)))
    assert len(reader.got) <= slow - FIRST
    reader.check_exact(timeline, "rgb24")
    the_next_producer_follows(kit, reader)
