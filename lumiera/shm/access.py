"""What a ring's producer and its consumers share: the mapped segment and its fields.

The segment's layout and the locking protocol are :mod:`lumiera.shm.layout`'s;
:mod:`lumiera.shm.ring` says who does what. Here: the ring's name rule, the
wake-up endpoints in the runtime directory, a :class:`Frame` (numpy views of a
slot), and :class:`RingAccess`, the base of :class:`~lumiera.shm.producer.Producer`
and :class:`~lumiera.shm.consumer.Consumer`.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from lumiera.errors import RuntimeDirError
from lumiera.runtime_dir import MAX_IPC_PATH, RuntimeDir
from lumiera.shm import segment_name
from lumiera.shm.layout import (
    C_RELEASED,
    C_STATE,
    C_WAITING,
    CONSUMER_SIZE,
    HEADER_SIZE,
    OFF_WRITE_SEQ,
    SLOT_HEADER_SIZE,
    Header,
    PixelFormat,
    Policy,
    frame_bytes,
    planes_of,
    segment_size,
)
from lumiera.shm.segment import RangeLock, Segment, SegmentError
from lumiera.shm.spec import check_name

RECHECK_S = 0.25  # longest sleep on a wake-up socket before re-reading the counters
DEFAULT_TIMEOUT_S = 5.0
U64 = struct.Struct("<Q")
U32 = struct.Struct("<I")
FORMATS = {int(f): f for f in PixelFormat}

# The words of the segment are read and written through native memoryview casts
# (one load or store each, no call); the layout is little-endian.
if sys.byteorder != "little":  # pragma: no cover - x86_64 and aarch64 are little-endian
    raise ImportError("lumiera.shm rings need a little-endian machine (layout.py)")

Planes = tuple[np.ndarray[Any, np.dtype[np.uint8]], ...]


@dataclass(frozen=True, eq=False)
class Geometry:
    """What a frame's format and size fix: its planes, bytes, and slot-header plane table."""

    key: tuple[int, int, int]  # (format value, width, height)
    fmt: PixelFormat
    nbytes: int
    planes: tuple[tuple[int, int, tuple[int, ...]], ...]  # (offset, size, shape) per plane
    table: tuple[int, int, int, int, int, int]  # (offset, stride) x 3

    @classmethod
    def of(cls, fmt: PixelFormat, width: int, height: int) -> Geometry:
        planes = planes_of(fmt, width, height)
        table = [0] * 6
        for k, p in enumerate(planes):
            table[2 * k : 2 * k + 2] = [p.offset, p.stride]
        t0, t1, t2, t3, t4, t5 = table
        return cls(
            (int(fmt), width, height),
            PixelFormat(fmt),
            frame_bytes(fmt, width, height),
            tuple((p.offset, p.size, p.shape) for p in planes),
            (t0, t1, t2, t3, t4, t5),
        )


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
    published: float = 0.0  # time.monotonic() when the producer published it (0: not yet)

    @property
    def array(self) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """The pixels of a packed format (rgb24, rgba, gray); the Y plane of yuv420p."""
        return self.planes[0]


