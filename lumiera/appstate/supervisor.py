"""AppState, the root supervisor process of ``lumiera up``: the driver of the runner.

Owns the runtime directory's lock, the bus sockets (``control`` ROUTER,
``publish`` XSUB -> ``events`` XPUB), the subsystem processes and their output,
and one poll loop over all of them (sockets, pidfds, pipes, a signal pipe).
Every decision is the :class:`~lumiera.appstate.runner.Runner`'s; this module
carries out its actions and feeds it what happens. The events plane is here;
the control plane is :mod:`.control`, the child processes :mod:`.children`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from typing import Any, TextIO

import zmq

from lumiera import shm
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
from lumiera.appstate.children import Children
from lumiera.appstate.commands import APPSTATE, AppStateCommands
from lumiera.appstate.control import ControlPlane
from lumiera.appstate.model import State
from lumiera.appstate.output import Output, log_dir_for
from lumiera.appstate.rings import Rings
from lumiera.appstate.runner import MAX_REASON, Phase, Runner, Timeouts
from lumiera.appstate.stops import Stops
from lumiera.appstate.zygote import Zygote
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
    prepare_kinds,
)
from lumiera.bus.recording import remove_dead_markers, running_recordings
from lumiera.bus.sockets import configure_bounded, recv_bounded
from lumiera.config import Config
from lumiera.errors import BadMessage, RuntimeDirError
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
# A process that exited by itself: its last message is awaited this long (see _last_words).
LAST_WORDS_S = 0.05
LAST_EVENTS_LINGER_MS = 200


class Supervisor:
    """One run of ``lumiera up``. Create, then :meth:`run` once."""

    def __init__(
        self,
        rd: RuntimeDir,
        config: Config,
        options: Options,
        out: TextIO,
        zygote: Zygote | None = None,
        *,
        bound: threading.Event | None = None,  # set once the sockets are bound (the pid file)
    ) -> None:
        self.rd = rd
        self.bound = bound
        self.config = config
        self.options = options
        self.output = Output(out, log_dir_for(config, rd.instance), self._publish)
        self.limits = Limits(
            config.get_int("bus.max_message_bytes"), config.get_int("bus.max_parts")
        )
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
        self.rings = Rings(rd.instance, self._publish)
        self.stats_every = config.get_float("rings.stats_interval")
        self._next_stats = time.monotonic() + self.stats_every
        self.started = time.monotonic()
        self.poller = zmq.Poller()
        self.children = Children(rd, self.poller, self.output, zygote)
        self.control = ControlPlane(
            runner=self.runner,
            children=self.children,
            commands=AppStateCommands(
                rd=rd,
                config=config,
                options=options,
                runner=self.runner,
                rings=self.rings,
                started=self.started,
            ),
            welcome=m.Welcome(rd.instance, config.to_dict(), options.to_dict()),
            limits=self.limits,
            request_timeout=config.get_float("bus.request_timeout"),
            execute=self._execute,
        )
        self.exit_code: int | None = None
        self.xsub: zmq.Socket[bytes] | None = None
        self.xpub: zmq.Socket[bytes] | None = None
        self.stops = Stops()  # signals and other threads' requests to stop
        self.signalled: signal.Signals | None = None  # the first SIGINT/SIGTERM/SIGHUP taken

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
        try:
            wake_r = self.stops.install()
            self._setup(zctx, wake_r)  # a failure here is a clear error (exit 1), nothing ran yet
            try:
                self._execute(self.runner.begin(time.monotonic()))
                prepare_kinds()  # while the subsystems start: a crash's event is sent at once
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
                self._name_recordings()
                self.exit_code = EXIT_EMERGENCY_FAILED
        finally:
            try:
                self._teardown(zctx)
                lock.release()
                remove_dir_if_empty(self.rd)
            finally:
                # Last: until here a second Ctrl-C or SIGTERM is only noted and cannot cut
                # the teardown short (the command line's own handler would raise in the
                # middle of it, leaving the rings' segments and the directory behind).
                self.stops.uninstall()
        assert self.exit_code is not None
        return self.exit_code

    def _setup(self, zctx: zmq.Context[zmq.Socket[bytes]], wake_r: int) -> None:
        try:
            self._sweep_stale()
            self.rd.temp_dir.mkdir(mode=0o700)
            self._bind(zctx)
            write_pid(self.rd)
            if self.bound is not None:
                self.bound.set()
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
        files = remove_instance_files(self.rd) + remove_dead_markers(self.rd)
        segments = shm.sweep(self.rd.instance)
        if files or segments:
            log.warning("removed what a dead instance left behind: %s", ", ".join(files + segments))

    def _bind(self, zctx: zmq.Context[zmq.Socket[bytes]]) -> None:
        self.xsub = xsub = zctx.socket(zmq.XSUB)
        self.xpub = xpub = zctx.socket(zmq.XPUB)
        for sock in (xsub, xpub):
            configure_bounded(sock, self.limits)
        old = os.umask(0o077)  # socket files follow the umask: keep them ours only
        try:
            control = self.control.bind(zctx, self.rd.endpoint("control"))
            xsub.bind(self.rd.endpoint("publish"))
            xpub.bind(self.rd.endpoint("events"))
        finally:
            os.umask(old)
        xsub.send(b"\x01")  # subscribe to everything publishers send; XPUB filters per tool
        for sock in (control, xsub, xpub):
            self.poller.register(sock, zmq.POLLIN)

    def _teardown(self, zctx: zmq.Context[zmq.Socket[bytes]]) -> None:
        self.children.kill_all()  # nothing may outlive us
        if self.children.zygote is not None:
            self.children.zygote.close()
            self.children.reap_strays()  # what the zygote's end left re-parented to us
        self.output.close()
        self.control.close()  # what is still asked is answered, bounded
        # Give the last events (ON_GLOBAL_SHUTDOWN, the final phase) a bounded
        # chance to reach the tools; nothing waits longer than this.
        if self.xpub is not None:
            with contextlib.suppress(zmq.ZMQError):
                self.xpub.close(linger=LAST_EVENTS_LINGER_MS)
        zctx.destroy(linger=0)
        self.rings.close()
        remove_instance_files(self.rd)
        remove_dead_markers(self.rd)  # a killed recorder's: the directory can go
        shm.sweep(self.rd.instance)

    # -- the loop -------------------------------------------------------------------

    def _loop(self) -> None:
        while self.exit_code is None:
            now = time.monotonic()
            stats = self._next_stats if self.rings.segments else None
            due = min(
                (
                    d
                    for d in (self.runner.next_deadline(), self.control.next_deadline(), stats)
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
            self.control.expire(now)
            if stats is not None and now >= stats:
                self.rings.tick()
                self._next_stats = now + self.stats_every

    def _dispatch(self, item: Any) -> None:
        if item is self.control.sock:
            self.control.on_readable()
        elif item is self.xsub:
            self._on_publish()
        elif item is self.xpub and self.xpub is not None:
            recv_bounded(self.xpub, 1)  # a tool's (un)subscription: nothing to do
        elif item == self._wake_r:
            self._on_signal()
        else:
            self._on_fd(item)

    def _on_signal(self) -> None:
        sigs, requests = self.stops.take()
        for sig in sigs:
            self.signalled = self.signalled or sig  # the first one: how `lumiera render` exits
            if self.runner.phase.ending:
                log.warning("%s: already shutting down", sig.name)
                continue
            log.info("%s: shutting down in order", sig.name)
            self._execute(self.runner.shutdown(f"{sig.name} received", time.monotonic()))
        for reason in requests:
            if not self.runner.phase.ending:
                self._execute(self.runner.shutdown(reason, time.monotonic()))

    def _on_fd(self, fd: int) -> None:
        exited = self.children.on_fd(fd)
        if exited is not None:
            status = self.children.reap(exited)
            if status.code is not None:
                self._last_words(exited.name)
            self.control.gone(exited.name)
            self._execute(self.runner.exited(exited.name, status, time.monotonic()))

    def _last_words(self, name: str) -> None:
        """Read what a process that ended by itself said last (its ``ending``, its
        ``problem``) before its exit is handled: the exit can be seen first, while
        ZeroMQ's I/O thread still holds the message. Bounded by LAST_WORDS_S."""
        sub = self.runner.subs.get(name)
        if sub is None or sub.state is State.STOPPING:  # asked to stop: nothing more to say
            return
        sock = self.control.sock
        deadline = time.monotonic() + LAST_WORDS_S
        while sock is not None and not (sub.ending or sub.problem):
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                return
            self.control.on_readable()

    # -- the events plane -----------------------------------------------------------

    def _publish(self, topic: str, body: EventBody, sender: str = APPSTATE) -> None:
        """Publish on ``events``; ``sender`` is ours but for a subsystem's output lines."""
        if self.xpub is None:  # not bound (yet): nobody can be listening
            return
        try:
            frames = encode_event(topic, body, sender, limits=self.limits)
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

    # -- the runner's actions -------------------------------------------------------

    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Publish):
                body = action.body
                self._publish(action.topic, body)
                if isinstance(body, SubsystemState):
                    self.control.release_parked(body.name, body.state)
                elif isinstance(body, ProblemReported):
                    log.error("%s", body.message)
                elif isinstance(body, PhaseChanged) and body.phase == Phase.RUNNING:
                    self._print_status()
                elif isinstance(body, EmergencyExit):
                    self._name_recordings()
            elif isinstance(action, Spawn):
                self._spawn(action.name)
            elif isinstance(action, SendStart):
                self.control.send_to(action.name, m.Start())
            elif isinstance(action, SendEvent):
                self.control.send_to(action.name, m.Event(action.event))
            elif isinstance(action, SendStop):
                self.control.send_to(action.name, m.Stop(action.reason, action.emergency))
            elif isinstance(action, Kill):
                self.children.kill(action.name)
            elif isinstance(action, Finish):
                self.exit_code = action.code

    def _spawn(self, name: str) -> None:
        try:
            proc = self.children.spawn(name)
        except OSError as e:
            log.error("cannot start %s: %s", name, e)
            self.runner.problem(name, f"cannot start its process: {e}")
            self._execute(self.runner.exited(name, ExitStatus(code=127), time.monotonic()))
            return
        self.runner.spawned(name, proc.pid)

    def _name_recordings(self) -> None:
        self.output.name_recordings(running_recordings(self.rd))

    def _print_status(self) -> None:
        snapshot = self.runner.snapshot(time.monotonic())
        self.output.show_running(self.rd.instance, self.rd.path, snapshot)
