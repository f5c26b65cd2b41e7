"""Events on the bus: every kind declared once, one codec, one Publisher, one Subscriber.

The front of the event plane; import everything about events from here.
Every topic and its body are declared in :mod:`lumiera.bus.topics`; an event
is two frames, ``[topic, msgpack body]``, encoded and checked by
:mod:`lumiera.bus.event_codec` (``sender`` and ``ts`` added by
:func:`encode_event` alone; every field checked by :func:`decode_event`
before anything acts on it).

A :class:`Publisher` is a PUB connected to the instance's ``publish`` socket
(the supervisor forwards what :func:`check_forwardable` lets through to
``events``); a :class:`Subscriber` is a SUB on ``events``. ``python -m
lumiera.bus.events --markdown`` prints the event tables of docs/PROTOCOL.md.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import zmq

from lumiera.bus.codec import DEFAULT_LIMITS, Limits
from lumiera.bus.event_codec import (
    Event,
    check_forwardable,
    decode_event,
    encode_event,
    kind_of,
    prepare_kinds,
)
from lumiera.bus.records import Record
from lumiera.bus.sockets import configure_bounded, recv_bounded
from lumiera.bus.topics import (
    APPSTATE,
    EXT_PREFIX,
    TOPICS,
    EmergencyExit,
    EngineRenderEnded,
    EngineStreamInfo,
    EventBody,
    ExtBody,
    LifecycleEvent,
    LogLine,
    PhaseChanged,
    PlayerRenderEnded,
    PlayerStreamInfo,
    ProblemReported,
    RingConsumer,
    RingStats,
    SessionChanged,
    Shutdown,
    StatsEngine,
    StatsPlayer,
    SubsystemState,
    Topic,
    check_topic,
    topic_of,
)
from lumiera.errors import BadMessage, EventTimeout
from lumiera.runtime_dir import RuntimeDir

if TYPE_CHECKING:  # imported by the async subscriber alone (start-up)
    import zmq.asyncio

__all__ = [
    "APPSTATE",
    "EXT_PREFIX",
    "TOPICS",
    "AsyncSubscriber",
    "EmergencyExit",
    "EngineRenderEnded",
    "EngineStreamInfo",
    "Event",
    "EventBody",
    "EventTimeout",
    "ExtBody",
    "LifecycleEvent",
    "LogLine",
    "PhaseChanged",
    "PlayerRenderEnded",
    "PlayerStreamInfo",
    "ProblemReported",
    "Publisher",
    "Record",
    "RingConsumer",
    "RingStats",
    "SessionChanged",
    "Shutdown",
    "StatsEngine",
    "StatsPlayer",
    "Subscriber",
    "SubsystemState",
    "Topic",
    "check_forwardable",
    "check_topic",
    "decode_event",
    "encode_event",
    "kind_of",
    "prepare_kinds",
    "topic_of",
]

log = logging.getLogger("lumiera.bus")

CLOSE_LINGER_MS = 1000  # a closing Publisher's last events get this long to leave


# -- the sockets --------------------------------------------------------------------------


class Publisher:
    """A PUB connected to the instance's ``publish`` socket; any thread may publish.

    Make it early (when the subsystem starts): a PUB loses what it sends until
    the bus has subscribed to it (the slow joiner). zmq sockets are not
    thread-safe, so sends go one at a time under a lock (also the memory
    barrier zmq asks for when a socket changes thread).
    """

    def __init__(
        self, rd: RuntimeDir, sender: str, context: zmq.Context[zmq.Socket[bytes]] | None = None
    ) -> None:
        self.sender = sender
        self._lock = threading.Lock()
        sock = (context or zmq.Context.instance()).socket(zmq.PUB)
        sock.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
        sock.connect(rd.endpoint("publish"))
        self._sock: zmq.Socket[bytes] | None = sock  # None once closed

    def publish(self, topic: str, body: EventBody) -> None:
        """Publish ``body`` on ``topic`` (``sender`` and ``ts`` added); any thread.

        Raises TypeError or BadMessage as :func:`encode_event` does. After
        :meth:`close` it does nothing: a worker thread ending late is no error.
        """
        frames = encode_event(topic, body, self.sender)
        with self._lock:
            if self._sock is not None:
                self._sock.send_multipart(frames)

    def close(self) -> None:
        """Close; what was sent has a bounded time (CLOSE_LINGER_MS) to leave."""
        with self._lock:
            if self._sock is not None:
                self._sock.close(linger=CLOSE_LINGER_MS)
                self._sock = None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Receiving:
    """What both subscribers do with what arrives: decode it, or drop it with a log line."""

    rd: RuntimeDir
    limits: Limits
    dropped: int  # malformed events received and dropped
    _filter: zmq.Socket[bytes]  # the SUB, as a plain socket: subscriptions are set on it
    _topics: set[str]

    def subscribe(self, *prefixes: str) -> None:
        """Receive the events whose topic starts with one of ``prefixes`` ("" is all) too."""
        for prefix in prefixes:
            if prefix not in self._topics:
                self._filter.setsockopt(zmq.SUBSCRIBE, prefix.encode())
                self._topics.add(prefix)

    def _wanted(self, prefixes: str | tuple[str, ...]) -> tuple[str, ...]:
        """``wait``'s prefixes as a tuple, subscribed."""
        wanted = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
        self.subscribe(*wanted)
        return wanted

    def _timed_out(self, wanted: tuple[str, ...], timeout: float) -> EventTimeout:
        return EventTimeout(
            f"no {' or '.join(p + '*' for p in wanted)} event within {timeout:g} s "
            f"from instance {self.rd.instance!r}"
        )

    def _accept(self, frames: list[bytes], total: int) -> Event | None:
        """The event ``frames`` hold (``total`` frames arrived), or None once dropped."""
        try:
            if total != 2:
                raise BadMessage(f"an event has 2 frames, not {total}")
            return decode_event(frames, self.limits)
        except BadMessage as e:
            self.dropped += 1
            log.warning("dropped a bad event from instance %s: %s", self.rd.instance, e)
            return None


