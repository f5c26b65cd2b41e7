"""The byte layout of a frame ring, written down once, beside the structs that implement it.

A ring is one shared-memory segment: a header, a table of consumers, then N
fixed-size slots. All integers are little-endian. Fields are written by
exactly one side (marked P: producer, C: that consumer, S: the supervisor).

RING HEADER (offset 0, 128 bytes)

    off size field            who  meaning
      0    8 magic             S   b"LUMRING1"
      8    4 layout version    S   LAYOUT_VERSION; a reader refuses others
     12    4 slot count        S   N
     16    8 slot size         S   bytes per slot, slot header included (multiple of 4096)
     24    4 max consumers     S   entries in the consumer table
     28    4 policy            S   0 block (render), 1 drop-oldest (playback)
     32    8 write seq         P   sequence number of the last published frame (0: none)
     40    8 drops             P   frames the producer could not place (drop policy)
     48    8 created           S   creation time, ns since the epoch
     56    8 slots offset      S   where slot 0 begins (page aligned)
     64    4 producer waiting  P   1 while the producer sleeps for a free slot (wake it on release)
     68   60 reserved

    The producer holds an exclusive OFD lock on header byte 127 for as long as
    it is open: a ring has one producer at a time (a second one is refused until
    the first closed or died; the kernel drops the lock of a dead process).

CONSUMER ENTRY (at 128 + i * 64, for i < max consumers)

    off size field            who  meaning
      0    4 state             C/S 0 free, 1 attached (S frees the entry of a dead consumer)
      4    4 pid               C   the consumer's process
      8    8 released          C   the last sequence number it released
     16    8 skip to           P   drop policy: the oldest sequence number still there for it
     24    8 frames read       C
     32    8 drops             C   frames it never saw (overwritten before it got to them)
     40    4 waiting           C   1 while it sleeps for a new frame (wake it on publish)
     44   20 reserved

    A consumer holds an exclusive OFD lock on its entry's 64 bytes for as long
    as it is attached: the kernel drops the lock when it dies, so a free lock
    on an attached entry means a dead consumer (no pid races).

SLOT (at slots offset + i * slot size; frame with sequence number s lives in slot s % N)

    off size field            who  meaning
      0    8 seq               P   s once published; 0 while empty or being written
      8    4 width             P
     12    4 height            P
     16    4 pixel format      P   PixelFormat value
     20    4 planes            P   number of planes
     24    8 pts               P   presentation timestamp (stream time base units)
     32    8 nbytes            P   bytes of payload in use
     40   24 plane table       P   3 x (u32 offset from payload start, u32 row stride)
     64    8 published         P   CLOCK_MONOTONIC seconds (float64) when it was published
     72   56 reserved
    128    - payload

    ``published`` is one clock for every process of the machine, so a reader
    (the GUI's viewer) can say how long a frame took from the ring to the screen.

    While writing a slot the producer holds an exclusive OFD lock on its range;
    a consumer holds a shared one while it uses the frame in place. So a frame
    is never overwritten while read, a reader never sees a half-written one, and
    a process that dies releases its locks. A producer that dies mid-write leaves
    seq 0 in that slot and the write seq unadvanced: readers skip it.

AUDIO RINGS (a render's sound, beside its frames)

    A render with sound has a second block ring, ``render-audio-<M>mb`` (the
    Player makes it: 4 slots of M MiB, M enough for the longest frame of sound
    of the output), with the same header, table and slots as above: nothing in
    the layout is new. The Engine's stream is its one producer too; after it
    published picture n into the frames' ring it publishes sound n here. One
    slot is the sound of one output frame, its samples
    ``[Output.sample_of(n), Output.sample_of(n+1))`` at the output's rate:

      width   channels x samples x 4   (bytes of the PCM; 1 for a frame of no samples)
      height  1
      format  GRAY (3): one plane, one row
      pts     n, the output frame it goes with (as the picture's)
      payload float32 little-endian, planar: channel 0's samples, then channel 1's, ...

    The channel count is the output's layout's (``Output.channels``); a reader
    knows it from the timeline, and the sample count is width / (4 x channels).
    Sound n is consumed after picture n (both rings block), so the two stay in
    step and a frame's sound is never older or newer than its picture.
    (:func:`lumiera.vault.feeds.pcm_slot` writes a slot's row and
    :func:`~lumiera.vault.feeds.pcm_of_slot` reads it.)

WAKE-UPS

    A side that is about to sleep sets its waiting flag, then re-checks the
    counters; the other side sends a wake-up only to a waiting peer, after
    its counter store. An fcntl call (a lock operation) stands between each
    side's store and its load: it releases and retakes the GIL, whose mutex
    is a full memory barrier, so at least one side sees the other's store.
    Wake-ups travel over ipc sockets (see :mod:`lumiera.shm.ring`); a lost one
    only delays a waiter until its periodic re-check, it never loses a frame.
"""

from __future__ import annotations

import enum
import functools
import math
import struct
from dataclasses import dataclass

MAGIC = b"LUMRING1"
LAYOUT_VERSION = 2  # 2: the slot header has the publish time (128 bytes)
PAGE = 4096

HEADER = struct.Struct("<8sIIQIIQQQQ64x")
HEADER_SIZE = 128
CONSUMER = struct.Struct("<IIQQQQ24x")
CONSUMER_SIZE = 64
SLOT_HEADER = struct.Struct("<QIIIIqQ6Id56x")
SLOT_HEADER_SIZE = 128
assert HEADER.size == HEADER_SIZE
assert CONSUMER.size == CONSUMER_SIZE
assert SLOT_HEADER.size == SLOT_HEADER_SIZE

