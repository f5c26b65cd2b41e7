"""A subscriber on an instance's ``events`` that keeps what it received, for assertions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from lumiera.bus.events import Event, Publisher, Subscriber
from lumiera.bus.topics import ExtBody
from lumiera.runtime_dir import RuntimeDir
from lumiera.testing.wait import wait_for

PROBE = "ext.tapcheck."  # synced_tap's own events: a tool's topic, so the bus forwards it


def pair(event: Event) -> tuple[str, dict[str, Any]]:
    """(topic, body) of an event, the body as on the wire: ``sender``, ``ts`` and its fields."""
    return event.topic, {"sender": event.sender, "ts": event.ts, **event.data()}


class Tap:
    """A :class:`Subscriber` on an instance's ``events`` that keeps every event it received
    in :attr:`events`, as (topic, body) pairs (see :func:`pair`), for assertions."""

    def __init__(self, rd: RuntimeDir, prefixes: Sequence[str] = ("",)) -> None:
        self.sub = Subscriber(rd, *prefixes)
        self.events: list[tuple[str, dict[str, Any]]] = []

    def poll(self, timeout: float = 0.0) -> list[tuple[str, dict[str, Any]]]:
        """Receive what has arrived (waiting up to ``timeout`` for the first one).

        Malformed events are dropped (and counted) by the Subscriber, as any tool does.
        """
        got = []
        event = self.sub.receive(timeout)
        while event is not None:
            got.append(pair(event))
            event = self.sub.receive(0)
        self.events.extend(got)
        return got

    def wait_topic(self, topic: str, timeout: float) -> dict[str, Any]:
        """Wait for the first event (already seen or new) with exactly ``topic``."""
        deadline = time.monotonic() + timeout
        while True:
            for t, body in self.events:
                if t == topic:
                    return body
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [t for t, _ in self.events]
                raise TimeoutError(f"no {topic} within {timeout} s (saw {seen})")
            self.poll(min(left, 0.1))

    def topics(self, prefix: str = "") -> list[str]:
        return [t for t, _ in self.events if t.startswith(prefix)]

    def close(self) -> None:
        self.sub.close()


def synced_tap(rd: RuntimeDir, prefixes: Sequence[str], timeout: float = 10.0) -> Tap:
    """A Tap on ``prefixes`` whose subscription is known to be in place.

    A probe event is published into the bus until the Tap receives it, so no event
    published afterwards can be missed by a subscription still on its way.
    """
    tap = Tap(rd, [*prefixes, PROBE])
    pub = Publisher(rd, "test")
    try:

        def seen() -> bool:
            pub.publish(PROBE + "probe", ExtBody())
            tap.poll(0.05)
            return bool(tap.topics(PROBE))

        wait_for(seen, timeout, "the tap's subscription")
    except BaseException:
        tap.close()
        raise
    finally:
        pub.close()
    return tap
