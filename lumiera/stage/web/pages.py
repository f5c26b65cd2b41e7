"""One connected page: what it was sent, what it asked for, and its outbox.

Everything for a page goes through its :class:`Outbox`, written to the
websocket by one task (:meth:`Outbox.drain`), so frames never interleave and
a page that reads slowly never holds up the others: a broadcast only queues.
The outbox is bounded. Bus events a page subscribed to are the only thing it
may lose (counted): they come at the bus's rate, and the page can ask again.
Everything else (replies, diffs, notes, marks, status, the emergency) is
queued while the page keeps up; a page that falls :data:`MAX_QUEUED` messages
behind is closed, as one that stopped reading (it reconnects and starts over).
Viewer pictures come one at a time anyway (the viewer feed waits for the
page's ack, latest frame wins).

Runs in the web UI's event loop thread only.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from lumiera.bus.timeline import Timeline
from lumiera.stage.gui.uibus import BusEvent, UiMessage, encode

log = logging.getLogger("lumiera.gui.web")

MAX_EVENTS_QUEUED = 256  # bus events waiting for one page; more are dropped, counted
MAX_QUEUED = 4096  # anything waiting for one page; more: the page is closed
MAX_PREFIXES = 64  # topic prefixes a page may subscribe to

_page_ids = itertools.count(1)

Frame = str | bytes  # a text frame (one UI-Bus message) or a binary one (a viewer picture)


class PageGone(Exception):
    """The page's connection is closed (or was closed for falling behind)."""


@dataclass
class Outbox:
    """The frames waiting for one page, written in order by :meth:`drain`."""

    write_text: Callable[[str], Awaitable[None]]
    write_bytes: Callable[[bytes], Awaitable[None]]
    # Invariant: events_queued counts the BusEvent frames in _queue; len(_queue) <= MAX_QUEUED.
    _queue: collections.deque[tuple[Frame, bool]] = field(default_factory=collections.deque)
    events_queued: int = 0
    events_dropped: int = 0
    closed: bool = False  # nothing more is written
    finishing: bool = False  # nothing more is queued; drain returns once the queue is empty
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, message: UiMessage) -> None:
        """Queue one message (an event may be dropped, counted); PageGone once closed."""
        is_event = isinstance(message, BusEvent)
        if is_event and self.events_queued >= MAX_EVENTS_QUEUED:
            self.events_dropped += 1
            return
        self._put(encode(message), is_event)

    def put_bytes(self, data: bytes) -> None:
        self._put(data, False)

    def _put(self, frame: Frame, is_event: bool) -> None:
        if self.closed or self.finishing:
            raise PageGone("the page is gone")
        if len(self._queue) >= MAX_QUEUED:
            self.close()
            raise PageGone(f"the page fell {MAX_QUEUED} messages behind")
        self._queue.append((frame, is_event))
        self.events_queued += is_event
        self._ready.set()

    def finish(self) -> None:
        """Queue nothing more; :meth:`drain` returns once what is queued is written."""
        self.finishing = True
        self._ready.set()

    def close(self) -> None:
        """Nothing more is sent; :meth:`drain` returns."""
        self.closed = True
        self._queue.clear()
        self.events_queued = 0
        self._ready.set()

    async def drain(self) -> None:
        """Write what is queued, in order, until closed (run as the page's writer task).

        A failed write (the connection went away) closes the outbox.
        """
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue and not self.closed:
                frame, is_event = self._queue.popleft()
                self.events_queued -= is_event
                try:
                    if isinstance(frame, str):
                        await self.write_text(frame)
                    else:
                        await self.write_bytes(frame)
                except (ConnectionError, RuntimeError) as e:
                    log.info("a page's connection failed: %s", e)
                    self.close()
            if self.closed or self.finishing:
                return


@dataclass
class Page:
    """A connected page (one websocket)."""

    outbox: Outbox
    id: int = field(default_factory=lambda: next(_page_ids))
    prefixes: tuple[str, ...] = ()  # bus event topics it subscribed to
    timeline: Timeline | None = None  # the last it was sent (whole or by diffs)
    viewer_on: bool = False
    # Its actions are handled one at a time, in the order they came (session
    # commands too): an asyncio.Lock lets waiters in in order.
    actions: asyncio.Lock = field(default_factory=asyncio.Lock)

    def send(self, message: UiMessage) -> None:
        """Queue ``message`` for the page (PageGone if it is closed)."""
        self.outbox.put(message)

    def wants(self, topic: str) -> bool:
        return topic.startswith(self.prefixes)
