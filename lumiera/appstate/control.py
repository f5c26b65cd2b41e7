"""The supervisor's control plane: the ``control`` ROUTER and everything that arrives on it.

Subsystem processes say ``hello`` here and then send their ``ready``, acks,
heartbeats, replies and end reports; tools send requests, which are answered
by the supervisor itself (``to: "appstate"``, :mod:`.commands`) or routed to a
subsystem (:mod:`.routing` keeps the books). Every decision about subsystems
is the runner's; the actions it returns go to the supervisor's ``execute``.

Runs in the supervisor process, in its poll loop (:mod:`.supervisor` polls
:attr:`ControlPlane.sock` and calls :meth:`ControlPlane.on_readable`). A bad
message is answered with ``bad_message`` and changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

import zmq

from lumiera.appstate.actions import Action
from lumiera.appstate.children import Children
from lumiera.appstate.commands import APPSTATE, AppStateCommands
from lumiera.appstate.model import State
from lumiera.appstate.routing import Peer, Routing
from lumiera.appstate.runner import Runner
from lumiera.bus import messages as m
from lumiera.bus.codec import Limits
from lumiera.bus.sockets import configure_bounded, recv_bounded
from lumiera.errors import BadMessage, LumieraError, Unavailable, UnknownSubsystem

log = logging.getLogger("lumiera.appstate")
LINGER_MS = 200  # how long the last answers may take to leave at the end


class ControlPlane:
    """The ``control`` socket of one supervisor, and who is who on it."""

    def __init__(
        self,
        *,
        runner: Runner,
        children: Children,
        commands: AppStateCommands,
        welcome: m.Welcome,
        limits: Limits,
        request_timeout: float,
        execute: Callable[[list[Action]], None],
    ) -> None:
        self.runner = runner
        self.children = children
        self.commands = commands
        self.welcome = welcome
        self.limits = limits
        self.request_timeout = request_timeout
        self.execute = execute
        self.routing = Routing()
        self.peers: dict[bytes, str] = {}  # ROUTER identity -> subsystem name
        self.identity: dict[str, bytes] = {}  # and back
        self.sock: zmq.Socket[bytes] | None = None

    def bind(self, zctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
        """Create and bind the ROUTER (under the caller's umask); returns it, for polling."""
        self.sock = sock = zctx.socket(zmq.ROUTER)
        configure_bounded(sock, self.limits)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # an unroutable reply raises, not vanishes
        sock.bind(endpoint)
        return sock

    def close(self) -> None:
        """Answer every request still open (``shutting_down``), then close, bounded."""
        for peer, msg in self.routing.abandon():
            self._answer(peer, msg)
        if self.sock is not None:  # let those answers leave, bounded
            with contextlib.suppress(zmq.ZMQError):
                self.sock.close(linger=LINGER_MS)

    # -- what the supervisor's loop calls ---------------------------------------------

    def next_deadline(self) -> float | None:
        return self.routing.next_deadline()

    def expire(self, now: float) -> None:
        """Answer ``timeout`` to every request past its deadline."""
        for peer, msg in self.routing.expire(now):
            self._answer(peer, msg)

    def gone(self, name: str) -> None:
        """``name``'s process ended: forget its identity, answer what was in flight to it."""
        identity = self.identity.pop(name, None)
        if identity is not None:
            self.peers.pop(identity, None)
        for peer, msg in self.routing.gone(name):
            self._answer(peer, msg)

    def send_to(self, name: str, msg: m.Message) -> None:
        """Send ``msg`` to subsystem ``name`` if it is connected (else nobody can take it)."""
        identity = self.identity.get(name)
        if identity is not None:
            self._answer(Peer(identity), msg)

    def release_parked(self, name: str, state: str) -> None:
        """Requests held for ``name`` go on when it runs; refused when it will not."""
        if state == "running":
            for held in self.routing.unpark(name):
                self._on_request(held.peer, held.request)
        elif state in ("failed", "stopped", "stopping"):
            for peer, msg in self.routing.refuse_parked(name, f"is {state}"):
                self._answer(peer, msg)

    def on_readable(self) -> None:
        """Take one message from the socket and act on it."""
        assert self.sock is not None  # polled only once bound
        frames, total = recv_bounded(self.sock, self.limits.max_parts + 1)
        identity, rest = frames[0], frames[1:]
        peer = Peer(identity, delimited=len(rest) >= 2 and rest[0] == b"")
        try:
            if total > self.limits.max_parts + 1:
                raise BadMessage(f"a message has at most {self.limits.max_parts} frames")
            if len(rest) != (2 if peer.delimited else 1):
                raise BadMessage(
                    "a control message is one msgpack frame (after an empty one for REQ)"
                )
            msg = m.decode(rest[-1], self.limits)
        except BadMessage as e:
            log.warning("bad message on control: %s", e)
            self._answer(peer, m.Error(None, e.code, str(e)))
            return
        name = self.peers.get(identity)
        if isinstance(msg, m.Request):
            self._on_request(peer, msg)
        elif isinstance(msg, m.Hello) and name is None:
            self._on_hello(peer, msg)
        elif name is not None:
            self._from_subsystem(name, msg)
        else:
            self._answer(
                peer, m.Error(None, BadMessage.code, f"{msg.KIND} is not accepted from a client")
            )

    # -- subsystems -------------------------------------------------------------------

    def _on_hello(self, peer: Peer, hello: m.Hello) -> None:
        refusal = self.runner.hello_refusal(hello.name, hello.attached)
        proc = self.children.get(hello.name)
        if refusal is None and not hello.attached and (proc is None or proc.pid != hello.pid):
            refusal = f"{hello.name}: pid {hello.pid} is not the process this supervisor started"
        if refusal is None and hello.attached:
            try:
                self.children.attach(hello.name, hello.pid)
            except OSError as e:
                refusal = f"cannot watch pid {hello.pid}: {e.strerror}"
        if refusal is not None:
            log.warning("refused hello from %s (pid %d): %s", hello.name, hello.pid, refusal)
            self._answer(peer, m.Error(None, Unavailable.code, refusal))
            return
        self.peers[peer.identity] = hello.name
        self.identity[hello.name] = peer.identity
        self._answer(peer, self.welcome)
        self.execute(self.runner.hello(hello.name, hello.pid, time.monotonic()))

    def _from_subsystem(self, name: str, msg: m.Message) -> None:
        now = time.monotonic()
        self.runner.heartbeat(name, now)  # any message shows its main loop is alive
        if isinstance(msg, m.Ready):
            self.execute(self.runner.ready(name, self.children.alive(name), now))
        elif isinstance(msg, m.Ack):
            self.execute(self.runner.ack(name, msg.event, now))
        elif isinstance(msg, m.Reply | m.Error):
            answer = self.routing.answer(name, msg)
            if answer is not None:
                self._answer(*answer)
        elif isinstance(msg, m.Problem):
            log.error("%s reports a problem: %s", name, msg.reason)
            self.runner.problem(name, msg.reason)
        elif isinstance(msg, m.Ending):
            log.info("%s ends%s", name, f" with an error: {msg.error}" if msg.error else "")
            self.runner.ending(name, msg.error, time.monotonic())
        elif not isinstance(msg, m.Heartbeat):
            log.warning("%s sent an unexpected %s", name, msg.KIND)

    # -- requests from tools ----------------------------------------------------------

    def _on_request(self, peer: Peer, req: m.Request) -> None:
        if req.to == APPSTATE:
            self._appstate_request(peer, req)
            return
        sub = self.runner.subs.get(req.to)
        error: LumieraError
        if sub is None:
            known = ", ".join([APPSTATE, *self.runner.order])
            error = UnknownSubsystem(f"no subsystem {req.to!r} in this instance (has: {known})")
        elif sub.state in (State.SPAWNED, State.IDLE, State.STARTING) and not sub.debug:
            # Still starting: hold it, in order, until it runs (bounded by the request timeout).
            self.routing.park(peer, req, time.monotonic() + self.request_timeout)
            return
        elif sub.state is not State.RUNNING or req.to not in self.identity:
            error = Unavailable(f"{req.to} is {sub.state.public}")
        else:
            fwd = self.routing.forward(peer, req, time.monotonic() + self.request_timeout)
            self.send_to(req.to, fwd)
            return
        self._answer(peer, m.Error(req.id, error.code, str(error)))

    def _appstate_request(self, peer: Peer, req: m.Request) -> None:
        try:
            result = self.commands.handle(req.command, req.args)
        except LumieraError as e:
            self._answer(peer, m.Error(req.id, e.code, str(e)))
            return
        self._answer(peer, m.Reply(req.id, result))
        if self.commands.stop_requested and not self.runner.phase.ending:
            log.info("stop requested over the bus")
            self.execute(self.runner.shutdown("stop requested", time.monotonic()))

    def _answer(self, peer: Peer, msg: m.Message) -> None:
        if self.sock is None:
            return
        try:
            self.sock.send_multipart(peer.frames(m.encode(msg)))
        except zmq.ZMQError as e:  # the peer left (EHOSTUNREACH): nobody to tell
            log.debug("could not answer %r: %s", peer.identity, e)
