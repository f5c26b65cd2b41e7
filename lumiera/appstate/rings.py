"""The supervisor's rings: it creates every one, describes them, and alone unlinks them.

Runs in the supervisor process, in its poll loop. Besides ownership, a
periodic :meth:`Rings.tick` publishes ``stats.<ring>`` and frees the table
entry of any consumer that died (the kernel already dropped its slot locks,
so a producer never waits on it; this makes status and stats say so too).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from lumiera.bus.topics import EventBody, RingConsumer, RingStats
from lumiera.errors import BadArguments
from lumiera.shm.creation import create
from lumiera.shm.inspect import describe, reap_dead_consumers
from lumiera.shm.layout import Policy
from lumiera.shm.segment import Segment
from lumiera.shm.spec import RingSpec

log = logging.getLogger("lumiera.appstate")


class Rings:
    """The rings of one instance, by name."""

    def __init__(self, instance: str, publish: Callable[[str, EventBody], None]) -> None:
        self.instance = instance
        self.publish = publish
        self.segments: dict[str, Segment] = {}

    def create(self, spec: RingSpec) -> dict[str, Any]:
        """Create a ring (space reserved). Raises SegmentError, or BadArguments if it exists."""
        if spec.name in self.segments:
            raise BadArguments(f"ring {spec.name} exists already")
        policy = Policy.DROP if spec.policy == "drop" else Policy.BLOCK
        seg = create(
            self.instance, spec.name, slots=spec.slots, payload_bytes=spec.slot_bytes, policy=policy
        )
        self.segments[spec.name] = seg
        log.info(
            "ring %s: %d slots of %.1f MiB, %s policy (%s)",
            spec.name,
            spec.slots,
            spec.slot_bytes / 2**20,
            spec.policy,
            seg.name,
        )
        return describe(seg, spec.name)

    def describe(self) -> list[dict[str, Any]]:
        return [describe(seg, name) for name, seg in self.segments.items()]

    def tick(self) -> None:
        """Publish stats.<ring>; release the entries of dead consumers."""
        for name, seg in self.segments.items():
            for pid in reap_dead_consumers(seg):
                log.warning("ring %s: released the hold of dead consumer pid %d", name, pid)
            self.publish(f"stats.{name}", ring_stats(describe(seg, name)))

    def close(self) -> None:
        """Unlink and unmap every ring (the supervisor's exit, emergency included)."""
        for seg in self.segments.values():
            seg.unlink()
            with contextlib.suppress(BufferError):
                seg.close()
        self.segments.clear()


def ring_stats(described: dict[str, Any]) -> RingStats:
    """The ``stats.<ring>`` body of a ring's description (:func:`~lumiera.shm.inspect.describe`)."""
    consumers = [RingConsumer(**c) for c in described["consumers"]]
    return RingStats(**{**described, "consumers": consumers})
