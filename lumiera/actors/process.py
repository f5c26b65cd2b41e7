"""The driver that runs one actor as a subsystem process.

Runs in the subsystem's process (spawned by the supervisor, or in the user's
terminal under ``lumiera run``). It owns the sockets and the loop; the actor
owns the logic. Protocol (docs/PROTOCOL.md): ``hello`` -> ``welcome``; wait
for ``start``; run ``on_start``; ``ready``; then answer ``request``, ``event``
(hooks, then ``ack``) and ``stop``, sending a ``heartbeat`` from the main loop
every ``appstate.heartbeat_interval`` (so a main thread stuck in a handler
stops the heartbeat and the supervisor's watchdog sees it).

The process ends when the supervisor is gone (its pidfd becomes readable),
and a spawned one is also SIGKILLed by the kernel if the supervisor dies
(parent-death signal), so no subsystem outlives its supervisor.

Direct service calls (docs/PROTOCOL.md 8.1.1): once it has sent ``ready``,
the process binds a ROUTER of its own at ``ipc://<rd>/svc-<name>`` and
answers requests there too, found by its name, as in Lumiera (no broker, no
discovery). The same main loop polls both sockets and answers both with the
same command table, validation, limits, batches and envelopes; a direct
request keeps its client's id. It binds only once it runs, so a client that
finds the socket finds a running subsystem (before that it is routed and
held by the supervisor). The file is removed when the process ends (the
supervisor removes a crashed one's); a bind that fails costs only speed.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
import time
import traceback
from typing import Any

import zmq

from lumiera.actors.actor import Actor, ActorContext
from lumiera.actors.service import Head, ServiceSocket
from lumiera.bus import messages as m
from lumiera.bus.codec import Limits, check_plain
from lumiera.bus.events import EventBody, Publisher
from lumiera.config import Config
from lumiera.errors import BadMessage, InternalError, LumieraError, ShuttingDown, Unreachable
from lumiera.exits import EXIT_CRASH, EXIT_ERROR, EXIT_NO_SUPERVISOR
from lumiera.lifecycle import Hooks, Lifecycle
from lumiera.parentdeath import PR_SET_PDEATHSIG, prctl
from lumiera.runtime_dir import ENV_SUPERVISOR_PID, RuntimeDir, read_pid

log = logging.getLogger("lumiera.actors")

# How long a new process waits for the supervisor's welcome (no config yet).
WELCOME_TIMEOUT_S = 10.0
# Most requests answered as one batch (one group commit in the session).
MAX_BATCH = 256


class _End(Exception):
    """Leave the main loop with ``code``."""

    def __init__(self, code: int) -> None:
        self.code = code


def die_with_parent(expected_parent: int) -> None:
    """Have the kernel SIGKILL us when the supervisor dies (Linux), and check it still lives."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != expected_parent:  # it died before prctl took effect
        os._exit(EXIT_NO_SUPERVISOR)


def actor_class(module: str) -> type[Actor]:
    cls = importlib.import_module(module).ACTOR
    assert isinstance(cls, type) and issubclass(cls, Actor), module
    return cls


