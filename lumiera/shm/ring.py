"""Frame rings: one producer writes frames into shared memory, consumers read them in place.

Layout and the locking protocol: :mod:`lumiera.shm.layout`. Wake-ups go over
two ipc sockets the producer binds in the runtime directory:
``ring-<name>.frames`` (PUB: "frame s published") and ``ring-<name>.free``
(PULL: "a slot was released"). They are hints only: the segment's counters
are the truth, and a waiter re-checks them at least every ``RECHECK_S``, so a
lost wake-up costs latency, never a frame. Idle, nobody spins.

Who does what:

- the supervisor :func:`create` s every ring and is the only one to unlink it;
- one :class:`Producer` per ring: :meth:`~Producer.claim` a slot, write into
  its numpy views (decode straight into shared memory), :meth:`~Producer.publish`;
- any number of :class:`Consumer` s (up to the ring's table size), each with its
  own read position: :meth:`~Consumer.acquire` a frame (read-only views, zero
  copy), :meth:`~Consumer.release` it.

Everything here runs in the calling thread; a Producer or Consumer is used by
one thread. Every wait is bounded and ends in :class:`RingTimeout`.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np
import zmq

from lumiera.errors import RingTimeout, RuntimeDirError
from lumiera.runtime_dir import MAX_IPC_PATH, RuntimeDir
from lumiera.shm import segment_name
from lumiera.shm.layout import (
    C_DROPS,
    C_PID,
    C_READ,
    C_RELEASED,
    C_SKIP_TO,
    C_STATE,
    C_WAITING,
    CONSUMER_SIZE,
    HEADER_SIZE,
    OFF_DROPS,
    OFF_PRODUCER_WAITING,
    OFF_WRITE_SEQ,
    PRODUCER_LOCK,
    SLOT_HEADER_SIZE,
    Header,
    PixelFormat,
    Plane,
    Policy,
    SlotHeader,
    frame_bytes,
    planes_of,
    segment_size,
    slot_size_for,
    slots_offset,
)
from lumiera.shm.segment import Segment, SegmentError
from lumiera.shm.spec import RING_NAME

RECHECK_S = 0.25  # longest sleep on a wake-up socket before re-reading the counters
DEFAULT_TIMEOUT_S = 5.0
MAX_CONSUMERS = 8
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def check_name(name: str) -> str:
    if not RING_NAME.fullmatch(name):
        raise ValueError(
            f"ring name {name!r}: 1-32 of a-z 0-9 _ -, starting with a letter or digit"
        )
    return name


def create(
    instance: str,
    name: str,
    *,
    slots: int,
    payload_bytes: int,
    policy: Policy,
    max_consumers: int = MAX_CONSUMERS,
) -> Segment:
    """Create ring ``name`` of ``instance`` (the supervisor does this). Raises SegmentError.

    The returned segment stays open with the caller; the ring lives until the
    segment is unlinked, whoever has it mapped.
    """
    check_name(name)
    if slots < 1 or payload_bytes < 1:
        raise ValueError("a ring needs at least one slot of at least one byte")
    slot_size = slot_size_for(payload_bytes)
    size = segment_size(slots, slot_size, max_consumers)
    seg = Segment.create(segment_name(instance, name), size)
    header = Header(
        slots, slot_size, max_consumers, policy, 0, 0, time.time_ns(), slots_offset(max_consumers)
    )
    seg.buf[:HEADER_SIZE] = header.pack()
    return seg


def endpoints(rd: RuntimeDir, name: str) -> tuple[str, str]:
    """The producer's wake-up sockets: (frames PUB, releases PULL).

    Raises RuntimeDirError when the runtime directory is too long for them
    (ipc paths are at most 107 characters).
    """
    longest = rd.socket(f"ring-{name}.frames")
    if len(str(longest)) > MAX_IPC_PATH:
        raise RuntimeDirError(
            f"ring {name}: socket path {longest} is over {MAX_IPC_PATH} characters; "
            "use a shorter runtime directory or ring name"
        )
    return rd.endpoint(f"ring-{name}.frames"), rd.endpoint(f"ring-{name}.free")


@dataclass
class Frame:
    """A frame in a slot: its geometry and numpy views of its planes (valid until released)."""

    seq: int
    slot: int
    width: int
    height: int
    fmt: PixelFormat
    pts: int
    planes: tuple[np.ndarray[Any, np.dtype[np.uint8]], ...] = field(repr=False)

    @property
    def array(self) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """The pixels of a packed format (rgb24, rgba, gray); the Y plane of yuv420p."""
        return self.planes[0]


class _RingAccess:
    """What producer and consumer share: the mapped segment and its fields."""

    def __init__(self, rd: RuntimeDir, name: str) -> None:
        self.rd = rd
        self.name = check_name(name)
        self.seg = Segment.attach(segment_name(rd.instance, name), writable=True)
        try:  # bytes(): no view of the segment may outlive a failure, or close() cannot unmap
            self.header = Header.unpack(bytes(self.seg.buf[:HEADER_SIZE]))
            want = segment_size(self.header.slots, self.header.slot_size, self.header.max_consumers)
            if self.seg.size < want:
                raise ValueError(f"segment holds {self.seg.size} bytes, its header says {want}")
        except ValueError as e:
            self.seg.close()
            raise SegmentError(f"ring {name}: {e}") from None
        self.buf = self.seg.buf
        self.n = self.header.slots
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()

    def u64(self, off: int) -> int:
        value: int = _U64.unpack_from(self.buf, off)[0]
        return value

    def set_u64(self, off: int, value: int) -> None:
        _U64.pack_into(self.buf, off, value)

    @property
    def write_seq(self) -> int:
        return self.u64(OFF_WRITE_SEQ)

    def slot_base(self, i: int) -> int:
        return self.header.slots_offset + i * self.header.slot_size

    def entry(self, i: int) -> int:
        return HEADER_SIZE + i * CONSUMER_SIZE

    def views(
        self, base: int, fmt: PixelFormat, w: int, h: int, writable: bool
    ) -> tuple[np.ndarray[Any, np.dtype[np.uint8]], ...]:
        payload = base + SLOT_HEADER_SIZE
        out = []
        for p in planes_of(fmt, w, h):
            arr = np.frombuffer(self.buf, np.uint8, p.size, payload + p.offset).reshape(p.shape)
            arr.flags.writeable = writable
            out.append(arr)
        return tuple(out)

    def lagging(self, seq: int) -> list[int]:
        """Entries of live consumers that have not released frame ``seq`` yet.

        Only entries that lag are checked for life (one lock query each): a
        consumer that died holds no lock on its entry, and is not waited for.
        """
        out = []
        for i in range(self.header.max_consumers):
            off = self.entry(i)
            if (
                _U32.unpack_from(self.buf, off + C_STATE)[0]
                and self.u64(off + C_RELEASED) < seq
                and self.seg.is_locked(off, CONSUMER_SIZE)
            ):
                out.append(i)
        return out

    def u32(self, off: int) -> int:
        value: int = _U32.unpack_from(self.buf, off)[0]
        return value

    def set_u32(self, off: int, value: int) -> None:
        _U32.pack_into(self.buf, off, value)


class Producer(_RingAccess):
    """The one writer of a ring. Binds the ring's wake-up sockets in the runtime directory."""

    def __init__(self, rd: RuntimeDir, name: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__(rd, name)
        self.timeout = timeout
        self._claimed: Frame | None = None
        if not self.seg.try_lock(PRODUCER_LOCK, 1, exclusive=True):
            self.seg.close()
            raise SegmentError(f"ring {name} has a producer already (one at a time)")
        self.pub = self.ctx.socket(zmq.PUB)
        self.pull = self.ctx.socket(zmq.PULL)
        old = os.umask(0o077)
        try:
            frames, free = endpoints(rd, name)
            for sock, ep in ((self.pub, frames), (self.pull, free)):
                sock.setsockopt(zmq.LINGER, 0)
                sock.bind(ep)
        except BaseException:
            self.pub.close(linger=0)
            self.pull.close(linger=0)
            self.seg.close()
            raise
        finally:
            os.umask(old)

    def claim(
        self, width: int, height: int, fmt: PixelFormat, pts: int = 0, timeout: float | None = None
    ) -> Frame | None:
        """The next slot, as writable views, held until :meth:`publish` or :meth:`abort`.

        Block policy: waits until every live consumer released the slot's old
        frame (RingTimeout after ``timeout``). Drop policy: never waits for a
        slow consumer (its unread frames give way); returns None, counting a
        drop, only when a consumer is reading the old frame in that very slot.
        """
        if self._claimed is not None:
            raise RuntimeError(f"ring {self.name}: frame {self._claimed.seq} is claimed already")
        nbytes = frame_bytes(fmt, width, height)
        capacity = self.header.slot_size - SLOT_HEADER_SIZE
        if nbytes > capacity:
            raise ValueError(
                f"a {width}x{height} {fmt.name} frame ({nbytes} B) exceeds slot ({capacity} B)"
            )
        seq = self.write_seq + 1
        slot = seq % self.n
        base = self.slot_base(slot)
        if self.header.policy is Policy.BLOCK:
            self._wait_free(seq - self.n, base, timeout)
        elif not self.seg.try_lock(base, self.header.slot_size, exclusive=True):
            self.set_u64(OFF_DROPS, self.u64(OFF_DROPS) + 1)
            return None
        else:
            self._overtake(seq - self.n)
        self.set_u64(base, 0)  # the slot holds nothing valid until published
        planes = self.views(base, fmt, width, height, writable=True)
        self._claimed = Frame(seq, slot, width, height, fmt, pts, planes)
        return self._claimed

    def _wait_free(self, old: int, base: int, timeout: float | None) -> None:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if self._slot_free(old, base):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                lagging = self.lagging(old)
                pids = [self.u32(self.entry(i) + C_PID) for i in lagging]
                waited = self.timeout if timeout is None else timeout
                raise RingTimeout(
                    f"ring {self.name}: no free slot within {waited:g} s"
                    f" (frame {old} not released by consumer pid(s) {pids or 'reading it'})"
                )
            # Say we sleep, then look once more (layout.py, WAKE-UPS: the flag, a
            # barrier, the re-check), then sleep until a release wakes us.
            self.set_u32(OFF_PRODUCER_WAITING, 1)
            self.seg.barrier()
            try:
                if self._slot_free(old, base):
                    return
                if self.pull.poll(int(min(left, RECHECK_S) * 1000) + 1):
                    while self.pull.poll(0):
                        self.pull.recv()
            finally:
                self.set_u32(OFF_PRODUCER_WAITING, 0)

    def _slot_free(self, old: int, base: int) -> bool:
        """Block policy: every live consumer released ``old``, and the slot could be locked."""
        return not self.lagging(old) and self.seg.try_lock(
            base, self.header.slot_size, exclusive=True
        )

    def _overtake(self, old: int) -> None:
        """Drop policy: consumers that have not read frame ``old`` skip past it."""
        if old < 1:
            return
        for i in self.lagging(old):
            off = self.entry(i)
            if self.u64(off + C_SKIP_TO) <= old:
                self.set_u64(off + C_SKIP_TO, old + 1)

    def publish(self, frame: Frame) -> None:
        """Make ``frame`` visible to consumers and wake them."""
        if frame is not self._claimed:
            raise RuntimeError(f"ring {self.name}: frame {frame.seq} is not the claimed one")
        base = self.slot_base(frame.slot)
        table = [0] * 6
        for k, p in enumerate(planes_of(frame.fmt, frame.width, frame.height)):
            table[2 * k : 2 * k + 2] = [p.offset, p.stride]
        nbytes = frame_bytes(frame.fmt, frame.width, frame.height)
        header = SlotHeader(
            0,
            frame.width,
            frame.height,
            int(frame.fmt),
            len(frame.planes),
            frame.pts,
            nbytes,
            (table[0], table[1], table[2], table[3], table[4], table[5]),
        )
        self.buf[base : base + SLOT_HEADER_SIZE] = header.pack()
        self.set_u64(base, frame.seq)  # the slot's seq last: the frame is complete
        self._claimed = None
        frame.planes = ()  # published: no more writing through our views
        self.set_u64(OFF_WRITE_SEQ, frame.seq)
        # The unlock is also the barrier between our write-seq store and our look
        # at the waiting flags (layout.py, WAKE-UPS). A reader that meets the newest
        # slot still locked takes it for "not yet", not for a drop.
        self.seg.unlock(base, self.header.slot_size)
        if self._anyone_waiting():
            with contextlib.suppress(zmq.Again):  # a hint; readers re-check anyway
                self.pub.send(_U64.pack(frame.seq), zmq.NOBLOCK)

    def _anyone_waiting(self) -> bool:
        return any(self.u32(self.entry(i) + C_WAITING) for i in range(self.header.max_consumers))

    def abort(self, frame: Frame) -> None:
        """Give a claimed slot back unpublished (it stays empty)."""
        if frame is self._claimed:
            self._claimed = None
            frame.planes = ()
            self.seg.unlock(self.slot_base(frame.slot), self.header.slot_size)

    def write(
        self,
        planes: tuple[np.ndarray[Any, Any], ...] | np.ndarray[Any, Any],
        fmt: PixelFormat,
        pts: int = 0,
        timeout: float | None = None,
    ) -> bool:
        """Copy a frame in (claim, copy, publish). False when the drop policy dropped it."""
        arrays = planes if isinstance(planes, tuple) else (planes,)
        h, w = arrays[0].shape[:2]
        frame = self.claim(w, h, fmt, pts, timeout)
        if frame is None:
            return False
        try:
            for dst, src in zip(frame.planes, arrays, strict=True):
                dst[...] = src
        except BaseException:
            self.abort(frame)
            raise
        self.publish(frame)
        return True

    def close(self) -> None:
        if self._claimed is not None:
            self.abort(self._claimed)
        self.pub.close(linger=0)
        self.pull.close(linger=0)
        for sock_file in (f"ring-{self.name}.frames", f"ring-{self.name}.free"):
            # ours to remove: no other producer can have bound them while we hold
            # the producer lock, which goes only with the segment, below
            (self.rd.path / sock_file).unlink(missing_ok=True)
        self.seg.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Consumer(_RingAccess):
    """One reader of a ring, with its own read position.

    It sees the frames published after it attached.
    """

    def __init__(self, rd: RuntimeDir, name: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__(rd, name)
        self.timeout = timeout
        self.index = self._take_entry()
        self.off = self.entry(self.index)
        self.last = self.released
        self.held: dict[int, Frame] = {}
        self.sub = self.ctx.socket(zmq.SUB)
        self.push = self.ctx.socket(zmq.PUSH)
        try:
            frames, free = endpoints(rd, name)
            for sock in (self.sub, self.push):
                sock.setsockopt(zmq.LINGER, 0)
            self.sub.setsockopt(zmq.SUBSCRIBE, b"")
            self.push.setsockopt(zmq.SNDHWM, 16)
            self.sub.connect(frames)
            self.push.connect(free)
        except BaseException:
            self.close()  # gives the table entry back: no ghost for a producer to wait on
            raise

    def _take_entry(self) -> int:
        for i in range(self.header.max_consumers):
            off = self.entry(i)
            if self.seg.try_lock(off, CONSUMER_SIZE, exclusive=True):  # free, or its owner died
                self.buf[off : off + CONSUMER_SIZE] = bytes(CONSUMER_SIZE)
                _U32.pack_into(self.buf, off + C_PID, os.getpid())
                self.set_u64(off + C_RELEASED, self.write_seq)
                _U32.pack_into(self.buf, off + C_STATE, 1)
                return i
        self.seg.close()
        raise SegmentError(
            f"ring {self.name}: all {self.header.max_consumers} consumer entries are taken"
        )

    @property
    def released(self) -> int:
        return self.u64(self.off + C_RELEASED)

    @property
    def drops(self) -> int:
        return self.u64(self.off + C_DROPS)

    def acquire(self, timeout: float | None = None) -> Frame:
        """The next frame for this consumer, read-only and in place; RingTimeout if none comes."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            frame = self._next()
            if frame is not None:
                return frame
            left = deadline - time.monotonic()
            if left <= 0:
                waited = self.timeout if timeout is None else timeout
                raise RingTimeout(f"ring {self.name}: no new frame within {waited:g} s")
            # The flag, a barrier, one more look, then sleep (layout.py, WAKE-UPS).
            self.set_u32(self.off + C_WAITING, 1)
            self.seg.barrier()
            try:
                frame = self._next()
                if frame is not None:
                    return frame
                if self.sub.poll(int(min(left, RECHECK_S) * 1000) + 1):
                    while self.sub.poll(0):
                        self.sub.recv()
            finally:
                self.set_u32(self.off + C_WAITING, 0)

    def _next(self) -> Frame | None:
        # self.last: the newest sequence number handed out or given up on. What
        # lies between it and the frame handed out next was dropped for us.
        want = max(self.last + 1, self.u64(self.off + C_SKIP_TO))
        top = self.write_seq
        while want <= top:
            slot = want % self.n
            base = self.slot_base(slot)
            if self.seg.try_lock(base, self.header.slot_size, exclusive=False):
                hdr = SlotHeader.unpack(self.buf[base : base + SLOT_HEADER_SIZE])
                if hdr.seq == want:
                    self._advance(want)
                    fmt = PixelFormat(hdr.fmt)
                    planes = self.views(base, fmt, hdr.width, hdr.height, writable=False)
                    frame = Frame(want, slot, hdr.width, hdr.height, fmt, hdr.pts, planes)
                    self.held[want] = frame
                    return frame
                self.seg.unlock(base, self.header.slot_size)
            elif want == top:
                break  # the newest: its producer is between the write-seq store and the unlock
            want += 1  # being rewritten, overwritten, or left torn by a dead producer: gone
        if want - 1 > self.last:  # we gave up on some: they count as dropped
            self._advance(want)
            self.last = want - 1
            if not self.held:
                self.set_u64(self.off + C_RELEASED, self.last)
        return None

    def _advance(self, seq: int) -> None:
        if seq - self.last > 1:
            self.set_u64(self.off + C_DROPS, self.drops + seq - self.last - 1)
        self.last = seq

    def release(self, frame: Frame) -> None:
        """Give the frame's slot back; its views must not be used any more."""
        if self.held.pop(frame.seq, None) is None:
            return
        frame.planes = ()
        if frame.seq > self.released:
            self.set_u64(self.off + C_RELEASED, frame.seq)
        self.set_u64(self.off + C_READ, self.u64(self.off + C_READ) + 1)
        self.seg.unlock(self.slot_base(frame.slot), self.header.slot_size)  # also a barrier
        if self.u32(OFF_PRODUCER_WAITING):
            with contextlib.suppress(zmq.Again):
                self.push.send(_U64.pack(frame.seq), zmq.NOBLOCK)

    def frames(self, timeout: float | None = None) -> Iterator[Frame]:
        """Frames as they come, each released when the loop moves on."""
        while True:
            frame = self.acquire(timeout)
            try:
                yield frame
            finally:
                self.release(frame)

    def close(self) -> None:
        if self.seg.fd < 0:
            return
        for frame in list(self.held.values()):
            self.release(frame)
        _U32.pack_into(self.buf, self.off + C_STATE, 0)
        self.seg.unlock(self.off, CONSUMER_SIZE)
        self.sub.close(linger=0)
        self.push.close(linger=0)
        self.seg.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


__all__ = [
    "Consumer",
    "Frame",
    "PixelFormat",
    "Plane",
    "Policy",
    "Producer",
    "RingTimeout",
    "create",
]
