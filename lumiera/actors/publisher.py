"""A PUB socket on the bus for a subsystem's worker threads.

zmq sockets are not thread-safe, and a PUB socket made just before it
publishes loses what it sends until the bus has subscribed to it (the slow
joiner). So a subsystem whose threads publish (the engine's streams, the
player's renders) makes one :class:`SharedPublisher` when it starts, long
before anything is published, and its threads use it one at a time, under a
lock (the lock is the memory barrier zmq asks for when a socket changes thread).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import zmq

from lumiera.bus.codec import pack
from lumiera.runtime_dir import RuntimeDir


class SharedPublisher:
    def __init__(self, rd: RuntimeDir, sender: str) -> None:
        self.sender = sender
        self._lock = threading.Lock()
        self._sock: zmq.Socket[bytes] | None = zmq.Context.instance().socket(zmq.PUB)
        self._sock.connect(rd.endpoint("publish"))

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        """Publish ``body`` (with ``sender`` and ``ts`` added) on ``topic``; any thread."""
        full = {"sender": self.sender, "ts": time.time(), **body}
        with self._lock:
            if self._sock is not None:
                self._sock.send_multipart([topic.encode(), pack(full)])

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close(linger=1000)  # what was sent has a bounded chance to leave
                self._sock = None
