"""What a ring's producer and its consumers share: the mapped segment and its fields.

The segment's layout and the locking protocol are :mod:`lumiera.shm.layout`'s;
:mod:`lumiera.shm.ring` says who does what. Here: the ring's name rule, the
wake-up endpoints in the runtime directory, a :class:`Frame` (numpy views of a
slot), and :class:`RingAccess`, the base of :class:`~lumiera.shm.producer.Producer`
and :class:`~lumiera.shm.consumer.Consumer`.
"""

from __future__ import annotations

import struct
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
    CONSUMER_SIZE,
    HEADER_SIZE,
    OFF_WRITE_SEQ,
    SLOT_HEADER_SIZE,
    Header,
    PixelFormat,
    planes_of,
    segment_size,
)
from lumiera.shm.segment import Segment, SegmentError
from lumiera.shm.spec import check_name

RECHECK_S = 0.25  # longest sleep on a wake-up socket before re-reading the counters
DEFAULT_TIMEOUT_S = 5.0
U64 = struct.Struct("<Q")
U32 = struct.Struct("<I")


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
        self.buf = self.seg.buf
        self.n = self.header.slots
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()

    def u64(self, off: int) -> int:
        value: int = U64.unpack_from(self.buf, off)[0]
        return value

    def set_u64(self, off: int, value: int) -> None:
        U64.pack_into(self.buf, off, value)

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
                U32.unpack_from(self.buf, off + C_STATE)[0]
                and self.u64(off + C_RELEASED) < seq
                and self.seg.is_locked(off, CONSUMER_SIZE)
            ):
                out.append(i)
        return out

    def u32(self, off: int) -> int:
        value: int = U32.unpack_from(self.buf, off)[0]
        return value

    def set_u32(self, off: int, value: int) -> None:
        U32.pack_into(self.buf, off, value)
