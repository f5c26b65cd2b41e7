"""The render's origin serves session media to render nodes that do not share its storage.

A farm render with ``--ship-media`` runs a :class:`MediaServer` on the origin
(the host running ``lumiera render --farm``), which offers each media of the
timeline (:meth:`MediaServer.offer`: it must still be the file the session
probed; its content key, the sha256, names it from then on) and sends a
:class:`ShipSpec` (address, token, chunk size, one :class:`Offer` per media)
with every task; a node fetches what it lacks (:mod:`lumiera.vault.mediacache`).

HTTP, one route::

    GET /media/{key}?offset=N&length=M     Authorization: Bearer TOKEN

answers bytes ``N .. N+M-1`` of the offered file (``M`` capped by the
server's ``max_chunk`` and by the file's end; ``Content-Range`` says which).
Refusals, each with a plain-text reason in the body: 401 (no bearer token),
403 (a wrong one), 404 (no such key offered: a request never names a path, only
a key the origin offered), 400 (offset or length not whole numbers), 416
(a range outside the file), 409 (the origin's file no longer has the identity
it was offered with: it is stat'ed on every request, on the open file).

An aiohttp application on its own event loop in a daemon thread; reads go to a
thread pool so the loop stays free. ``start``/``stop`` are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lumiera.bus.messages import Id, Text
from lumiera.bus.records import Record
from lumiera.bus.timeline import Media
from lumiera.errors import MediaChanged, MediaError, UsageError
from lumiera.vault.media import Identity

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("lumiera.vault.mediaserve")

MIB = 1 << 20
MAX_CHUNK = 64 * MIB  # the most bytes one request answers
HASH_BLOCK = MIB  # content_key reads this much at a time
READERS = 4  # threads reading chunks for the loop
START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 3.0
SHUTDOWN_S = 1.0  # of the stop: requests in flight may finish this long
KEY = re.compile(r"[0-9a-f]{64}")


def content_key(path: str | os.PathLike[str]) -> str:
    """The sha256 of the file's content, hex; read in blocks (any size). OSError if unreadable."""
    with open(path, "rb") as f:
        return _hash(f.fileno())


def _hash(fd: int) -> str:
    digest = hashlib.sha256()
    offset = 0
    while block := os.pread(fd, HASH_BLOCK, offset):
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Offer(Record):
    """A media the origin serves: the session's media ``id``, its content key, size and mtime."""

    id: Id
    key: Id  # sha256 hex of the content: what the node's cache names the file by
    size: int
    mtime_ns: int

    def invalid(self) -> str | None:
        if not KEY.fullmatch(self.key):
            return f"key {self.key!r} is not a sha256 in hex"
        if min(self.size, self.mtime_ns) < 0:
            return "size and mtime_ns cannot be negative"
        return None


@dataclass(frozen=True)
class ShipSpec(Record):
    """What the origin sends with each task: where to fetch, the token, the chunk size, the offers.

    ``to_wire``/``from_wire`` (a plain map; BadMessage naming the field when one
    is wrong). The token is left out of the repr (logs, tracebacks).
    """

    url: Text
    token: Text = field(repr=False)
    chunk_bytes: int
    offers: tuple[Offer, ...] = ()

    def offer_of(self, media_id: str) -> Offer | None:
        """The offer of media ``media_id``, or None when it is not shipped."""
        return next((o for o in self.offers if o.id == media_id), None)

    def invalid(self) -> str | None:
        if urlsplit(self.url).scheme not in ("http", "https") or not urlsplit(self.url).netloc:
            return f"url {self.url!r} is not http(s)://host:port"
        if self.chunk_bytes < 1:
            return f"chunk_bytes {self.chunk_bytes} is not positive"
        return None


@dataclass(frozen=True)
class _Served:
    """An offered file: where it is on the origin, and what it must still be."""

    media_id: str
    path: str
    identity: Identity


class _Changed(Exception):
    """The offered file is no longer the one offered (answered 409)."""


