"""A subscriber on an instance's ``events`` that keeps what it received, for assertions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import zmq

from lumiera.bus.codec import pack, unpack
from lumiera.runtime_dir import RuntimeDir
from lumiera.testing.wait import wait_for


class Tap:
    """A SUB socket on an instance's ``events``, collecting (topic, body) pairs."""

    def __init__(self, rd: RuntimeDir, prefixes: Sequence[str] = ("",)) -> None:
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.sock = self._ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        for p in prefixes:
            self.sock.setsockopt(zmq.SUBSCRIBE, p.encode())
        self.sock.connect(rd.endpoint("events"))
        self.events: list[tuple[str, dict[str, Any]]] = []

    def poll(self, timeout: float = 0.0) -> list[tuple[str, dict[str, Any]]]:
        """Receive what has arrived (waiting up to ``timeout`` for the first one)."""
        got = []
        wait_ms = int(timeout * 1000)
        while self.sock.poll(wait_ms):
            topic, body = self.sock.recv_multipart()
            got.append((topic.decode(), unpack(body)))
            wait_ms = 0
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
        self.sock.close(linger=0)


def synced_tap(rd: RuntimeDir, prefixes: Sequence[str], timeout: float = 10.0) -> Tap:
    """A Tap on ``prefixes`` whose subscription is known to be in place.

    A probe event is published into the bus until the Tap receives it, so no event
    published afterwards can be missed by a subscription still on its way.
    """
    tap = Tap(rd, [*prefixes, "tapcheck."])
    pub: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(rd.endpoint("publish"))
    probe = pack({"sender": "test", "ts": time.time()})
    try:

        def seen() -> bool:
            pub.send_multipart([b"tapcheck.probe", probe])
            tap.poll(0.05)
            return bool(tap.topics("tapcheck."))

        wait_for(seen, timeout, "the tap's subscription")
    except BaseException:
        tap.close()
        raise
    finally:
        pub.close()
    return tap
