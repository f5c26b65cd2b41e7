"""The UI-Bus hub: every page, what goes down to them, and what their actions become.

The logic between the pages and the bus, without a socket of its own: the
bus is a :class:`BusPort` (the web UI gives it an
:class:`~lumiera.bus.client.AsyncControlClient`), a page is a
:class:`~lumiera.stage.web.pages.Page` whose outbox the server writes to its
websocket. So tests can drive it with a fake bus.

Down: ``hello``, ``status`` and ``session`` when a page connects; ``diff``
after each ``session.changed`` (against what that page was sent); ``status``
every :data:`STATUS_INTERVAL_S` (the page has no polling loop); ``note`` and
``mark`` from the Notification facade; ``event`` for the topics a page
subscribed to; ``emergency`` when ``lifecycle.ON_EMERGENCY_EXIT`` comes;
``viewer`` counts every second while its viewer is on.

Up: ``command`` (an :data:`~lumiera.stage.gui.uibus.ALLOWED` request over the
bus, answered by ``reply``), ``quit``, ``subscribe``, ``clock``,
``viewer_ack``. A page's actions run one at a time, in order. A malformed
message is answered ``reply`` ok=false code ``bad_message`` (ref 0 when its ref
cannot be read) and logged; it never ends anything.

Runs in the web UI's event loop thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from lumiera.bus.events import EmergencyExit, Event, SessionChanged
from lumiera.bus.timeline import Timeline
from lumiera.errors import BadMessage, LumieraError, Unavailable
from lumiera.stage.gui import uibus
from lumiera.stage.gui.diff import diff
from lumiera.stage.web.pages import MAX_PREFIXES, Page, PageGone

log = logging.getLogger("lumiera.gui.web")

STATUS_INTERVAL_S = 1.0  # status (and viewer counts) to every page
COMMAND_TIMEOUT_S = 10.0  # a page's command over the bus (the supervisor answers by 5 s)
STATUS_TIMEOUT_S = 2.0  # appstate status and session timeline, fetched for the pages
EMERGENCY = "lifecycle.ON_EMERGENCY_EXIT"
SESSION_CHANGED = "session.changed"


class BusPort(Protocol):
    """Requests over the bus (an AsyncControlClient)."""

    async def request(
        self,
        to: str,
        command: str,
        args: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any: ...


class ViewerPort(Protocol):
    """The viewer feed (lumiera.stage.web.viewer.ViewerFeed), as the hub uses it."""

    ring: str | None  # the ring it reads now

    def add_page(self, page_id: int, send: Callable[[bytes], Awaitable[None]]) -> None: ...

    def ack(self, page_id: int, on: bool, frame: int | None) -> None: ...

    def remove_page(self, page_id: int) -> None: ...

    def counts(self, page_id: int) -> tuple[int, int, int | None]: ...


class Hub:
    """The pages of one web UI and the rules of the module docstring."""

    def __init__(
        self,
        instance: str,
        bus: BusPort,
        quit: Callable[[], None],
        viewer: ViewerPort | None = None,
        subscribe: Callable[[tuple[str, ...]], None] = lambda _p: None,
    ) -> None:
        self.instance = instance
        self.bus = bus
        self.quit = quit
        self.viewer = viewer
        self.subscribe = subscribe  # adds topic prefixes to the UI's bus subscriber
        self.pages: dict[int, Page] = {}
        self.emergency: uibus.Emergency | None = None  # once one was sent
        # The newest timeline fetched; a page's own (Page.timeline) may be older.
        self.latest: Timeline | None = None
        self._changed = asyncio.Event()  # session.changed came: refresh the pages
        self._changed_by = ""  # the command named by the last session.changed
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: dict[type[uibus.UiMessage], Callable[[Page, Any], Awaitable[None]]] = {
            uibus.Command: self._on_command,
            uibus.Quit: self._on_quit,
            uibus.Subscribe: self._on_subscribe,
            uibus.Clock: self._on_clock,
            uibus.ViewerAck: self._on_viewer_ack,
        }

    # -- pages ----------------------------------------------------------------------

    async def connect(self, page: Page) -> None:
        """Register ``page``: ``hello`` at once, then ``status`` and ``session``."""
        self.pages[page.id] = page
        allowed = {to: sorted(commands) for to, commands in uibus.ALLOWED.items()}
        page.send(uibus.Hello(instance=self.instance, server_ms=_now_ms(), allowed=allowed))
        if self.emergency is not None:
            page.send(self.emergency)
        if self.viewer is not None:
            self.viewer.add_page(page.id, _picture_sender(page))
        status = await self._status()
        if status is not None:
            page.send(status)
        timeline = await self._timeline()
        if timeline is None:
            return  # the next session.changed sends it whole
        # No await from here on: nothing else runs before the page holds its timeline.
        page.send(uibus.SessionState(timeline=timeline))
        page.timeline = timeline
        self._catch_up(page)

    def disconnect(self, page: Page) -> None:
        """Forget ``page`` (its connection is gone); its running actions are cancelled."""
        self.pages.pop(page.id, None)
        if self.viewer is not None:
            self.viewer.remove_page(page.id)
        for task in list(self._tasks):
            if task.get_name() == f"page-{page.id}":
                task.cancel()

    def broadcast(self, message: uibus.UiMessage) -> None:
        """Queue ``message`` for every page."""
        for page in list(self.pages.values()):
            _send(page, message)

    # -- up: a page's messages ------------------------------------------------------

    def receive(self, page: Page, text: str | bytes) -> None:
        """One frame from ``page``: checked, then handled in order (never raises)."""
        try:
            if isinstance(text, bytes):
                raise BadMessage("a page sends text frames only")
            message = uibus.decode(text)
        except BadMessage as e:
            log.warning("page %d sent a bad message: %s", page.id, e)
            _send(page, _error_reply(_ref_of(text), e))
            return
        task = asyncio.get_running_loop().create_task(
            self._in_order(page, message), name=f"page-{page.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _in_order(self, page: Page, message: uibus.UiMessage) -> None:
        async with page.actions:
            try:
                await self._handlers[type(message)](page, message)
            except PageGone:
                pass
            except Exception:
                log.exception("page %d: handling %s failed", page.id, message.KIND)
                _send(
                    page,
                    uibus.Reply(
                        ref=getattr(message, "ref", 0),
                        ok=False,
                        code="internal",
                        message="the GUI failed to handle it",
                    ),
                )

    async def _on_command(self, page: Page, msg: uibus.Command) -> None:
        try:
            result = await self.bus.request(msg.to, msg.command, msg.args, COMMAND_TIMEOUT_S)
        except LumieraError as e:
            page.send(_error_reply(msg.ref, e))
            return
        try:
            page.send(uibus.Reply(ref=msg.ref, ok=True, result=result))
        except (TypeError, ValueError) as e:  # a result JSON cannot carry
            log.error("%s %s: a reply a page cannot take: %s", msg.to, msg.command, e)
            page.send(uibus.Reply(ref=msg.ref, ok=False, code="internal", message=str(e)))

    async def _on_quit(self, page: Page, msg: uibus.Quit) -> None:
        log.info("page %d: quit", page.id)
        page.send(uibus.Reply(ref=msg.ref, ok=True, result={"quitting": True}))
        self.quit()

    async def _on_subscribe(self, page: Page, msg: uibus.Subscribe) -> None:
        if len(msg.prefixes) > MAX_PREFIXES:
            page.send(_error_reply(0, BadMessage(f"subscribe: at most {MAX_PREFIXES} prefixes")))
            return
        page.prefixes = tuple(msg.prefixes)
        self.subscribe(page.prefixes)

    async def _on_clock(self, page: Page, msg: uibus.Clock) -> None:
        page.send(uibus.Reply(ref=msg.ref, ok=True, result={"server_ms": _now_ms()}))

    async def _on_viewer_ack(self, page: Page, msg: uibus.ViewerAck) -> None:
        if self.viewer is None:
            page.send(_error_reply(0, Unavailable("the viewer is not available in this GUI")))
            return
        page.viewer_on = msg.on
        self.viewer.ack(page.id, msg.on, msg.frame)

    # -- down: the bus's events -----------------------------------------------------

    def on_event(self, event: Event) -> None:
        """One bus event: forwarded to the pages that want it; a session change, an emergency."""
        if event.topic == SESSION_CHANGED and isinstance(event.body, SessionChanged):
            self._changed_by = event.body.command
            self._changed.set()
        elif (
            event.topic == EMERGENCY
            and isinstance(event.body, EmergencyExit)
            and self.emergency is None
        ):
            self.emergency = uibus.Emergency(
                reason=event.body.reason, subsystem=event.body.subsystem
            )
            log.warning("emergency: %s %s", event.body.subsystem, event.body.reason)
            self.broadcast(self.emergency)
        wanting = [p for p in self.pages.values() if p.wants(event.topic)]
        if wanting:
            forwarded = uibus.BusEvent(
                topic=event.topic, sender=event.sender, ts=event.ts, body=event.data()
            )
            for page in wanting:
                _send(page, forwarded)

    async def run_session_updates(self) -> None:
        """Forever: after each session.changed (a burst counts once), the pages' diffs."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            timeline = await self._timeline()
            if timeline is not None:
                for page in list(self.pages.values()):
                    self._catch_up(page)

    async def run_status_updates(self) -> None:
        """Forever: every STATUS_INTERVAL_S, status (and viewer counts) to every page."""
        while True:
            await asyncio.sleep(STATUS_INTERVAL_S)
            if not self.pages:
                continue
            status = await self._status()
            if status is not None:
                self.broadcast(status)
            if self.viewer is not None:
                for page in list(self.pages.values()):
                    if page.viewer_on:
                        sent, dropped, frame = self.viewer.counts(page.id)
                        state = uibus.ViewerState(
                            sent=sent, dropped=dropped, frame=frame, ring=self.viewer.ring
                        )
                        _send(page, state)

    def _catch_up(self, page: Page) -> None:
        """Send ``page`` what changed since the timeline it holds (nothing if it holds none)."""
        latest = self.latest
        if page.timeline is None or latest is None or latest == page.timeline:
            return
        if latest.revision < page.timeline.revision:  # never older: resend it whole
            _send(page, uibus.SessionState(timeline=latest))
        else:
            _send(page, diff(page.timeline, latest, self._changed_by))
        page.timeline = latest

    # -- fetching -------------------------------------------------------------------

    async def _timeline(self) -> Timeline | None:
        try:
            data = await self.bus.request("session", "timeline", {}, STATUS_TIMEOUT_S)
            timeline = Timeline.from_wire(data)
        except LumieraError as e:
            log.warning("cannot fetch the session's timeline: %s", e)
            return None
        if self.latest is None or timeline.revision >= self.latest.revision:
            self.latest = timeline
        return self.latest

    async def _status(self) -> uibus.Status | None:
        try:
            status = await self.bus.request("appstate", "status", {}, STATUS_TIMEOUT_S)
        except LumieraError as e:
            log.info("cannot fetch the status: %s", e)
            return None
        return uibus.Status(status=status)


def _send(page: Page, message: uibus.UiMessage) -> None:
    try:
        page.send(message)
    except PageGone:
        pass  # its connection is ending; the server forgets it
    except (TypeError, ValueError) as e:  # a body JSON cannot carry: a bug, said once
        log.error("cannot send %s to a page: %s", message.KIND, e)


def _picture_sender(page: Page) -> Callable[[bytes], Awaitable[None]]:
    async def send(picture: bytes) -> None:
        with contextlib.suppress(PageGone):  # the feed hears of it through remove_page
            page.outbox.put_bytes(picture)

    return send


def _error_reply(ref: int, error: LumieraError) -> uibus.Reply:
    return uibus.Reply(ref=ref, ok=False, code=error.code, message=str(error)[:4096])


def _ref_of(text: str | bytes) -> int:
    """The ``ref`` of a message that failed its check, if it can be read (else 0)."""
    try:
        ref = json.loads(text).get("ref") if len(text) <= uibus.MAX_MESSAGE_BYTES else None
    except (ValueError, AttributeError, RecursionError):
        return 0
    return ref if isinstance(ref, int) and not isinstance(ref, bool) else 0


def _now_ms() -> float:
    return time.monotonic() * 1000
