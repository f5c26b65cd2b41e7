"""A client of an instance's ``control`` socket: one request, one reply, always bounded.

Used by the command-line tools, the tests and the benchmarks; a client in
another language does the same with a DEALER (or REQ) socket and msgpack
(docs/PROTOCOL.md).

Direct calls (``direct=True``, docs/PROTOCOL.md 8.1.1): a request to a
subsystem goes straight to its own ROUTER, ``svc-<name>`` in the runtime
dir, found by its name (no broker, no discovery), skipping the
supervisor's hop; the reply is the same. One DEALER per subsystem, made
when its socket file is first seen and kept (``ZMQ_IMMEDIATE``: nothing is
queued for a peer that is not connected). Without the file (a subsystem
still starting, or one under ``--debug`` not attached yet) the request is
routed via ``control`` as before, so the supervisor's holding and refusals
still apply. While a direct request waits, the file is checked now and
then: if it vanishes or is replaced, the subsystem ended and the request
fails ``Unreachable`` at once; otherwise it fails so at the timeout.
Requests to ``appstate`` always use ``control``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

import zmq

from lumiera.bus import DEFAULT_TIMEOUT
from lumiera.bus import messages as m
from lumiera.errors import BadMessage, NotRunning, Unreachable, from_wire
from lumiera.runtime_dir import RuntimeDir, is_locked, service_name

if TYPE_CHECKING:  # asyncio and zmq.asyncio are imported by the async client alone (start-up)
    import asyncio

    import zmq.asyncio

log = logging.getLogger("lumiera.bus")

_ids = itertools.count(1)
# Longer than the supervisor's default bus.request_timeout (5 s), so its typed
# ``timeout`` reply for a slow subsystem arrives before the client gives up.
# How often a direct request that waits looks whether the subsystem's socket file is
# still there (it goes when the subsystem ends, crash included).
DIRECT_CHECK_S = 0.05


class _Direct:
    """A DEALER connected to one subsystem's ``svc-<name>``, and the file's inode then."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], path: str, inode: int) -> None:
        self.path = path
        self.inode = inode
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)  # queue nothing for a peer not connected
        self.sock.setsockopt(zmq.RECONNECT_IVL, 20)
        self.sock.connect(f"ipc://{path}")

    def current(self) -> bool:
        """Whether the socket file is still the one we connected to."""
        return _inode(self.path) == self.inode

    def close(self) -> None:
        self.sock.close(linger=0)


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


