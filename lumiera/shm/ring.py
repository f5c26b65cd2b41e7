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

This module is the rings' front: the producer lives in :mod:`.producer`, the
consumer in :mod:`.consumer`, what both share (the mapped segment, a
:class:`Frame`'s views, the wake-up endpoints) in :mod:`.access`.
"""

from __future__ import annotations

import time

from lumiera.errors import RingTimeout
from lumiera.shm import segment_name
from lumiera.shm.access import DEFAULT_TIMEOUT_S, RECHECK_S, Frame, check_name, endpoints
from lumiera.shm.consumer import Consumer
from lumiera.shm.layout import (
    HEADER_SIZE,
    Header,
    PixelFormat,
    Plane,
    Policy,
    segment_size,
    slot_size_for,
    slots_offset,
)
from lumiera.shm.producer import Producer
from lumiera.shm.segment import Segment

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


__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_CONSUMERS",
    "RECHECK_S",
    "Consumer",
    "Frame",
    "PixelFormat",
    "Plane",
    "Policy",
    "Producer",
    "RingTimeout",
    "check_name",
    "create",
    "endpoints",
]
