"""AppState, the root supervisor process of ``lumiera up``: the driver of the runner.

Owns the runtime directory's lock, the bus sockets (``control`` ROUTER,
``publish`` XSUB -> ``events`` XPUB), the subsystem processes and their output,
and one poll loop over all of them (sockets, pidfds, pipes, a signal pipe).
Every decision is the :class:`~lumiera.appstate.runner.Runner`'s; this module
carries out its actions and feeds it what happens.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from typing import Any, TextIO

import zmq

from lumiera import shm
from lumiera.appstate import children
from lumiera.appstate.actions import (
    Action,
    ExitStatus,
    Finish,
    Kill,
    Publish,
    SendEvent,
    SendStart,
    SendStop,
    Spawn,
)
from lumiera.appstate.children import Proc
from lumiera.appstate.commands import APPSTATE, AppStateCommands
from lumiera.appstate.control import Peer, Routing
from lumiera.appstate.output import Output, log_dir_for
from lumiera.appstate.rings import Rings
from lumiera.appstate.runner import MAX_REASON, Phase, Runner, State, Timeouts
from lumiera.bus import messages as m
from lumiera.bus.codec import Limits
from lumiera.bus.events import (
    EmergencyExit,
    EventBody,
    LifecycleEvent,
    PhaseChanged,
    ProblemReported,
    SubsystemState,
    check_forwardable,
    encode_event,
)
from lumiera.bus.sockets import configure_bounded, recv_bounded
from lumiera.config import Config
from lumiera.errors import (
    BadMessage,
    LumieraError,
    RuntimeDirError,
    Unavailable,
    UnknownSubsystem,
)
from lumiera.exits import EXIT_EMERGENCY_FAILED
from lumiera.lifecycle import Lifecycle
from lumiera.runtime_dir import (
    InstanceLock,
    RuntimeDir,
    prepare,
    remove_dir_if_empty,
    remove_instance_files,
    write_pid,
)
from lumiera.shm.spec import parse_specs
from lumiera.subsystems import Options, start_order

log = logging.getLogger("lumiera.appstate")
_ENDING = (Phase.CLOSING, Phase.STOPPING, Phase.EMERGENCY, Phase.DONE)
LAST_EVENTS_LINGER_MS = 200


class Supervisor:
    """One run of ``lumiera up``. Create, then :meth:`run` once."""

    def __init__(self, rd: RuntimeDir, config: Config, options: Options, out: TextIO) -> None:
        self.rd = rd
        self.config = config
        self.options = options
        self.output = Output(out, log_dir_for(config, rd.instance), self._publish)
        self.limits = Limits(
            config.get_int("bus.max_message_bytes"), config.get_int("bus.max_parts")
        )
        self.request_timeout = config.get_float("bus.request_timeout")
        self.runner = Runner(
            start_order(options),
            Timeouts(
                start=config.get_float("appstate.start_timeout"),
                barrier=config.get_float("appstate.barrier_timeout"),
                grace=config.get_float("appstate.grace_period"),
                emergency=config.get_float("appstate.emergency_timeout"),
                watchdog=config.get_float("appstate.watchdog_timeout"),
            ),
            debug=options.debug,
        )
        self.routing = Routing()
        self.rings = Rings(rd.instance, self._publish)
        self.stats_every = config.get_float("rings.stats_interval")
        self._next_stats = time.monotonic() + self.stats_every
        self.commands = AppStateCommands(self)
        self.procs: dict[str, Proc] = {}
        self.peers: dict[bytes, str] = {}  # ROUTER identity -> subsystem name
        self.identity: dict[str, bytes] = {}
        self.started = time.monotonic()
        self.exit_code: int | None = None
        self.control: zmq.Socket[bytes] | None = None
        self.xsub: zmq.Socket[bytes] | None = None
        self.xpub: zmq.Socket[bytes] | None = None
        self.poller = zmq.Poller()
        self._signals: list[int] = []

    # -- the whole life -------------------------------------------------------------

    def run(self) -> int:
        """Lock, clean up after a dead instance, bind, supervise, clean up. Returns the exit code.

        Raises InstanceRunning (before touching anything) when the instance is
        already up, RuntimeDirError for an unsafe runtime directory.
        """
        prepare(self.rd)
        lock = InstanceLock(self.rd)
        lock.acquire()
        zctx = zmq.Context()
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        old_handlers = self._install_signals(wake_w)
        try:
            self._setup(zctx, wake_r)  # a failure here is a clear error (exit 1), nothing ran yet
            try:
                self._execute(self.runner.begin(time.monotonic()))
                self._loop()
            except Exception as e:  # the supervisor itself failed: a failed emergency, exit 3
                log.exception("the supervisor failed; killing every subsystem")
                reason = f"supervisor failed: {type(e).__name__}: {e}"[:MAX_REASON]
                self._publish(
                    "lifecycle.ON_EMERGENCY_EXIT",
                    EmergencyExit(
                        event=Lifecycle.ON_EMERGENCY_EXIT.value,
                        subsystem=APPSTATE,
                        exit_code=None,
                        signal=None,
                        reason=reason,
                    ),
                )
                self.exit_code = EXIT_EMERGENCY_FAILED
        finally:
            self._teardown(zctx, old_handlers, wake_r, wake_w)
            lock.release()
            remove_dir_if_empty(self.rd)
        assert self.exit_code is not None
        return self.exit_code

    def _setup(self, zctx: zmq.Context[zmq.Socket[bytes]], wake_r: int) -> None:
        try:
            self._sweep_stale()
            self.rd.temp_dir.mkdir(mode=0o700)
            self._bind(zctx)
            write_pid(self.rd)
        except (OSError, zmq.ZMQError) as e:
            raise RuntimeDirError(f"cannot set up the bus in {self.rd.path}: {e}") from e
        cfg = self.config
        for spec in parse_specs(
            cfg.get_str("rings.declared"), cfg.get_int("rings.slots"), cfg.get_int("rings.slot_mb")
        ):
            self.rings.create(spec)
        self.output.open()
        self.poller.register(wake_r, zmq.POLLIN)
        self._wake_r = wake_r
        log.info(
            "instance %r up in %s (pid %d): %s",
            self.rd.instance,
            self.rd.path,
            os.getpid(),
            ", ".join(self.runner.order),
        )
        self._publish(
            "lifecycle.ON_BASIC_INIT", LifecycleEvent(event=Lifecycle.ON_BASIC_INIT.value)
        )

    def _sweep_stale(self) -> None:
        files = remove_instance_files(self.rd)
        segments = shm.sweep(self.rd.instance)
        if files or segments:
            log.warning("removed what a dead instance left behind: %s", ", ".join(files + segments))

    def _bind(self, zctx: zmq.Context[zmq.Socket[bytes]]) -> None:
        self.control = control = zctx.socket(zmq.ROUTER)
        self.xsub = xsub = zctx.socket(zmq.XSUB)
        self.xpub = xpub = zctx.socket(zmq.XPUB)
        for sock in (control, xsub, xpub):
            configure_bounded(sock, self.limits)
        control.setsockopt(zmq.ROUTER_MANDATORY, 1)  # an unroutable reply raises, not vanishes
        old = os.umask(0o077)  # socket files follow the umask: keep them ours only
        try:
            control.bind(self.rd.endpoint("control"))
            xsub.bind(self.rd.endpoint("publish"))
            xpub.bind(self.rd.endpoint("events"))
        finally:
            os.umask(old)
        xsub.send(b"\x01")  # subscribe to everything publishers send; XPUB filters per tool
        for sock in (control, xsub, xpub):
            self.poller.register(sock, zmq.POLLIN)

    def _install_signals(self, wake_w: int) -> dict[int, Any]:
        old: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal closed
            old[sig] = signal.signal(sig, lambda s, _f: self._signals.append(s))
        old[-1] = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        return old

    def _teardown(
        self, zctx: zmq.Context[zmq.Socket[bytes]], old: dict[int, Any], r: int, w: int
    ) -> None:
        for proc in list(self.procs.values()):  # nothing may outlive us
            if proc.popen is not None:
                proc.kill()
                try:
                    proc.popen.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    log.error("%s (pid %d) did not die of SIGKILL within 2 s", proc.name, proc.pid)
            proc.close()
        self.procs.clear()
        signal.set_wakeup_fd(old.pop(-1))
        for sig, handler in old.items():
            signal.signal(sig, handler)
        os.close(r)
        os.close(w)
        self.output.close()
        for peer, msg in self.routing.abandon():
            self._answer(peer, msg)
        if self.control is not None:  # let those answers leave, bounded
            with contextlib.suppress(zmq.ZMQError):
                self.control.close(linger=LAST_EVENTS_LINGER_MS)
        # Give the last events (ON_GLOBAL_SHUTDOWN, the final phase) a bounded
        # chance to reach the tools; nothing waits longer than this.
        if self.xpub is not None:
            with contextlib.suppress(zmq.ZMQError):
                self.xpub.close(linger=LAST_EVENTS_LINGER_MS)
        zctx.destroy(linger=0)
        self.rings.close()
        remove_instance_files(self.rd)
        shm.sweep(self.rd.instance)

    # -- the loop -------------------------------------------------------------------

    def _loop(self) -> None:
        while self.exit_code is None:
            now = time.monotonic()
            stats = self._next_stats if self.rings.segments else None
            due = min(
                (
                    d
                    for d in (self.runner.next_deadline(), self.routing.next_deadline(), stats)
                    if d
                ),
                default=None,
            )
            timeout_ms = None if due is None else max(0, int((due - now) * 1000) + 1)
            for item, _ in self.poller.poll(timeout_ms):
                self._dispatch(item)
            now = time.monotonic()
            if due is None or now < due:  # deadlines set meanwhile are all later
                continue
            self._execute(self.runner.tick(now))
            for peer, msg in self.routing.expire(now):
                self._answer(peer, msg)
            if stats is not None and now >= stats:
                self.rings.tick()
                self._next_stats = now + self.stats_every

    def _dispatch(self, item: Any) -> None:
        if item is self.control:
            self._on_control()
        elif item is self.xsub:
            self._on_publish()
        elif item is self.xpub and self.xpub is not None:
            recv_bounded(self.xpub, 1)  # a tool's (un)subscription: nothing to do
        elif item == self._wake_r:
            self._on_signal()
        else:
            self._on_fd(item)

    def _on_signal(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 512)
        while self._signals:
            sig = signal.Signals(self._signals.pop(0))
            if self.runner.phase in _ENDING:
                log.warning("%s: already shutting down", sig.name)
                continue
            log.info("%s: shutting down in order", sig.name)
            self._execute(self.runner.shutdown(f"{sig.name} received", time.monotonic()))

    def _on_fd(self, fd: int) -> None:
        for proc in list(self.procs.values()):
            if fd == proc.pidfd:
                self._on_exit(proc)
                return
            stream = proc.pipes.get(fd)
            if stream is not None:
                lines = proc.read(fd)
                if lines is None:
                    self.poller.unregister(fd)
                for line in lines or ():
                    self.output.line(proc.name, stream, line)
                return

    def _on_exit(self, proc: Proc) -> None:
        status = proc.reap()
        for fd in list(proc.pipes):  # what it printed last is shown before its end
            while (lines := proc.read(fd)) is not None:
                for line in lines:
                    self.output.line(proc.name, proc.pipes.get(fd, "stderr"), line)
                if not lines:
                    break
            with contextlib.suppress(KeyError):
                self.poller.unregister(fd)
        self.poller.unregister(proc.pidfd)
        proc.close()
        del self.procs[proc.name]
        identity = self.identity.pop(proc.name, None)
        if identity is not None:
            self.peers.pop(identity, None)
        for peer, msg in self.routing.gone(proc.name):
            self._answer(peer, msg)
        if proc.popen is None:
            log.info("%s (pid %d, attached by lumiera run) detached", proc.name, proc.pid)
        else:
            level = logging.INFO if status.ok else logging.ERROR
            log.log(level, "%s ended: %s", proc.name, status.describe())
        self._execute(self.runner.exited(proc.name, status, time.monotonic()))

    # -- the events plane -----------------------------------------------------------

    def _publish(self, topic: str, body: EventBody, sender: str = APPSTATE) -> None:
        """Publish on ``events``; ``sender`` is ours but for a subsystem's output lines."""
        if self.xpub is None:  # not bound (yet): nobody can be listening
            return
        try:
            frames = encode_event(topic, body, sender)
        except (BadMessage, TypeError):  # a bug, but publishing must not end the supervisor
            log.exception("could not publish %s", topic)
            return
        with contextlib.suppress(zmq.ZMQError):
            self.xpub.send_multipart(frames)

    def _on_publish(self) -> None:
        """Forward an event from a publisher to the tools if it is a declared, valid one.

        Anything else is dropped with one warning saying why (see
        :func:`~lumiera.bus.events.check_forwardable`); the publisher is not told.
        """
        assert self.xsub is not None and self.xpub is not None  # polled only once bound
        frames, total = recv_bounded(self.xsub, 2)
        try:
            check_forwardable(frames, total, self.limits)
        except BadMessage as e:
            log.warning("dropped a bad event from a publisher: %s", e)
            return
        with contextlib.suppress(zmq.ZMQError):
            self.xpub.send_multipart(frames)

    # -- the control plane ----------------------------------------------------------

    def _on_control(self) -> None:
        assert self.control is not None  # polled only once bound
        frames, total = recv_bounded(self.control, self.limits.max_parts + 1)
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

    def _from_subsystem(self, name: str, msg: m.Message) -> None:
        now = time.monotonic()
        self.runner.heartbeat(name, now)  # any message shows its main loop is alive
        if isinstance(msg, m.Ready):
            proc = self.procs.get(name)
            alive = proc is not None and not self._exited(proc)
            self._execute(self.runner.ready(name, alive, now))
        elif isinstance(msg, m.Ack):
            self._execute(self.runner.ack(name, msg.event, now))
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

    @staticmethod
    def _exited(proc: Proc) -> bool:
        return proc.popen.poll() is not None if proc.popen is not None else False

    def _on_hello(self, peer: Peer, hello: m.Hello) -> None:
        refusal = self.runner.hello_refusal(hello.name, hello.attached)
        proc = self.procs.get(hello.name)
        if refusal is None and not hello.attached and (proc is None or proc.pid != hello.pid):
            refusal = f"{hello.name}: pid {hello.pid} is not the process this supervisor started"
        if refusal is None and hello.attached:
            try:
                proc = self.procs[hello.name] = children.attach(hello.name, hello.pid)
                self.poller.register(proc.pidfd, zmq.POLLIN)
            except OSError as e:
                refusal = f"cannot watch pid {hello.pid}: {e.strerror}"
        if refusal is not None:
            log.warning("refused hello from %s (pid %d): %s", hello.name, hello.pid, refusal)
            self._answer(peer, m.Error(None, Unavailable.code, refusal))
            return
        self.peers[peer.identity] = hello.name
        self.identity[hello.name] = peer.identity
        welcome = m.Welcome(self.rd.instance, self.config.to_dict(), self.options.to_dict())
        self._answer(peer, welcome)
        self._execute(self.runner.hello(hello.name, hello.pid, time.monotonic()))

    def _on_request(self, peer: Peer, req: m.Request) -> None:
        if req.to == APPSTATE:
            self._appstate_request(peer, req)
            return
        sub = self.runner.subs.get(req.to)
        if sub is None:
            known = ", ".join([APPSTATE, *self.runner.order])
            error: Exception = UnknownSubsystem(
                f"no subsystem {req.to!r} in this instance (has: {known})"
            )
        elif sub.state in (State.SPAWNED, State.IDLE, State.STARTING) and not sub.debug:
            # Still starting: hold it, in order, until it runs (bounded by the request timeout).
            self.routing.park(peer, req, time.monotonic() + self.request_timeout)
            return
        elif sub.state is not State.RUNNING or req.to not in self.identity:
            error = Unavailable(f"{req.to} is {sub.state.public}")
        else:
            fwd = self.routing.forward(peer, req, time.monotonic() + self.request_timeout)
            self._send_to(req.to, fwd)
            return
        self._answer(peer, m.Error(req.id, error.code, str(error)))  # type: ignore[attr-defined]

    def _release_parked(self, name: str, state: str) -> None:
        """Requests held for ``name`` go on when it runs; refused when it will not."""
        if state == "running":
            for held in self.routing.unpark(name):
                self._on_request(held.peer, held.request)
        elif state in ("failed", "stopped", "stopping"):
            for peer, msg in self.routing.refuse_parked(name, f"is {state}"):
                self._answer(peer, msg)

    def _appstate_request(self, peer: Peer, req: m.Request) -> None:
        try:
            result = self.commands.handle(req.command, req.args)
        except LumieraError as e:
            self._answer(peer, m.Error(req.id, e.code, str(e)))
            return
        self._answer(peer, m.Reply(req.id, result))
        if self.commands.stop_requested and self.runner.phase not in _ENDING:
            log.info("stop requested over the bus")
            self._execute(self.runner.shutdown("stop requested", time.monotonic()))

    def status(self) -> dict[str, Any]:
        """The instance and its subsystems as plain data (the ``status`` reply)."""
        status: dict[str, Any] = self.commands.on_status()
        return status

    def _answer(self, peer: Peer, msg: m.Message) -> None:
        if self.control is None:
            return
        try:
            self.control.send_multipart(peer.frames(m.encode(msg)))
        except zmq.ZMQError as e:  # the peer left (EHOSTUNREACH): nobody to tell
            log.debug("could not answer %r: %s", peer.identity, e)

    def _send_to(self, name: str, msg: m.Message) -> None:
        identity = self.identity.get(name)
        if identity is not None:
            self._answer(Peer(identity), msg)

    # -- the runner's actions -------------------------------------------------------

    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Publish):
                body = action.body
                self._publish(action.topic, body)
                if isinstance(body, SubsystemState):
                    self._release_parked(body.name, body.state)
                elif isinstance(body, ProblemReported):
                    log.error("%s", body.message)
                elif isinstance(body, PhaseChanged) and body.phase == Phase.RUNNING:
                    self._print_status()
            elif isinstance(action, Spawn):
                self._spawn(action.name)
            elif isinstance(action, SendStart):
                self._send_to(action.name, m.Start())
            elif isinstance(action, SendEvent):
                self._send_to(action.name, m.Event(action.event))
            elif isinstance(action, SendStop):
                self._send_to(action.name, m.Stop(action.reason, action.emergency))
            elif isinstance(action, Kill):
                proc = self.procs.get(action.name)
                if proc is not None:
                    log.warning("killing %s (pid %d)", action.name, proc.pid)
                    proc.kill()
            elif isinstance(action, Finish):
                self.exit_code = action.code

    def _spawn(self, name: str) -> None:
        try:
            proc = children.spawn(name, self.rd)
        except OSError as e:
            log.error("cannot start %s: %s", name, e)
            self.runner.problem(name, f"cannot start its process: {e}")
            self._execute(self.runner.exited(name, ExitStatus(code=127), time.monotonic()))
            return
        self.procs[name] = proc
        self.runner.spawned(name, proc.pid)
        self.poller.register(proc.pidfd, zmq.POLLIN)
        for fd in proc.pipes:
            self.poller.register(fd, zmq.POLLIN)

    def _print_status(self) -> None:
        lines = [
            f"lumiera: instance {self.rd.instance!r} running (pid {os.getpid()}, {self.rd.path})"
        ]
        for s in self.runner.snapshot(time.monotonic()):
            lines.append(f"  {s['name']:<8} {s['layer']:<6} {s['state']:<9} pid {s['pid']}")
        lines.append("  (lumiera status | lumiera tap | lumiera stop, or Ctrl-C)")
        self.output.show("\n".join(lines))