class RingAccess:
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
        self.n = self.header.slots
        self.block = self.header.policy is Policy.BLOCK
        # What every frame needs, worked out once: words of the segment (q: u64,
        # w: u32, indexed by offset // size), each slot's base and lock requests,
        # the consumer table's fields in one unpack, geometries and plane views.
        self._map()
        self.bases = [self.slot_base(i) for i in range(self.n)]
        self.slot_locks: list[RangeLock] = [
            self.seg.range_lock(b, self.header.slot_size) for b in self.bases
        ]
        maxc = self.header.max_consumers
        # per entry: state (u32), released (u64); and the waiting flags alone
        self._table = struct.Struct(
            "<" + f"{C_STATE}xI{C_RELEASED - C_STATE - 4}xQ{CONSUMER_SIZE - C_RELEASED - 8}x" * maxc
        )
        self._waiting = struct.Struct("<" + f"{C_WAITING}xI{CONSUMER_SIZE - C_WAITING - 4}x" * maxc)
        self._geometries: dict[tuple[int, int, int], Geometry] = {}
        self._views: list[tuple[Geometry | None, Planes]] = [(None, ())] * self.n
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()

    def u64(self, off: int) -> int:
        value: int = self.q[off >> 3]
        return value

    def set_u64(self, off: int, value: int) -> None:
        self.q[off >> 3] = value

    @property
    def write_seq(self) -> int:
        value: int = self.q[OFF_WRITE_SEQ >> 3]
        return value

    def slot_base(self, i: int) -> int:
        return self.header.slots_offset + i * self.header.slot_size

    def entry(self, i: int) -> int:
        return HEADER_SIZE + i * CONSUMER_SIZE

    def geometry(self, fmt: PixelFormat, width: int, height: int) -> Geometry:
        """The geometry of a frame (cached; ValueError for a size that is not positive)."""
        g = self._geometries.get((fmt, width, height))
        if g is None:
            g = Geometry.of(fmt, width, height)
            if len(self._geometries) > 64:
                self._geometries.clear()
            self._geometries[g.key] = g
        return g

    def views(
        self, base: int, fmt: PixelFormat, w: int, h: int, writable: bool
    ) -> tuple[np.ndarray[Any, np.dtype[np.uint8]], ...]:
        """Fresh numpy views of the planes of a ``w`` x ``h`` frame in the slot at ``base``."""
        return self._make_views(base, self.geometry(fmt, w, h), writable)

    def _make_views(self, base: int, g: Geometry, writable: bool) -> Planes:
        payload = base + SLOT_HEADER_SIZE
        out = []
        for offset, size, shape in g.planes:
            arr = np.frombuffer(self.buf, np.uint8, size, payload + offset).reshape(shape)
            arr.flags.writeable = writable
            out.append(arr)
        return tuple(out)

    def slot_views(self, slot: int, g: Geometry, writable: bool) -> Planes:
        """The views of slot ``slot`` for geometry ``g``, made once and kept while it repeats.

        A Producer asks for writable ones and a Consumer for read-only ones, never
        both of one object. They are dropped by :meth:`drop_views` (before the
        segment is closed: a live view makes closing it raise BufferError).
        """
        cached, planes = self._views[slot]
        if cached is not g:
            planes = self._make_views(self.bases[slot], g, writable)
            self._views[slot] = (g, planes)
        return planes

    def drop_views(self) -> None:
        self._views = [(None, ())] * self.n

    def _map(self) -> None:
        self.buf = self.seg.buf
        self.q = self.seg.cast("Q")
        self.w = self.seg.cast("I")

    def close_segment(self) -> None:
        """Drop the cached views and close the segment.

        BufferError while a caller still holds a view of it; everything then
        stays usable, and closing again once the view is gone succeeds.
        """
        self.drop_views()
        try:
            self.seg.close()
        except BufferError:
            self._map()
            raise

    def lagging(self, seq: int) -> list[int]:
        """Entries of live consumers that have not released frame ``seq`` yet.

        Only entries that lag are checked for life (one lock query each): a
        consumer that died holds no lock on its entry, and is not waited for.
        """
        t = self._table.unpack_from(self.buf, HEADER_SIZE)
        out = []
        for i in range(0, len(t), 2):
            if t[i] and t[i + 1] < seq:
                off = HEADER_SIZE + (i >> 1) * CONSUMER_SIZE
                if self.seg.is_locked(off, CONSUMER_SIZE):
                    out.append(i >> 1)
        return out

    def anyone_waiting(self) -> bool:
        """Whether any consumer entry says it sleeps for a frame."""
        return any(self._waiting.unpack_from(self.buf, HEADER_SIZE))

    def u32(self, off: int) -> int:
        value: int = self.w[off >> 2]
        return value

    def set_u32(self, off: int, value: int) -> None:
        self.w[off >> 2] = value