class SubsystemProcess:
    """The main loop of one subsystem process."""

    def __init__(self, name: str, module: str, rd: RuntimeDir, attached: bool) -> None:
        self.name = name
        self.module = module
        self.rd = rd
        self.attached = attached
        self.hooks = Hooks()
        self.zctx = zmq.Context()
        self.control = self.zctx.socket(zmq.DEALER)
        self.control.setsockopt(zmq.LINGER, 1000)  # let the last reply/ending leave, bounded
        self.pub: Publisher | None = None  # made before the handshake (slow joiner)
        self.svc: ServiceSocket | None = None  # svc-<name>, for direct calls, once running
        self._poller: zmq.Poller | None = None
        self.limits = Limits()
        self.actor: Actor | None = None
        self.beat_every = 0.2
        self.stopping = False
        self._end_requested = False
        self._end_error: str | None = None

    # -- entry ----------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; returns the process's exit code."""
        pidfd: int | None = None
        try:
            supervisor = self._supervisor_pid()
            try:
                pidfd = os.pidfd_open(supervisor) if supervisor else None
            except ProcessLookupError:
                log.error("%s: the supervisor (pid %s) is gone", self.name, supervisor)
                return EXIT_NO_SUPERVISOR
            self.hooks.fire(Lifecycle.ON_BASIC_INIT)
            # Connected first, so a crash from here on can say so (a DEALER with
            # no connection would block the report). The actor's module is
            # imported before the hello: an import that takes long (Dask's, on a
            # loaded machine) is then start time, bounded by appstate.start_timeout,
            # and not a silence after the hello that the watchdog would call hung.
            self.control.connect(self.rd.endpoint("control"))
            cls = actor_class(self.module)
            self.pub = Publisher(self.rd, self.name, self.zctx)
            welcome = self._handshake()
            config = Config.from_dict(welcome.config)
            logging.getLogger().setLevel(config.get_str("log.level"))
            self.limits = Limits(
                config.get_int("bus.max_message_bytes"), config.get_int("bus.max_parts")
            )
            self.beat_every = config.get_float("appstate.heartbeat_interval")
            ctx = ActorContext(
                self.name,
                welcome.instance,
                config,
                welcome.options,
                self.hooks,
                publish=self.publish,
                end=self.end,
                attached=self.attached,
                runtime_dir=str(self.rd.path),
                temp_dir=str(self.rd.temp_dir),
            )
            self.actor = cls(ctx)
            self.hooks.fire(Lifecycle.ON_GLOBAL_INIT)
            return self._loop(pidfd)
        except _End as e:
            return e.code
        except Exception as e:  # noqa: BLE001 - the crash boundary: report, exit non-zero
            return self._crash(e)
        finally:
            if pidfd is not None:
                os.close(pidfd)
            self._close_service()
            self.control.close()
            if self.pub is not None:
                self.pub.close()
            self.zctx.term()

    def _supervisor_pid(self) -> int | None:
        if self.attached:
            return read_pid(self.rd)
        pid = int(os.environ.get(ENV_SUPERVISOR_PID, "0")) or os.getppid()
        die_with_parent(pid)
        return pid

    def _handshake(self) -> m.Welcome:
        self.send(m.Hello(self.name, os.getpid(), self.attached))
        if not self.control.poll(int(WELCOME_TIMEOUT_S * 1000)):
            raise Unreachable(
                f"no welcome from the supervisor at {self.rd.path} within {WELCOME_TIMEOUT_S:g} s"
            )
        reply = m.decode(self.control.recv(), self.limits)
        if isinstance(reply, m.Error):
            log.error("the supervisor refused %s: %s", self.name, reply.message)
            raise _End(EXIT_ERROR)
        if not isinstance(reply, m.Welcome):
            raise BadMessage(f"expected welcome, got {reply.KIND}")
        return reply

    # -- the service socket (direct calls) ---------------------------------------------

    def _bind_service(self) -> None:
        svc = ServiceSocket(self.zctx, self.rd, self.name, self.limits)
        if svc.bind():
            self.svc = svc
            if self._poller is not None:
                self._poller.register(svc.sock, zmq.POLLIN)

    def _close_service(self) -> None:
        if self.svc is not None:
            self.svc.close()
            self.svc = None

    # -- the loop -------------------------------------------------------------------

    def _loop(self, pidfd: int | None) -> int:
        self._poller = poller = zmq.Poller()
        poller.register(self.control, zmq.POLLIN)
        if pidfd is not None:
            poller.register(pidfd, zmq.POLLIN)
        next_beat = next_tick = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_beat:
                self.send(m.Heartbeat())
                next_beat = now + self.beat_every
            due = next_beat
            interval = self.actor.tick_interval if self.actor is not None else None
            if interval and self.actor is not None and self.actor.started_at is not None:
                if now >= next_tick:
                    self.actor.on_tick()
                    next_tick = now + interval
                due = min(due, next_tick)
            events = dict(poller.poll(max(0, int((due - time.monotonic()) * 1000) + 1)))
            if pidfd is not None and pidfd in events:
                log.warning("%s: the supervisor is gone; exiting", self.name)
                return EXIT_NO_SUPERVISOR
            if self.control in events:
                self._receive()
            if self.svc is not None and self.svc.sock in events:
                self._requests(self.svc.receive(MAX_BATCH))
            if self._end_requested:
                return self._finish_end()

    def _receive(self) -> None:
        # Requests that are already waiting are handled as one batch (the actor may
        # commit them together); any other message first ends the batch, so the
        # order of everything stays the order of arrival.
        batch: list[tuple[m.Request, Head]] = []
        while int(self.control.getsockopt(zmq.EVENTS)) & zmq.POLLIN and len(batch) < MAX_BATCH:
            frames = self.control.recv_multipart()
            try:
                if len(frames) != 1:
                    raise BadMessage(f"expected 1 frame, got {len(frames)}")
                msg = m.decode(frames[0], self.limits)
            except BadMessage as e:
                log.warning("%s: dropped a bad message from the supervisor: %s", self.name, e)
                continue
            if isinstance(msg, m.Request):
                batch.append((msg, None))
                continue
            self._requests(batch)
            batch = []
            self._dispatch(msg)
        self._requests(batch)

    def _dispatch(self, msg: m.Message) -> None:
        assert self.actor is not None
        if isinstance(msg, m.Start):
            self.actor.on_start()
            self.actor.started_at = time.monotonic()
            self.send(m.Ready())
            self._bind_service()
        elif isinstance(msg, m.Event):
            if msg.event in Lifecycle.__members__:
                self.hooks.fire(Lifecycle(msg.event))
            else:  # a newer supervisor's event: no hooks here, but never block its barrier
                log.warning("%s: unknown lifecycle event %r acknowledged", self.name, msg.event)
            self.send(m.Ack(msg.event))
        elif isinstance(msg, m.Stop):
            log.info("%s: stopping (%s)", self.name, msg.reason or "asked")
            self.stopping = True
            self._refuse_waiting()  # queued requests get an answer, not silence
            self.actor.on_stop()
            self.hooks.fire(
                Lifecycle.ON_EMERGENCY_EXIT if msg.emergency else Lifecycle.ON_GLOBAL_SHUTDOWN
            )
            raise _End(0)
        else:
            log.warning("%s: ignored unexpected %s message", self.name, msg.KIND)

    def _refuse_waiting(self) -> None:
        """Answer every request already waiting (both sockets) with ``shutting_down``."""
        while self.control.poll(0):
            frames = self.control.recv_multipart()
            try:
                msg = m.decode(frames[-1], self.limits)
            except BadMessage:
                continue
            if isinstance(msg, m.Request):
                self.send(m.Error(msg.id, ShuttingDown.code, f"{self.name} is stopping"))
        self._refuse_direct()

    def _refuse_direct(self) -> None:
        """Answer the direct calls already waiting with ``shutting_down``."""
        self.stopping = True
        while self.svc is not None and self.svc.readable():
            self._requests(self.svc.receive(MAX_BATCH))  # shutting_down, as stopping is set

    def _requests(self, batch: list[tuple[m.Request, Head]]) -> None:
        """Answer a batch of requests, each with its result or its typed error."""
        if not batch:
            return
        assert self.actor is not None
        if self.stopping:
            for req, head in batch:
                self._answer(head, m.Error(req.id, ShuttingDown.code, f"{self.name} is stopping"))
            return
        try:
            outcomes = self.actor.handle_batch([(r.command, r.args) for r, _ in batch])
        except Exception as e:
            # Answer first, so no caller waits; then it is a crash like any other.
            for req, head in batch:
                text = f"{type(e).__name__}: {e}"
                self._answer(head, m.Error(req.id, InternalError.code, text))
            raise
        for (req, head), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, LumieraError):
                self._answer(head, m.Error(req.id, outcome.code, str(outcome)))
            else:
                self._reply(req, head, outcome)

    def _reply(self, req: m.Request, head: Head, result: Any) -> None:
        try:
            check_plain(result)  # what the supervisor would refuse: say so to the caller
            data = m.encode(m.Reply(req.id, result))
            if len(data) > self.limits.max_message_bytes:  # libzmq would drop us as a peer
                raise BadMessage(f"{len(data)} bytes, over bus.max_message_bytes")
        except (BadMessage, TypeError, ValueError) as e:
            text = f"{req.command}: reply not sendable: {e}"
            self._answer(head, m.Error(req.id, InternalError.code, text))
            return
        self._send_data(head, data)

    def _answer(self, head: Head, msg: m.Message) -> None:
        self._send_data(head, m.encode(msg))

    def _send_data(self, head: Head, data: bytes) -> None:
        if head is None:
            self.control.send(data)
        elif self.svc is not None:
            self.svc.send(head, data)

    # -- ends -----------------------------------------------------------------------

    def end(self, error: str | None = None) -> None:
        """Ask for a regular end of this subsystem (the application then ends in order)."""
        self._end_requested, self._end_error = True, error

    def _finish_end(self) -> int:
        self._refuse_direct()  # direct callers get an answer (routed ones: the supervisor's)
        self.send(m.Ending(self._end_error))
        assert self.actor is not None
        self.actor.on_stop()
        self.hooks.fire(Lifecycle.ON_GLOBAL_SHUTDOWN)
        return 0

    def _crash(self, exc: BaseException) -> int:
        tb = "".join(traceback.format_exception(exc))
        log.error("%s crashed: %s", self.name, tb.rstrip())
        if self.actor is not None:
            try:
                self.actor.on_failure(exc)
            except Exception:
                log.exception("%s: on_failure raised", self.name)
        with contextlib.suppress(zmq.ZMQError):
            self.send(m.Problem(f"{type(exc).__name__}: {exc}"[:4096], tb[-60000:]))
        return EXIT_CRASH

    # -- sending --------------------------------------------------------------------

    def send(self, msg: m.Message) -> None:
        self.control.send(m.encode(msg))

    def publish(self, topic: str, body: EventBody) -> None:
        """Publish an event of this subsystem; any thread (see :class:`Publisher`).

        Raises TypeError or BadMessage for a body that is not ``topic``'s kind.
        """
        if self.pub is not None:  # None only before run() made it: nobody could listen
            self.pub.publish(topic, body)


def main(name: str, module: str, rd: RuntimeDir, attached: bool = False) -> int:
    """Run subsystem ``name``; returns its exit code."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s"
        if not attached
        else "%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not attached:
        # Our own process group already keeps the terminal's Ctrl-C away; this
        # keeps a stray SIGINT from bypassing the supervisor's ordered shutdown.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return SubsystemProcess(name, module, rd, attached).run()
    except KeyboardInterrupt:
        return 0
