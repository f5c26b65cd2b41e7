"""The one writer of a frame ring: claim a slot, write into it in place, publish it.

Runs in the calling thread; a Producer is used by one thread (the views of a
claimed slot may be written by others, see :meth:`Producer.claim_ahead`). A ring
has one producer at a time (an OFD lock on a header byte, which the kernel drops
when its process dies). Every wait is bounded and ends in :class:`RingTimeout`.

A block ring's producer may hold several claims at once (:meth:`Producer.claim_ahead`:
the Engine renders a stream's frames straight into their slots, several at a time
on its workers); they are published in the order they were claimed, each frame's
number one more than the one before, so consumers see them as any other frames.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from collections import deque
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
        # Frames claimed and not yet published, oldest first, with their geometries
        # (one at most in a drop ring: claim_ahead is the block policy's).
        self._claims: deque[tuple[Frame, Geometry]] = deque()
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
        if self._claims:
            raise RuntimeError(
                f"ring {self.name}: frame {self._claims[0][0].seq} is claimed already"
            )
        g = self._fits(width, height, fmt)
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
        return self._take(seq, slot, g, pts)

    def claim_ahead(self, width: int, height: int, fmt: PixelFormat, pts: int = 0) -> Frame | None:
        """The slot after the ones claimed already, if it is free now (block rings); else None.

        Never waits (:meth:`wait_free` does). Frames claimed ahead are published
        in the order they were claimed (:meth:`publish` takes the oldest only);
        their views may be written by other threads meanwhile, until the frame is
        published or aborted. At most ``slots`` claims at a time: the next one's slot
        would be the oldest claim's (a slot is never handed out twice).
        """
        if not self.block:
            raise RuntimeError(f"ring {self.name}: claims ahead need the block policy")
        g = self._fits(width, height, fmt)
        seq = self._next_seq()
        slot = seq % self.n
        if len(self._claims) >= self.n or not self._slot_free(seq - self.n, slot):
            return None
        return self._take(seq, slot, g, pts)

    def wait_free(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the slot :meth:`claim_ahead` would take next; free now?

        Woken by a consumer's release (as a blocked :meth:`claim` is), never past
        ``timeout``: a caller with other work polls with a short one.
        """
        seq = self._next_seq()
        if len(self._claims) >= self.n:
            return False  # every slot is claimed: only publishing one frees one
        old, slot = seq - self.n, seq % self.n
        try:
            self._wait_free(old, slot, timeout)
        except RingTimeout:
            return False
        self.slot_locks[slot].unlock()  # _wait_free took it; claim_ahead takes it again
        return True

    @property
    def claims(self) -> int:
        """Frames claimed and not yet published or aborted."""
        return len(self._claims)

    def _next_seq(self) -> int:
        return (self._claims[-1][0].seq if self._claims else self.q[_WRITE_SEQ]) + 1

    def _fits(self, width: int, height: int, fmt: PixelFormat) -> Geometry:
        g = self.geometry(fmt, width, height)
        if g.nbytes > self._capacity:
            raise ValueError(
                f"a {width}x{height} {fmt.name} frame ({g.nbytes} B) exceeds slot"
                f" ({self._capacity} B)"
            )
        return g

    def _take(self, seq: int, slot: int, g: Geometry, pts: int) -> Frame:
        """Slot ``slot`` (locked by the caller) claimed for frame ``seq``."""
        self.q[self.bases[slot] >> 3] = 0  # the slot holds nothing valid until published
        frame = Frame(seq, slot, g.key[1], g.key[2], g.fmt, pts, self.slot_views(slot, g, True))
        self._claims.append((frame, g))
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
        """Make ``frame`` visible to consumers and wake them (the oldest claim: in order)."""
        if not self._claims or frame is not self._claims[0][0]:
            if any(frame is f for f, _ in self._claims):
                raise RuntimeError(
                    f"ring {self.name}: frame {frame.seq} published before frame"
                    f" {self._claims[0][0].seq}, claimed before it"
                )
            raise RuntimeError(f"ring {self.name}: frame {frame.seq} is not the claimed one")
        g = self._claims[0][1]
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
        self._claims.popleft()
        frame.planes = ()  # published: no more writing through our views
        q[_WRITE_SEQ] = seq
        # The unlock is also the barrier between our write-seq store and our look
        # at the waiting flags (layout.py, WAKE-UPS). A reader that meets the newest
        # slot still locked takes it for "not yet", not for a drop.
        self.slot_locks[frame.slot].unlock()
        if self.anyone_waiting():
            with contextlib.suppress(zmq.Again):  # a hint; readers re-check anyway
                self.pub.send(U64.pack(seq), zmq.NOBLOCK)

    def abort(self, frame: Frame) -> None:
        """Give a claimed slot back unpublished (it stays empty), with every slot claimed after
        it (they could never be published in order without it). Nothing for other frames."""
        while any(frame is f for f, _ in self._claims):
            last, _ = self._claims.pop()
            last.planes = ()
            self.slot_locks[last.slot].unlock()

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
        if self._claims:
            self.abort(self._claims[0][0])
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
