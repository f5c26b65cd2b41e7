"""Creating a ring's segment: the supervisor's part of the rings (no numpy, no sockets).

The supervisor creates every ring and never touches a frame, so it need not
import what producers and consumers use (numpy: tens of milliseconds of its
start). :mod:`lumiera.shm.ring` is the front that re-exports :func:`create`.
"""

from __future__ import annotations

import time

from lumiera.shm import segment_name
from lumiera.shm.layout import (
    HEADER_SIZE,
    Header,
    Policy,
    segment_size,
    slot_size_for,
    slots_offset,
)
from lumiera.shm.segment import Segment
from lumiera.shm.spec import check_name

MAX_CONSUMERS = 8


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