class Subscriber(_Receiving):
    """A SUB on the instance's ``events`` socket, receiving the topics of ``prefixes``.

    Not thread-safe: use it in one thread at a time. A new subscription takes
    effect a few milliseconds after it is made (nothing is replayed), so
    subscribe before doing what causes the event you wait for.
    """

    def __init__(self, rd: RuntimeDir, *prefixes: str, limits: Limits = DEFAULT_LIMITS) -> None:
        self.rd = rd
        self.limits = limits
        self.dropped = 0  # malformed events received and dropped
        self._topics: set[str] = set()
        self._sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.SUB)
        configure_bounded(self._sock, limits)
        self._filter = self._sock
        self._sock.connect(rd.endpoint("events"))
        self.subscribe(*prefixes)

    def receive(self, timeout: float, wake: int | None = None) -> Event | None:
        """The next valid event, or None when none came within ``timeout`` seconds.

        A malformed event is dropped with one warning in the log and counted in
        :attr:`dropped`; it is never raised. ``wake``: a file descriptor (a pipe's
        read end) that ends the wait early, with None, once it is readable.
        """
        deadline = time.monotonic() + timeout
        poller = None
        if wake is not None:
            poller = zmq.Poller()
            poller.register(self._sock, zmq.POLLIN)
            poller.register(wake, zmq.POLLIN)
        while True:
            left = math.ceil(max(0.0, deadline - time.monotonic()) * 1000)
            if poller is not None:
                ready = dict(poller.poll(left))
                if wake in ready or self._sock not in ready:
                    return None
            elif not self._sock.poll(left):
                return None
            event = self._accept(*recv_bounded(self._sock, 2))
            if event is not None:
                return event
            if time.monotonic() >= deadline:
                return None

    def wait(
        self,
        prefixes: str | tuple[str, ...],
        timeout: float,
        where: Callable[[Event], bool] = lambda _e: True,
    ) -> Event:
        """The next event whose topic starts with ``prefixes`` (one, or a tuple) and ``where``.

        Subscribes the prefixes first; events that do not match are passed
        over. Raises EventTimeout (a TimeoutError) after ``timeout`` seconds.
        """
        wanted = self._wanted(prefixes)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = self.receive(left)
            if event is not None and event.topic.startswith(wanted) and where(event):
                return event
        raise self._timed_out(wanted, timeout)

    def close(self) -> None:
        self._sock.close(linger=0)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSubscriber(_Receiving):
    """:class:`Subscriber` for an asyncio loop (zmq.asyncio): the same semantics, awaited.

    Make it, use it and close it in the thread of one event loop (``context``:
    that loop's zmq.asyncio context; default the process's shared one).
    """

    def __init__(
        self,
        rd: RuntimeDir,
        *prefixes: str,
        limits: Limits = DEFAULT_LIMITS,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        self.rd = rd
        self.limits = limits
        self.dropped = 0  # malformed events received and dropped
        self._topics: set[str] = set()
        import zmq.asyncio

        self._sock = (context or zmq.asyncio.Context.instance()).socket(zmq.SUB)
        # The same socket, read without awaiting once poll said it is readable (every
        # part of a message is there then), so recv_bounded keeps at most 2 frames.
        self._frames: zmq.Socket[bytes] = zmq.Socket.shadow(self._sock.underlying)
        configure_bounded(self._frames, limits)
        self._filter = self._frames
        self._sock.connect(rd.endpoint("events"))
        self.subscribe(*prefixes)

    async def receive(self, timeout: float) -> Event | None:
        """The next valid event, or None when none came within ``timeout`` seconds.

        A malformed event is dropped with one warning in the log and counted in
        :attr:`dropped`; it is never raised.
        """
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            if not await self._sock.poll(math.ceil(left * 1000)):
                return None
            event = self._accept(*recv_bounded(self._frames, 2))
            if event is not None:
                return event
            if time.monotonic() >= deadline:
                return None

    async def wait(
        self,
        prefixes: str | tuple[str, ...],
        timeout: float,
        where: Callable[[Event], bool] = lambda _e: True,
    ) -> Event:
        """As :meth:`Subscriber.wait`: EventTimeout after ``timeout`` seconds."""
        wanted = self._wanted(prefixes)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = await self.receive(left)
            if event is not None and event.topic.startswith(wanted) and where(event):
                return event
        raise self._timed_out(wanted, timeout)

    def close(self) -> None:
        self._sock.close(linger=0)

    async def __aenter__(self) -> AsyncSubscriber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m lumiera.bus.events --markdown [--update FILE]``: the table of PROTOCOL.md."""
    from lumiera.bus import event_docs

    return event_docs.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
