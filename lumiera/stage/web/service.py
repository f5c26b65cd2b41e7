"""The web UI's event loop: the server, the bus sockets, the hub, in one thread.

:meth:`Service.run` is the body of the web UI's thread: it makes the loop's
zmq.asyncio context and sockets there (sockets belong to the thread that uses
them), binds the listening socket, starts the server, and then serves until
:meth:`Service.request_stop`. The main thread reaches the loop only through
:meth:`Service.call` and :meth:`Service.request_stop` (``call_soon_threadsafe``).

Its end, in order: the bus events already on their way are read (so an
emergency's reason reaches the pages before anything closes), every page's
outbox is written and its websocket closed, the viewer feed stops, the
server stops, the sockets close: all within :data:`CLEANUP_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import zmq
import zmq.asyncio
from aiohttp import web

from lumiera.bus.client import AsyncControlClient
from lumiera.bus.events import AsyncSubscriber, Event
from lumiera.config import Config
from lumiera.runtime_dir import RuntimeDir
from lumiera.stage.gui.plugin import GuiHost
from lumiera.stage.gui.uibus import UiMessage
from lumiera.stage.web import server
from lumiera.stage.web.auth import HOST, Auth
from lumiera.stage.web.hub import EMERGENCY, SESSION_CHANGED, Hub, ViewerPort

log = logging.getLogger("lumiera.gui.web")

CLEANUP_S = 1.6  # the whole end (see the module docstring)
PAGES_CLOSE_S = 0.5  # of it: pages' last messages and closing handshakes
VIEWER_STOP_S = 0.6  # of it: the viewer feed's stop
EVENTS_GRACE_S = 0.05  # of it: a bus event sent just before the stop still arrives
EVENT_WAIT_S = 1.0  # the event pump's receive timeout (it loops)


class ViewerFeedPort(ViewerPort, Protocol):
    """The viewer feed as the service drives it (lumiera.stage.web.viewer.ViewerFeed)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Service:
    """The web UI's loop thread (see the module docstring)."""

    def __init__(
        self,
        host: GuiHost,
        rd: RuntimeDir,
        port: int,
        token: str | None,
        *,
        any_port: bool,
        viewer: Callable[[RuntimeDir, Config], ViewerFeedPort] | None,
    ) -> None:
        self.host = host
        self.rd = rd
        self.port = port
        self.token = token
        self.any_port = any_port  # the setting is 0: another port if ``port`` is taken
        self.viewer_class = viewer
        self.viewer: ViewerFeedPort | None = None  # once started
        self.started = threading.Event()  # set when it serves, or failed to
        self.failure: BaseException | None = None  # why it could not start
        self.auth: Auth | None = None
        self.hub: Hub | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    # -- from the main thread ---------------------------------------------------------

    def call(self, message: UiMessage) -> bool:
        """Broadcast ``message`` to every page, from any thread; False if it is not running."""
        loop, hub = self._loop, self.hub
        if loop is None or hub is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(hub.broadcast, message)
        except RuntimeError:  # the loop closed meanwhile
            return False
        return True

    def request_stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # already closed
                loop.call_soon_threadsafe(stop.set)

    def pages(self) -> int:
        return len(self.hub.pages) if self.hub is not None else 0

    # -- the thread -------------------------------------------------------------------

    def run(self) -> None:
        """The thread's body: serve until stopped (a start failure is kept in ``failure``)."""
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # handed to start(), or logged
            if not self.started.is_set():
                self.failure = e
            else:
                log.exception("the web UI failed")
        finally:
            self.started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        zctx = zmq.asyncio.Context()
        client: AsyncControlClient | None = None
        events: AsyncSubscriber | None = None
        runner: web.AppRunner | None = None
        tasks: list[asyncio.Task[None]] = []
        try:
            client = AsyncControlClient(self.rd, context=zctx)
            events = sub = AsyncSubscriber(self.rd, SESSION_CHANGED, EMERGENCY, context=zctx)
            hub = Hub(
                self.rd.instance,
                client,
                self.host.quit,
                subscribe=lambda prefixes: sub.subscribe(*prefixes),
            )
            listening = self._listen()
            self.auth = Auth.new(listening.getsockname()[1], self.token)
            app = server.make_app(self.auth, hub)
            runner = web.AppRunner(app, handle_signals=False, access_log=None)
            await runner.setup()
            await web.SockSite(runner, listening, shutdown_timeout=PAGES_CLOSE_S).start()
            hub.viewer = self.viewer = await self._start_viewer()
            self.hub = hub
            loop = asyncio.get_running_loop()
            for job in (self._pump(events, hub), hub.run_session_updates()):
                tasks.append(loop.create_task(_logged(job)))
            tasks.append(loop.create_task(_logged(hub.run_status_updates())))
            log.info("the web UI listens on %s", self.auth.origin)
            self.started.set()
            await self._stop.wait()
            try:
                async with asyncio.timeout(CLEANUP_S):
                    await self._end(events, hub, app, tasks)
            except TimeoutError:
                log.warning("the web UI's end took over %g s; closing what is left", CLEANUP_S)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if runner is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(PAGES_CLOSE_S):
                        await runner.cleanup()
            if events is not None:
                events.close()
            if client is not None:
                await client.close()
            zctx.term()

    def _listen(self) -> socket.socket:
        """The listening socket on 127.0.0.1 (``port``, else any when the setting is 0)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            try:
                sock.bind((HOST, self.port))
            except OSError as e:
                if not (self.any_port and self.port):
                    raise OSError(f"cannot listen on {HOST}:{self.port}: {e.strerror}") from e
                sock.bind((HOST, 0))  # the remembered port is taken: a fresh one
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    async def _start_viewer(self) -> ViewerFeedPort | None:
        if self.viewer_class is None:
            log.info("the viewer is not installed: the pages get no pictures")
            return None
        try:
            feed = self.viewer_class(self.rd, self.host.ctx.config)
            await feed.start()
        except Exception:  # the UI without pictures is still a UI; said loudly
            log.exception("the viewer feed failed to start: the pages get no pictures")
            return None
        return feed

    async def _pump(self, events: AsyncSubscriber, hub: Hub) -> None:
        """Forever: each bus event to the hub."""
        while True:
            event = await events.receive(EVENT_WAIT_S)
            if event is not None:
                _deliver(hub, event)

    async def _end(
        self, events: AsyncSubscriber, hub: Hub, app: web.Application, tasks: list[Any]
    ) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while (event := await events.receive(EVENTS_GRACE_S)) is not None:
            _deliver(hub, event)  # the emergency, published before we were told to stop
        await server.finish_pages(app, hub, PAGES_CLOSE_S)
        if self.viewer is not None:
            try:
                async with asyncio.timeout(VIEWER_STOP_S):
                    await self.viewer.stop()
            except Exception:
                log.exception("the viewer feed failed to stop")


async def _logged(job: Coroutine[Any, Any, None]) -> None:
    """Run one of the loop's jobs; its failure is logged with the traceback (it never ends)."""
    try:
        await job
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("a job of the web UI failed")


def _deliver(hub: Hub, event: Event) -> None:
    try:
        hub.on_event(event)
    except Exception:  # one event's failure is not the end of the others
        log.exception("the web UI failed on event %s", event.topic)
