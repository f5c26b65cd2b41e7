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

from lumiera.errors import RingTimeout
from lumiera.shm.access import DEFAULT_TIMEOUT_S, RECHECK_S, Frame, endpoints
from lumiera.shm.consumer import Consumer
from lumiera.shm.creation import MAX_CONSUMERS, create
from lumiera.shm.layout import (
    PixelFormat,
    Plane,
    Policy,
)
from lumiera.shm.producer import Producer
from lumiera.shm.spec import check_name

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
