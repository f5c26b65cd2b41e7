"""The one writer of a frame ring: claim a slot, write into it in place, publish it.

Runs in the calling thread; a Producer is used by one thread. A ring has one
producer at a time (an OFD lock on a header byte, which the kernel drops when
its process dies). Every wait is bounded and ends in :class:`RingTimeout`.
"""

from __future__ import annotations

import contextlib
import os
import struct
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
    Geometry,
    RingAccess,
    endpoints,
)
from lumiera.shm.layout import (
    C_PID,
    C_SKIP_TO,
    OFF_DROPS,
    OFF_PRODUCER_WAITING,
    OFF_WRITE_SEQ,
    PRODUCER_LOCK,
    SLOT_HEADER,
    SLOT_HEADER_SIZE,
    PixelFormat,
)
from lumiera.shm.segment import SegmentError

_WRITE_SEQ = OFF_WRITE_SEQ >> 3  # word indexes of RingAccess.q
_DROPS = OFF_DROPS >> 3
# The slot header after its seq: width .. published, and the reserved bytes (zeroed).
SLOT_REST = struct.Struct("<" + SLOT_HEADER.format.removeprefix("<Q"))
assert SLOT_REST.size == SLOT_HEADER_SIZE - 8


class Producer(RingAccess):
    """The one writer of a ring. Binds the ring's wake-up sockets in the runtime directory."""

    def __init__(self, rd: RuntimeDir, name: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__(rd, name)
        self.timeout = timeout
        self._claimed: Frame | None = None
        self._geometry: Geometry | None = None
        self._capacity = self.header.slot_size - SLOT_HEADER_SIZE
        if not self.seg.try_lock(PRODUCER_LOCK, 1, exclusive=True):
            self.close_segment()
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
            self.close_segment()
            raise
        finally:
            os.umask(old)

    def claim(
        self, width: int, height: int, fmt: PixelFormat, pts: int = 0, timeout: float | None = None
    ) -> Frame | None:
        """The next slot, as writable views, held until :meth:`publish` or :meth:`abort`.

        Block policy: waits until every live consumer released the slot's old
        frame (RingTimeout after ``timeout``). Drop policy: never waits for a
        slow consumer (its unread frames give way); a slot whose frame a
        consumer is reading is passed over (its sequence number skipped), and
        None, counting a drop, comes only when every slot is being read.
        """
        if self._claimed is not None:
            raise RuntimeError(f"ring {self.name}: frame {self._claimed.seq} is claimed already")
        g = self.geometry(fmt, width, height)
        if g.nbytes > self._capacity:
            raise ValueError(
                f"a {width}x{height} {fmt.name} frame ({g.nbytes} B) exceeds slot"
                f" ({self._capacity} B)"
            )
        q = self.q
        seq = q[_WRITE_SEQ] + 1
        slot = seq % self.n
        if self.block:
            old = seq - self.n
            if not self._slot_free(old, slot):
                self._wait_free(old, slot, timeout)
        else:
            # Drop policy: a slot whose frame a reader holds (a stalled viewer) stays
            # that reader's; the frame goes to the next free slot, and the numbers of
            # the slots passed over are skipped (readers read past them, not counted as
            # drops: consumer._next). Dropped only when every slot is held.
            for _ in range(self.n):
                if self.slot_locks[slot].try_lock(True):
                    break
                seq += 1
                slot = seq % self.n
            else:
                q[_DROPS] += 1
                return None
            self._overtake(seq - self.n)
        q[self.bases[slot] >> 3] = 0  # the slot holds nothing valid until published
        frame = Frame(seq, slot, width, height, g.fmt, pts, self.slot_views(slot, g, True))
        self._claimed = frame
        self._geometry = g
        return frame

    def _wait_free(self, old: int, slot: int, timeout: float | None) -> None:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if self._slot_free(old, slot):
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
                if self._slot_free(old, slot):
                    return
                if self.pull.poll(int(min(left, RECHECK_S) * 1000) + 1):
                    while self.pull.poll(0):
                        self.pull.recv()
            finally:
                self.set_u32(OFF_PRODUCER_WAITING, 0)

    def _slot_free(self, old: int, slot: int) -> bool:
        """Block policy: every live consumer released ``old``, and the slot could be locked."""
        return (old < 1 or not self.lagging(old)) and self.slot_locks[slot].try_lock(True)

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
        g = self._geometry
        assert g is not None  # set by claim, with _claimed
        base = self.bases[frame.slot]
        frame.published = published = time.monotonic()
        t0, t1, t2, t3, t4, t5 = g.table
        # Everything but the seq (which claim set to 0), then the seq: the frame is complete.
        SLOT_REST.pack_into(
            self.buf, base + 8, g.key[1], g.key[2], g.key[0], len(g.planes), frame.pts,
            g.nbytes, t0, t1, t2, t3, t4, t5, published,
        )  # fmt: skip
        q = self.q
        q[base >> 3] = seq = frame.seq
        self._claimed = None
        frame.planes = ()  # published: no more writing through our views
        q[_WRITE_SEQ] = seq
        # The unlock is also the barrier between our write-seq store and our look
        # at the waiting flags (layout.py, WAKE-UPS). A reader that meets the newest
        # slot still locked takes it for "not yet", not for a drop.
        self.slot_locks[frame.slot].unlock()
        if self.anyone_waiting():
            with contextlib.suppress(zmq.Again):  # a hint; readers re-check anyway
                self.pub.send(U64.pack(seq), zmq.NOBLOCK)

    def _anyone_waiting(self) -> bool:
        return self.anyone_waiting()

    def abort(self, frame: Frame) -> None:
        """Give a claimed slot back unpublished (it stays empty)."""
        if frame is self._claimed:
            self._claimed = None
            frame.planes = ()
            self.slot_locks[frame.slot].unlock()

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
        self.close_segment()

    def __enter__(self) -> Producer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
