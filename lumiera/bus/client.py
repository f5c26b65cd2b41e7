"""A client of an instance's ``control`` socket: one request, one reply, always bounded.

Used by the command-line tools, the tests and the benchmarks; a client in
another language does the same with a DEALER (or REQ) socket and msgpack
(docs/PROTOCOL.md).
"""

from __future__ import annotations

import itertools
import os
import time
from types import TracebackType
from typing import Any

import zmq

from lumiera.bus import messages as m
from lumiera.errors import BadMessage, NotRunning, Unreachable, from_wire
from lumiera.runtime_dir import RuntimeDir, is_locked

_ids = itertools.count(1)
# Longer than the supervisor's default bus.request_timeout (5 s), so its typed
# ``timeout`` reply for a slow subsystem arrives before the client gives up.
DEFAULT_TIMEOUT = 10.0


class ControlClient:
    """A DEALER connected to the instance's ``control`` socket.

    Not thread-safe; make one per thread. Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(self, rd: RuntimeDir, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not rd.socket("control").exists() or not is_locked(rd):
            raise NotRunning(f"no lumiera instance {rd.instance!r} is running at {rd.path}")
        self.rd = rd
        self.timeout = timeout
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(rd.endpoint("control"))
        self._prefix = f"{os.getpid()}-"

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
        self._sock.send(m.encode(m.Request(rid, to, command, args or {})))
        wait_s = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait_s
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not self._sock.poll(left_ms):
                raise Unreachable(
                    f"no reply from {to!r} of instance {self.rd.instance!r} at {self.rd.path} "
                    f"within {wait_s:g} s"
                )
            reply = m.decode(self._sock.recv())
            if isinstance(reply, m.Reply) and reply.id == rid:
                return reply.result
            if isinstance(reply, m.Error) and reply.id in (rid, None):
                raise from_wire(reply.code, reply.message)
            if not isinstance(reply, m.Reply | m.Error):
                raise BadMessage(f"unexpected {reply.KIND} on the control socket")
            # a late reply to an earlier, timed-out request: skip it

    def close(self) -> None:
        self._sock.close(linger=0)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