class ControlClient:
    """A DEALER connected to the instance's ``control`` socket (and, direct, to services).

    ``direct``: send requests to a subsystem straight to its ``svc-<name>``
    when it has one (see the module's doc); routed via ``control`` otherwise.
    Not thread-safe; make one per thread. Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(
        self, rd: RuntimeDir, timeout: float = DEFAULT_TIMEOUT, direct: bool = False
    ) -> None:
        if not rd.socket("control").exists() or not is_locked(rd):
            raise NotRunning(f"no lumiera instance {rd.instance!r} is running at {rd.path}")
        self.rd = rd
        self.timeout = timeout
        self.direct = direct
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(rd.endpoint("control"))
        self._prefix = f"{os.getpid()}-"
        self._direct: dict[str, _Direct] = {}  # subsystem -> its service connection

    def request(
        self,
        to: str,
        command: str,
        args: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; return the result, or raise the error the reply carries.

        Raises Unreachable when no reply comes within ``timeout`` seconds
        (default: the client's), BadMessage for a reply that fails validation.
        """
        rid = f"{self._prefix}{next(_ids)}"
        data = m.encode(m.Request(rid, to, command, args or {}))
        wait_s = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait_s
        svc = self._send_direct(to, data, deadline) if self.direct and to != "appstate" else None
        if svc is None:
            self._sock.send(data)
        sock = self._sock if svc is None else svc.sock
        while True:
            left = deadline - time.monotonic()
            if svc is not None:  # look at the file now and then: gone means it ended
                left = min(left, DIRECT_CHECK_S)
            if not sock.poll(max(0, int(left * 1000))):
                if svc is not None and not svc.current():
                    self._forget(to)
                    raise Unreachable(f"{to!r} ended before it answered (direct call)")
                if time.monotonic() < deadline:
                    continue
                raise Unreachable(
                    f"no reply from {to!r} of instance {self.rd.instance!r} at {self.rd.path} "
                    f"within {wait_s:g} s"
                )
            reply = m.decode(sock.recv())
            if isinstance(reply, m.Reply) and reply.id == rid:
                return reply.result
            if isinstance(reply, m.Error) and reply.id in (rid, None):
                raise from_wire(reply.code, reply.message)
            if not isinstance(reply, m.Reply | m.Error):
                raise BadMessage(f"unexpected {reply.KIND} on the control socket")
            # a late reply to an earlier, timed-out request: skip it

    def _send_direct(self, to: str, data: bytes, deadline: float) -> _Direct | None:
        """Send ``data`` to ``to``'s service socket; None if it has none (then route it).

        Waits (bounded) for the connection of a new or reconnecting DEALER;
        raises Unreachable if the file stays but nobody accepts by ``deadline``.
        """
        svc = self._direct.get(to)
        if svc is not None and not svc.current():  # it ended (a stat: ~1 us per request)
            self._forget(to)
            svc = None
        if svc is None:
            path = str(self.rd.socket(service_name(to)))
            inode = _inode(path)
            if inode is None:
                return None
            svc = self._direct[to] = _Direct(self._ctx, path, inode)
        while not svc.sock.poll(0, zmq.POLLOUT):
            if not svc.current():  # it ended (or another took its place): start over
                self._forget(to)
                return self._send_direct(to, data, deadline) if _inode(svc.path) else None
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unreachable(f"{to!r}: its service socket {svc.path} accepts no connection")
            svc.sock.poll(int(min(left, DIRECT_CHECK_S) * 1000) + 1, zmq.POLLOUT)
        svc.sock.send(data)
        return svc

    def _forget(self, to: str) -> None:
        svc = self._direct.pop(to, None)
        if svc is not None:
            svc.close()

    def close(self) -> None:
        for name in list(self._direct):
            self._forget(name)
        self._sock.close(linger=0)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncControlClient:
    """:class:`ControlClient` for an asyncio loop: many requests in flight, each bounded.

    One DEALER (zmq.asyncio) and one reader task that hands each reply to the
    request that waits for it (by id), so any number of coroutines of the loop
    may request at once. Make it, use it and close it in the thread of one
    event loop (``context``: that loop's zmq.asyncio context).
    """

    def __init__(
        self,
        rd: RuntimeDir,
        timeout: float = DEFAULT_TIMEOUT,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        if not rd.socket("control").exists() or not is_locked(rd):
            raise NotRunning(f"no lumiera instance {rd.instance!r} is running at {rd.path}")
        self.rd = rd
        self.timeout = timeout
        import zmq.asyncio

        self._sock = (context or zmq.asyncio.Context.instance()).socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(rd.endpoint("control"))
        self._prefix = f"{os.getpid()}-a"
        # request id -> the future its caller awaits; an entry leaves with its answer,
        # its caller's timeout, or close() (which fails every one left).
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None  # started by the first request
        self._closed = False

    async def request(
        self,
        to: str,
        command: str,
        args: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; return the result, or raise the error the reply carries.

        Raises Unreachable when no reply comes within ``timeout`` seconds
        (default: the client's) or the client is closed meanwhile.
        """
        import asyncio

        if self._closed:
            raise Unreachable("the control client is closed")
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())
        rid = f"{self._prefix}{next(_ids)}"
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = answer
        wait_s = self.timeout if timeout is None else timeout
        try:
            await self._sock.send(m.encode(m.Request(rid, to, command, args or {})))
            async with asyncio.timeout(wait_s):
                return await answer
        except TimeoutError:
            raise Unreachable(
                f"no reply from {to!r} of instance {self.rd.instance!r} at {self.rd.path} "
                f"within {wait_s:g} s"
            ) from None
        finally:
            self._waiting.pop(rid, None)

    async def _read(self) -> None:
        """Hand each reply to its request; a bad or unexpected one is logged and dropped."""
        while True:
            data = await self._sock.recv()
            try:
                reply = m.decode(data)
            except BadMessage as e:
                log.warning("dropped a bad reply on the control socket: %s", e)
                continue
            if not isinstance(reply, m.Reply | m.Error) or reply.id is None:
                log.warning("dropped an unexpected %s on the control socket", reply.KIND)
                continue
            answer = self._waiting.pop(reply.id, None)
            if answer is None or answer.done():
                continue  # a late reply to a request that timed out
            if isinstance(reply, m.Reply):
                answer.set_result(reply.result)
            else:
                answer.set_exception(from_wire(reply.code, reply.message))

    async def close(self) -> None:
        """Stop reading, fail every request still waiting (Unreachable), close the socket."""
        import asyncio

        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(Unreachable("the control client was closed"))
        self._waiting.clear()
        self._sock.close(linger=0)

    async def __aenter__(self) -> AsyncControlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
