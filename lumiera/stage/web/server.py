"""The web UI's HTTP side: the token check, the static files, ``/uibus.json`` and ``/ws``.

A thin driver: :class:`~lumiera.stage.web.auth.Auth` decides who may come in
(every route, the websocket included, goes through :func:`_guard`), the
:class:`~lumiera.stage.web.hub.Hub` decides what the UI-Bus does; this module
only moves requests and frames between aiohttp and them.

Routes: ``/`` (``index.html``), ``/uibus.json`` (:func:`lumiera.stage.gui.uibus.schema`),
``/ws`` (the UI-Bus), and every other file under ``static/`` by its name.
Files are served with ``Cache-Control: no-cache`` (the browser revalidates by
ETag and Last-Modified, so an updated lumiera is never shown stale) and their
content type from :data:`CONTENT_TYPES` (JavaScript modules must be served as
JavaScript, whatever the system's mime table says).

Runs in the web UI's event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler
from yarl import URL

from lumiera.stage.gui import uibus
from lumiera.stage.web.auth import Auth, Verdict
from lumiera.stage.web.hub import Hub
from lumiera.stage.web.pages import Outbox, Page

log = logging.getLogger("lumiera.gui.web")

STATIC = Path(__file__).parent / "static"
HEARTBEAT_S = 10.0  # a websocket ping; a page that does not answer is closed
CLOSE_TIMEOUT_S = 1.0  # a page's websocket closing handshake
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
}
FORBIDDEN = (
    "403: forbidden. Open the address lumiera printed, with its token "
    "(`lumiera status` shows it).\n"
)
WEBSOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("websockets")


def make_app(auth: Auth, hub: Hub) -> web.Application:
    """The application: the guard, the routes, and the hub's websockets."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await _guard(auth, request, handler)

    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app[WEBSOCKETS] = set()
    app.router.add_get("/", _index)
    app.router.add_get("/uibus.json", _schema)
    app.router.add_get("/ws", _websocket_handler(hub))
    app.router.add_get("/{name:.+}", _static)
    return app


async def _guard(auth: Auth, request: web.Request, handler: Handler) -> web.StreamResponse:
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    decision = auth.check(
        host=request.headers.get("Host"),
        query_token=request.query.get("token"),
        cookie=request.cookies.get(auth.cookie_name),
        websocket=upgrade,
        origin=request.headers.get("Origin"),
    )
    if decision.verdict is Verdict.FORBID:
        log.warning("refused %s %s: %s", request.method, request.path, decision.why)
        return web.Response(status=403, text=FORBIDDEN)
    if decision.verdict is Verdict.LOGIN:
        query = {k: v for k, v in request.query.items() if k != "token"}
        response = web.HTTPFound(str(URL.build(path=request.path, query=query)))
        response.set_cookie(
            auth.cookie_name, auth.token, httponly=True, samesite="Strict", path="/"
        )
        return response
    answer: web.StreamResponse = await handler(request)
    return answer


async def _index(request: web.Request) -> web.StreamResponse:
    return _file(STATIC / "index.html")


async def _schema(request: web.Request) -> web.StreamResponse:
    return web.json_response(uibus.schema(), headers={"Cache-Control": "no-cache"})


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if any(part in ("", ".", "..") or part.startswith(".") for part in name.split("/")):
        raise web.HTTPNotFound()
    path = (STATIC / name).resolve()
    if not path.is_relative_to(STATIC.resolve()):
        raise web.HTTPNotFound()
    return _file(path)


def _file(path: Path) -> web.StreamResponse:
    if not path.is_file():
        raise web.HTTPNotFound()
    content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": content_type,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _websocket_handler(hub: Hub) -> Handler:
    async def websocket(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            compress=False,  # JPEG pictures do not compress; deflate only costs latency
            max_msg_size=uibus.MAX_MESSAGE_BYTES,
            heartbeat=HEARTBEAT_S,
        )
        await ws.prepare(request)
        request.app[WEBSOCKETS].add(ws)
        page = Page(Outbox(ws.send_str, ws.send_bytes))
        writer = asyncio.get_running_loop().create_task(_write(page, ws))
        log.info("page %d connected", page.id)
        try:
            await hub.connect(page)
            async for message in ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    hub.receive(page, message.data)
                elif message.type is WSMsgType.ERROR:
                    log.info("page %d: %s", page.id, ws.exception())
        finally:
            hub.disconnect(page)
            page.outbox.close()
            request.app[WEBSOCKETS].discard(ws)
            await writer
            log.info("page %d disconnected", page.id)
        return ws

    return websocket


async def _write(page: Page, ws: web.WebSocketResponse) -> None:
    """The page's writer: its outbox to the websocket; then the connection closes."""
    try:
        await page.outbox.drain()
    finally:
        if not ws.closed:
            why = b"lumiera is ending" if page.outbox.finishing else b"the page fell behind"
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await ws.close(code=1001, message=why)


async def finish_pages(app: web.Application, hub: Hub, timeout: float) -> None:
    """Write what every page still has queued (the emergency's reason), then close them."""
    for page in hub.pages.values():
        page.outbox.finish()
    sockets = app[WEBSOCKETS].copy()
    if not sockets:
        return
    try:
        async with asyncio.timeout(timeout):
            while any(not ws.closed for ws in sockets):
                await asyncio.sleep(0.01)
    except TimeoutError:
        log.warning("%d pages did not close within %g s", len(sockets), timeout)
