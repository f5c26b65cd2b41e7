"""What a ring holds, read without taking part: for status, stats and the ring inspector.

Reads the header and the consumer table of a mapped segment; never writes,
except :func:`reap_dead_consumers`, which the supervisor calls to release
the entry of a consumer that died (its entry lock is gone with it).
"""

from __future__ import annotations

import struct
from typing import Any

from lumiera.shm.layout import (
    C_DROPS,
    C_PID,
    C_READ,
    C_RELEASED,
    C_STATE,
    CONSUMER_SIZE,
    HEADER_SIZE,
    Header,
)
from lumiera.shm.segment import Segment

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def describe(seg: Segment, name: str) -> dict[str, Any]:
    """The ring as plain data: geometry, counters, fill level, and each attached consumer.

    ``fill`` is what the slowest live consumer has yet to read (0 to slots);
    ``drops`` adds the producer's (frames it could not place) and every
    consumer's (frames it never saw).
    """
    header = Header.unpack(seg.buf[:HEADER_SIZE])
    consumers = []
    for i in range(header.max_consumers):
        off = HEADER_SIZE + i * CONSUMER_SIZE
        if not _U32.unpack_from(seg.buf, off + C_STATE)[0]:
            continue
        consumers.append(
            {
                "entry": i,
                "pid": _U32.unpack_from(seg.buf, off + C_PID)[0],
                "alive": seg.is_locked(off, CONSUMER_SIZE),
                "released": _U64.unpack_from(seg.buf, off + C_RELEASED)[0],
                "frames_read": _U64.unpack_from(seg.buf, off + C_READ)[0],
                "drops": _U64.unpack_from(seg.buf, off + C_DROPS)[0],
            }
        )
    live = [c for c in consumers if c["alive"]]
    fill = max((header.write_seq - c["released"] for c in live), default=0)
    return {
        "name": name,
        "segment": seg.name,
        "policy": header.policy.name.lower(),
        "slots": header.slots,
        "slot_bytes": header.slot_size,
        "size_bytes": seg.size,
        "frames_written": header.write_seq,
        "fill": min(fill, header.slots),
        "drops": header.drops + sum(c["drops"] for c in consumers),
        "producer_drops": header.drops,
        "consumers": consumers,
    }


def reap_dead_consumers(seg: Segment) -> list[int]:
    """Free the table entries of consumers whose process died; returns their pids."""
    header = Header.unpack(seg.buf[:HEADER_SIZE])
    reaped = []
    for i in range(header.max_consumers):
        off = HEADER_SIZE + i * CONSUMER_SIZE
        if _U32.unpack_from(seg.buf, off + C_STATE)[0] and not seg.is_locked(off, CONSUMER_SIZE):
            reaped.append(_U32.unpack_from(seg.buf, off + C_PID)[0])
            _U32.pack_into(seg.buf, off + C_STATE, 0)
    return reaped