# Offsets of the fields that change while the ring runs (read and written alone).
OFF_WRITE_SEQ = 32
OFF_DROPS = 40
OFF_PRODUCER_WAITING = 64
C_STATE, C_PID, C_RELEASED, C_SKIP_TO, C_READ, C_DROPS, C_WAITING = 0, 4, 8, 16, 24, 32, 40
S_SEQ = 0
PRODUCER_LOCK = HEADER_SIZE - 1  # the byte whose exclusive lock says "a producer is open"

MAX_PLANES = 3


class Policy(enum.IntEnum):
    BLOCK = 0  # render: the producer waits (bounded) for a free slot
    DROP = 1  # playback: the oldest unread frame gives way to the new one


class PixelFormat(enum.IntEnum):
    RGB24 = 1
    RGBA = 2
    GRAY = 3
    YUV420P = 4


@dataclass(frozen=True)
class Plane:
    """One plane of a frame: where it starts in the payload, its shape, its row stride."""

    offset: int
    shape: tuple[int, ...]
    stride: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@functools.lru_cache(maxsize=64)
def planes_of(fmt: PixelFormat, width: int, height: int) -> tuple[Plane, ...]:
    """The planes of a ``width`` x ``height`` frame, packed one after another."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size {width}x{height} must be positive")
    if fmt is PixelFormat.YUV420P:
        cw, ch = (width + 1) // 2, (height + 1) // 2
        y = Plane(0, (height, width), width)
        u = Plane(width * height, (ch, cw), cw)
        v = Plane(width * height + cw * ch, (ch, cw), cw)
        return (y, u, v)
    channels = {PixelFormat.RGB24: 3, PixelFormat.RGBA: 4, PixelFormat.GRAY: 1}[fmt]
    shape = (height, width, channels) if channels > 1 else (height, width)
    return (Plane(0, shape, width * channels),)


@functools.lru_cache(maxsize=64)
def frame_bytes(fmt: PixelFormat, width: int, height: int) -> int:
    last = planes_of(fmt, width, height)[-1]
    return last.offset + math.prod(last.shape)


def slot_size_for(payload: int) -> int:
    """Bytes of one slot holding ``payload`` bytes: header plus payload, whole pages."""
    return -(-(SLOT_HEADER_SIZE + payload) // PAGE) * PAGE


def slots_offset(max_consumers: int) -> int:
    return -(-(HEADER_SIZE + max_consumers * CONSUMER_SIZE) // PAGE) * PAGE


def segment_size(slots: int, slot_size: int, max_consumers: int) -> int:
    return slots_offset(max_consumers) + slots * slot_size


@dataclass(frozen=True)
class Header:
    """The ring header's fixed part (what the supervisor wrote at creation)."""

    slots: int
    slot_size: int
    max_consumers: int
    policy: Policy
    write_seq: int = 0
    drops: int = 0
    created_ns: int = 0
    slots_offset: int = 0
    magic: bytes = MAGIC
    version: int = LAYOUT_VERSION

    def pack(self) -> bytes:
        return HEADER.pack(
            self.magic,
            self.version,
            self.slots,
            self.slot_size,
            self.max_consumers,
            int(self.policy),
            self.write_seq,
            self.drops,
            self.created_ns,
            self.slots_offset,
        )

    @classmethod
    def unpack(cls, data: bytes | memoryview) -> Header:
        """Decode and check a header; ValueError when it is not a ring of this layout."""
        if len(data) < HEADER_SIZE:
            raise ValueError(f"{len(data)} bytes are too few for a ring header ({HEADER_SIZE})")
        magic, version, slots, slot_size, maxc, policy, wseq, drops, created, off = (
            HEADER.unpack_from(data)
        )
        if magic != MAGIC:
            raise ValueError(f"not a lumiera ring (magic {magic!r})")
        if version != LAYOUT_VERSION:
            raise ValueError(f"ring layout version {version}, this code reads {LAYOUT_VERSION}")
        if slots < 1 or maxc < 1 or slot_size < SLOT_HEADER_SIZE + 1 or policy not in (0, 1):
            raise ValueError("ring header is inconsistent")
        if off < slots_offset(maxc) or off % PAGE or slot_size % PAGE:
            raise ValueError("ring header is inconsistent")
        return cls(
            slots, slot_size, maxc, Policy(policy), wseq, drops, created, off, magic, version
        )


@dataclass(frozen=True)
class SlotHeader:
    """What the producer wrote about the frame in a slot."""

    seq: int
    width: int
    height: int
    fmt: int
    planes: int
    pts: int
    nbytes: int
    table: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)
    published: float = 0.0

    def pack(self) -> bytes:
        return SLOT_HEADER.pack(
            self.seq,
            self.width,
            self.height,
            self.fmt,
            self.planes,
            self.pts,
            self.nbytes,
            *self.table,
            self.published,
        )

    @classmethod
    def unpack(cls, data: bytes | memoryview) -> SlotHeader:
        seq, w, h, fmt, planes, pts, nbytes, *table, published = SLOT_HEADER.unpack_from(data)
        t0, t1, t2, t3, t4, t5 = table
        return cls(seq, w, h, fmt, planes, pts, nbytes, (t0, t1, t2, t3, t4, t5), published)