class MediaServer:
    """Serves offered media over HTTP(S) from a loop thread (see the module docstring).

    ``host`` is where it listens and what :attr:`url` names (the address the
    nodes reach this host at); ``port`` 0 takes a free one. ``requests`` counts
    the requests to ``/media`` answered so far, whatever the answer.
    """

    def __init__(
        self,
        host: str,
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_chunk: int = MAX_CHUNK,
    ) -> None:
        if max_chunk < 1:
            raise ValueError("max_chunk must be at least 1")
        self.host = host
        self.ssl_context = ssl_context
        self.max_chunk = max_chunk
        self.token = secrets.token_urlsafe(32)
        self.requests = 0
        self._port = port
        self._served: dict[str, list[_Served]] = {}
        self._keys: dict[tuple[str, Identity], str] = {}  # offered before: not hashed again
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(READERS, thread_name_prefix="lumiera-mediaserve-read")
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None

    @property
    def port(self) -> int:
        """The port it listens on (once started; the one asked before)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` (``https`` with TLS); an IPv6 host in brackets."""
        scheme = "https" if self.ssl_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self._port}"

    def spec(self, chunk_bytes: int) -> ShipSpec:
        """The ShipSpec of everything offered so far, fetched ``chunk_bytes`` at a time."""
        with self._lock:
            offers = [
                Offer(s.media_id, key, s.identity.size, s.identity.mtime_ns)
                for key, served in self._served.items()
                for s in served
            ]
        return ShipSpec(self.url, self.token, chunk_bytes, tuple(offers))

    # -- offering -------------------------------------------------------------------------

    def offer(self, media: Media) -> Offer:
        """Serve ``media`` from now on; its Offer (what a node needs to fetch and check it).

        The file must still be the one the session probed (size, mtime_ns and,
        where recorded, inode), before and after its content is hashed. Raises
        MediaError when it is missing or unreadable, MediaChanged when it is
        another file or was rewritten.
        """
        expected = Identity.probed(media)
        try:
            fd = os.open(media.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise MediaError(f"media {media.id}: {media.path}: {e.strerror}") from None
        try:
            before = _identity(fd)
            self._check(media, expected, before)
            key = self._keys.get((media.path, before))
            if key is None:
                key = _hash(fd)
                self._check(media, expected, _identity(fd))
        except OSError as e:
            raise MediaError(f"media {media.id}: {media.path}: {e.strerror}") from None
        finally:
            os.close(fd)
        served = _Served(media.id, media.path, before)  # the inode is known now, even if it was 0
        with self._lock:
            self._keys[(media.path, before)] = key
            entries = self._served.setdefault(key, [])
            if served not in entries:
                entries.append(served)
        return Offer(media.id, key, before.size, before.mtime_ns)

    @staticmethod
    def _check(media: Media, expected: Identity, now: Identity) -> None:
        if not expected.matches(now):
            raise MediaChanged(
                f"media {media.id}: {media.path} changed on disk since it was probed "
                f"(size {expected.size} -> {now.size}, mtime or inode differ)"
            )

    # -- start and stop -------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT_S) -> MediaServer:
        """Listen and serve; returns when it does. UsageError when it cannot listen there
        (the host is not this machine's, the port is taken), MediaError if it did not
        start within ``timeout``."""
        if self._thread is not None:
            raise RuntimeError("the media server was started already")
        sock = self._listen()
        self._port = sock.getsockname()[1]
        self._loop, self._stop = asyncio.new_event_loop(), asyncio.Event()
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="lumiera-mediaserve", daemon=True
        )
        self._thread.start()
        if not self._started.wait(timeout) or self._failure is not None:
            failure = self._failure
            self.stop()
            raise MediaError(f"the media server on {self.url} did not start: {failure}")
        log.info("serving media on %s", self.url)
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop serving (requests in flight get a moment to finish); within about ``timeout``."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():  # a daemon thread: it goes with the process
                log.error("the media server did not stop within %g s", timeout)
        # reads are bounded (one chunk); none is left once the loop ended
        self._pool.shutdown(wait=thread is None or not thread.is_alive(), cancel_futures=True)

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listen(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(
                self.host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except socket.gaierror as e:
            raise UsageError(f"cannot serve media on {self.host}: {e.strerror}") from None
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            raise UsageError(
                f"cannot serve media on {self.host}:{self._port}: {e.strerror}"
            ) from None
        return sock

    # -- the loop thread ------------------------------------------------------------------

    def _run(self, sock: socket.socket) -> None:
        loop = self._loop
        assert loop is not None
        try:
            loop.run_until_complete(self._serve(sock))
        except Exception as e:  # handed to start(), or logged
            if self._started.is_set():
                log.error("the media server failed", exc_info=e)
            self._failure = e
        finally:
            sock.close()  # SockSite closes it too; a start that failed before does not
            self._started.set()
            loop.close()

    async def _serve(self, sock: socket.socket) -> None:
        from aiohttp import web  # here: a node that only fetches never imports it

        assert self._stop is not None
        app = web.Application(client_max_size=4096)
        app.router.add_get("/media/{key}", self._media)
        runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_S
        )
        await runner.setup()
        try:
            site = web.SockSite(runner, sock, ssl_context=self.ssl_context)
            await site.start()
            self._started.set()
            await self._stop.wait()
        finally:
            async with asyncio.timeout(SHUTDOWN_S + 1.0):
                await runner.cleanup()

    async def _media(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return _refuse(401, "a bearer token is needed", {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode(errors="replace"), self.token.encode()):
            return _refuse(403, "wrong token")
        key = request.match_info["key"]
        with self._lock:
            entries = list(self._served.get(key, ()))
        if not entries:
            return _refuse(404, f"no media {key[:64]!r} is offered here")
        try:
            offset = int(request.query.get("offset", "0"))
            length = int(request.query.get("length", str(self.max_chunk)))
        except ValueError:
            return _refuse(400, "offset and length must be whole numbers")
        size = entries[0].identity.size
        if offset < 0 or length < 1 or offset >= size:
            why = f"range {offset}+{length} is not within the {size} bytes of {key}"
            return _refuse(416, why, {"Content-Range": f"bytes */{size}"})
        count = min(length, self.max_chunk, size - offset)
        loop = asyncio.get_running_loop()
        try:
            data = await loop.run_in_executor(self._pool, _read_any, entries, offset, count)
        except _Changed as e:
            log.warning("refused media %s: %s", key, e)
            return _refuse(409, str(e))
        except OSError as e:
            return _refuse(500, f"media {entries[0].media_id}: cannot read: {e.strerror}")
        from aiohttp import web

        return web.Response(
            body=data,
            content_type="application/octet-stream",
            headers={"Content-Range": f"bytes {offset}-{offset + count - 1}/{size}"},
        )


def _refuse(status: int, why: str, headers: dict[str, str] | None = None) -> web.Response:
    from aiohttp import web

    return web.Response(status=status, text=why + "\n", headers=headers)


def _identity(fd: int) -> Identity:
    st = os.fstat(fd)
    return Identity(st.st_size, st.st_mtime_ns, st.st_ino)


def _read_any(entries: list[_Served], offset: int, count: int) -> bytes:
    """``count`` bytes at ``offset`` of the first offered file that is still as offered."""
    for served in entries[:-1]:
        with contextlib.suppress(_Changed):
            return _read(served, offset, count)
    return _read(entries[-1], offset, count)


def _read(served: _Served, offset: int, count: int) -> bytes:
    """Read from the open file, after checking its identity on it (no swap in between)."""
    where = f"media {served.media_id}: {served.path}"
    try:
        fd = os.open(served.path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _Changed(f"{where} is gone from the origin since it was offered") from None
    try:
        if not served.identity.matches(_identity(fd)):
            raise _Changed(f"{where} changed on the origin since it was offered")
        data = os.pread(fd, count, offset)
    finally:
        os.close(fd)
    if len(data) != count:
        raise _Changed(f"{where} is shorter on the origin than when it was offered")
    return data


def address_towards(host: str, port: int = 9) -> str:
    """This host's address on the route to ``host`` (what nodes that reach it reach us at).

    For ``[farm] serve_host`` left empty: the address this host reaches the
    scheduler from. No packet is sent (a UDP socket is only connected).
    UsageError when ``host`` does not resolve or has no route.
    """
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(address)
            found: str = probe.getsockname()[0]
    except OSError as e:
        raise UsageError(f"no route to {host} to serve media on: {e.strerror or e}") from None
    return found
