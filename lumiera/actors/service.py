"""A subsystem's own ROUTER for direct service calls: ``svc-<name>`` in the runtime dir.

Runs in the subsystem's process, polled by its main loop
(:mod:`lumiera.actors.process`) beside the DEALER to the supervisor. A
service is found by its name, as in Lumiera (no broker, no discovery): a
client connects to ``ipc://<rd>/svc-<name>`` and sends the same ``request``
it would send to ``control``, framed the same way (docs/PROTOCOL.md 4.1,
8.1.1). What arrives is checked as the supervisor checks it (frame count,
size, schema) and a bad message is answered ``bad_message`` here; good
requests go to the process's loop, which answers them with the same command
table and envelopes as routed ones, keeping the client's id.

The socket is bound only once the subsystem runs (after ``ready``) and its
file is removed when the process ends; the supervisor removes the file of a
process that could not (a crash, SIGKILL), so a file found belongs to a
running subsystem or to one that just ended (the client then sees
``unreachable``, bounded).
"""

from __future__ import annotations

import logging
import os

import zmq

from lumiera.bus import messages as m
from lumiera.bus.codec import Limits
from lumiera.bus.sockets import configure_bounded, recv_bounded
from lumiera.errors import BadMessage, UnknownSubsystem
from lumiera.runtime_dir import RuntimeDir, remove_service_socket, service_name

log = logging.getLogger("lumiera.actors")

# Where an answer goes: None for the supervisor (control), else the frames before
# the body on the service socket (the client's identity, and an empty one for REQ).
Head = list[bytes] | None


class ServiceSocket:
    """The ROUTER at ``svc-<name>``: bound, read in batches, answered, removed."""

    def __init__(
        self, zctx: zmq.Context[zmq.Socket[bytes]], rd: RuntimeDir, name: str, limits: Limits
    ) -> None:
        self.name = name
        self.rd = rd
        self.limits = limits
        self.path = rd.socket(service_name(name))
        self.sock: zmq.Socket[bytes] | None = zctx.socket(zmq.ROUTER)
        configure_bounded(self.sock, limits)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a reply to a client gone raises
        self._ino: int | None = None  # the inode we bound: removed only while still ours

    def bind(self) -> bool:
        """Bind under umask 077; False (and logged) if it cannot: direct calls only cost speed."""
        assert self.sock is not None
        old = os.umask(0o077)
        try:
            self.sock.bind(f"ipc://{self.path}")
            self._ino = self.path.lstat().st_ino
        except (zmq.ZMQError, OSError) as e:
            log.warning("%s: no direct calls (cannot bind %s: %s)", self.name, self.path, e)
            self.close()
            return False
        finally:
            os.umask(old)
        return True

    def readable(self) -> bool:
        return self.sock is not None and bool(int(self.sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN)

    def receive(self, most: int) -> list[tuple[m.Request, Head]]:
        """The requests waiting (at most ``most``); a bad message is answered here."""
        batch: list[tuple[m.Request, Head]] = []
        max_parts = self.limits.max_parts + 1
        while self.sock is not None and self.readable() and len(batch) < most:
            frames, total = recv_bounded(self.sock, max_parts)
            rest = frames[1:]
            head = frames[:2] if len(rest) >= 2 and rest[0] == b"" else frames[:1]
            try:  # the same framing and checks as on the supervisor's control socket
                if total > max_parts:
                    raise BadMessage(f"a message has at most {self.limits.max_parts} frames")
                if len(frames) != len(head) + 1:
                    raise BadMessage(
                        "a control message is one msgpack frame (after an empty one for REQ)"
                    )
                msg = m.decode(frames[-1], self.limits)
                if not isinstance(msg, m.Request):
                    raise BadMessage(f"{msg.KIND} is not accepted from a client")
            except BadMessage as e:
                log.warning("%s: bad message on the service socket: %s", self.name, e)
                self.send(head, m.encode(m.Error(None, e.code, str(e))))
                continue
            if msg.to != self.name:
                text = f"this is the service socket of {self.name!r}, not of {msg.to!r}"
                self.send(head, m.encode(m.Error(msg.id, UnknownSubsystem.code, text)))
                continue
            batch.append((msg, head))
        return batch

    def send(self, head: list[bytes], data: bytes) -> None:
        if self.sock is None:
            return
        try:
            self.sock.send_multipart([*head, data])
        except zmq.ZMQError as e:  # the client left (EHOSTUNREACH): nobody to tell
            log.debug("%s: could not answer a direct call: %s", self.name, e)

    def close(self) -> None:
        """Close (linger 0) and remove the socket file if it is still the one we bound."""
        if self.sock is None:
            return
        self.sock.close(linger=0)
        self.sock = None
        if self._ino is not None:
            remove_service_socket(self.rd, self.name, self._ino)
            self._ino = None
