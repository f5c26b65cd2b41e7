"""The one writer of a frame ring: claim a slot, write into it in place, publish it.

Runs in the calling thread; a Producer is used by one thread. A ring has one
producer at a time (an OFD lock on a header byte, which the kernel drops when
its process dies). Every wait is bounded and ends in :class:`RingTimeout`.
"""

from __future__ import annotations

import contextlib
import os
import time
from types import TracebackType
from typing import Any

import numpy as np
import zmq

from lumiera.errors import RingTimeout
from lumiera.runtime_dir import RuntimeDir
from lumiera.shm.access import (
    DEFAULT_TIMEOUT_S,
    RECHECK_S,
    U64,
    Frame,
    RingAccess,
    endpoints,
)
from lumiera.shm.layout import (
    C_PID,
    C_SKIP_TO,
    C_WAITING,
    OFF_DROPS,
    OFF_PRODUCER_WAITING,
    OFF_WRITE_SEQ,
    PRODUCER_LOCK,
    SLOT_HEADER_SIZE,
    PixelFormat,
    Policy,
    SlotHeader,
    frame_bytes,
    planes_of,
)
from lumiera.shm.segment import SegmentError


class Producer(RingAccess):
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
            time.monotonic(),
        )
        frame.published = header.published
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
                self.pub.send(U64.pack(frame.seq), zmq.NOBLOCK)

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
