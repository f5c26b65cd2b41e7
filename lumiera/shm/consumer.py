"""A reader of a frame ring, with its own read position: acquire a frame in place, release it.

Runs in the calling thread; a Consumer is used by one thread. Any number of
consumers (up to the ring's table size) read one ring; each sees the frames
published after it attached. Every wait is bounded and ends in :class:`RingTimeout`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from types import TracebackType

import zmq

from lumiera.errors import RingTimeout
from lumiera.runtime_dir import RuntimeDir
from lumiera.shm.access import (
    DEFAULT_TIMEOUT_S,
    FORMATS,
    RECHECK_S,
    U32,
    U64,
    Frame,
    RingAccess,
    endpoints,
)
from lumiera.shm.layout import (
    C_DROPS,
    C_PID,
    C_READ,
    C_RELEASED,
    C_SKIP_TO,
    C_STATE,
    C_WAITING,
    CONSUMER_SIZE,
    OFF_PRODUCER_WAITING,
    OFF_WRITE_SEQ,
    SLOT_HEADER,
    PixelFormat,
)
from lumiera.shm.segment import SegmentError

_WRITE_SEQ = OFF_WRITE_SEQ >> 3  # word indexes of RingAccess.q / .w
_PRODUCER_WAITING = OFF_PRODUCER_WAITING >> 2
FRESH_S = 2.0  # a new consumer re-checks often this long, or until a first wake-up came
FRESH_RECHECK_S = 0.005
RECONNECT_MS = 10  # the wake-up sockets retry a producer that has not bound yet this often


class Consumer(RingAccess):
    """One reader of a ring, with its own read position.

    It sees the frames published after it attached.
    """

    def __init__(self, rd: RuntimeDir, name: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__(rd, name)
        self.timeout = timeout
        self.index = self._take_entry()
        self.off = self.entry(self.index)
        # word indexes of this consumer's fields in RingAccess.q / .w
        self._released_word = (self.off + C_RELEASED) >> 3
        self._skip_word = (self.off + C_SKIP_TO) >> 3
        self._read_word = (self.off + C_READ) >> 3
        self._drops_word = (self.off + C_DROPS) >> 3
        self._waiting_word = (self.off + C_WAITING) >> 2
        self.last = self.released
        self.held: dict[int, Frame] = {}
        self.sub = self.ctx.socket(zmq.SUB)
        self.push = self.ctx.socket(zmq.PUSH)
        # Until a first wake-up came, the SUB may not be connected yet (a producer that
        # binds after this connect: PUB drops what no one receives), so a fresh
        # consumer re-checks often for a while instead of sleeping RECHECK_S on a
        # wake-up that was lost: a render's first frame, otherwise 0.25 s late.
        self._heard = False
        self._fresh_until = time.monotonic() + FRESH_S
        try:
            frames, free = endpoints(rd, name)
            for sock in (self.sub, self.push):
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
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
                U32.pack_into(self.buf, off + C_PID, os.getpid())
                self.set_u64(off + C_RELEASED, self.write_seq)
                U32.pack_into(self.buf, off + C_STATE, 1)
                return i
        self.close_segment()
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
        frame = self._next()
        if frame is not None:
            return frame
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                waited = self.timeout if timeout is None else timeout
                raise RingTimeout(f"ring {self.name}: no new frame within {waited:g} s")
            # The flag, a barrier, one more look, then sleep (layout.py, WAKE-UPS).
            self.w[self._waiting_word] = 1
            self.seg.barrier()
            try:
                frame = self._next()
                if frame is not None:
                    return frame
                nap = RECHECK_S
                if not self._heard and time.monotonic() < self._fresh_until:
                    nap = FRESH_RECHECK_S
                if self.sub.poll(int(min(left, nap) * 1000) + 1):
                    self._heard = True
                    while self.sub.poll(0):
                        self.sub.recv()
            finally:
                self.w[self._waiting_word] = 0
            frame = self._next()
            if frame is not None:
                return frame

    def _next(self) -> Frame | None:
        # self.last: the newest sequence number handed out or given up on. What
        # lies between it and the frame handed out next was dropped for us.
        q = self.q
        last = self.last
        want = q[self._skip_word]
        if want <= last:
            want = last + 1
        top = q[_WRITE_SEQ]
        n = self.n
        skipped = 0  # numbers the producer passed over (their slot held by a reader)
        while want <= top:
            slot = want % n
            lock = self.slot_locks[slot]
            if lock.try_lock(False):
                (seq, w, h, fmt, _planes, pts, _nbytes, _t0, _t1, _t2, _t3, _t4, _t5, published) = (
                    SLOT_HEADER.unpack_from(self.buf, self.bases[slot])
                )
                if seq == want:
                    if want - last - 1 > skipped:
                        q[self._drops_word] += want - last - 1 - skipped
                    self.last = want
                    g = self.geometry(FORMATS.get(fmt) or PixelFormat(fmt), w, h)
                    frame = Frame(
                        want, slot, w, h, g.fmt, pts, self.slot_views(slot, g, False), published
                    )
                    self.held[want] = frame
                    return frame
                lock.unlock()
                if 0 < seq < want:  # an older frame still there: this number was skipped
                    skipped += 1
            elif want == top:
                break  # the newest: its producer is between the write-seq store and the unlock
            want += 1  # being rewritten, overwritten, or left torn by a dead producer: gone
        if want - 1 > last:  # we gave up on some: they count as dropped (not the skipped)
            self._advance(want, skipped)
            self.last = want - 1
            if not self.held:
                q[self._released_word] = self.last
        return None

    def _advance(self, seq: int, skipped: int = 0) -> None:
        if seq - self.last - 1 > skipped:
            self.set_u64(self.off + C_DROPS, self.drops + seq - self.last - 1 - skipped)
        self.last = seq

    def release(self, frame: Frame) -> None:
        """Give the frame's slot back; its views must not be used any more."""
        seq = frame.seq
        if self.held.pop(seq, None) is None:
            return
        frame.planes = ()
        q = self.q
        q[self._released_word] = max(q[self._released_word], seq)
        q[self._read_word] += 1
        self.slot_locks[frame.slot].unlock()  # also a barrier
        if self.w[_PRODUCER_WAITING]:
            with contextlib.suppress(zmq.Again):
                self.push.send(U64.pack(seq), zmq.NOBLOCK)

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
        U32.pack_into(self.buf, self.off + C_STATE, 0)
        self.seg.unlock(self.off, CONSUMER_SIZE)
        self.sub.close(linger=0)
        self.push.close(linger=0)
        self.close_segment()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
