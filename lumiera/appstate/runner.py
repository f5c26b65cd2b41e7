"""The supervisor's rules as a state machine (Lumiera's SubsystemRunner), without sockets.

Every input (a process connected, said READY, acked an event, exited; time
passed; a shutdown was asked for) is a method taking ``now``; every method
returns the :mod:`actions <lumiera.appstate.actions>` the driver must carry out.
Time is only what the caller passes in, so tests are deterministic.

The rules (DESIGN.md, "The supervisor's rules"):

- Processes of all selected subsystems are spawned at once (hiding interpreter
  start-up), but each is *started* only after all it depends on is running,
  in :func:`~lumiera.subsystems.start_order`.
- A subsystem that fails before it is running (ends, reports a problem, claims
  READY while its process is gone, misses its start timeout) is a start
  failure: it is killed, reported, and the rest shut down in order; exit 1.
- The end of a running subsystem ends the application: regularly (exit 0)
  -> orderly shutdown; with a problem (non-zero exit, signal, watchdog,
  exception report) -> emergency.
- Orderly: ON_SESSION_CLOSE and ON_SESSION_END as barriers, then stop in
  reverse start order, each given ``grace`` before SIGKILL, then
  ON_GLOBAL_SHUTDOWN. Exit 0, or 1 after any error.
- Emergency: ON_EMERGENCY_EXIT (never followed by ON_GLOBAL_SHUTDOWN), every
  survivor told to stop, ``emergency`` seconds in all, then SIGKILL.
  Exit 2, or 3 when a survivor had to be killed.
- The subsystem under ``--debug`` is attached by ``lumiera run``; its watchdog
  is suspended, and its end only returns it to ``waiting``.

This module holds the state, the inputs, the start and the lifecycle
barriers; the rules of the end (orderly, emergency, deadlines, the watchdog)
are the base class :class:`~lumiera.appstate.ending.EndRules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lumiera.appstate.actions import (
    Action,
    ExitStatus,
    Publish,
    SendEvent,
    SendStart,
    Spawn,
)
from lumiera.appstate.ending import EndRules
from lumiera.appstate.model import MAX_REASON, Barrier, Phase, State, Sub, Timeouts
from lumiera.bus.topics import (
    EventBody,
    LifecycleEvent,
    PhaseChanged,
    ProblemReported,
    Shutdown,
    SubsystemState,
)
from lumiera.exits import EXIT_OK
from lumiera.lifecycle import SESSION_CLOSING, SESSION_OPENING, Lifecycle
from lumiera.subsystems import SUBSYSTEMS, Spec

__all__ = ["MAX_REASON", "Phase", "Runner", "State", "Sub", "Timeouts"]


class Runner(EndRules):
    """Drives the subsystems of one ``lumiera up`` from start to finish."""

    def __init__(
        self,
        order: list[str],
        timeouts: Timeouts,
        debug: str | None = None,
        table: Mapping[str, Spec] = SUBSYSTEMS,
    ) -> None:
        self.order = list(order)
        self.t = timeouts
        self.subs = {n: Sub(table[n], debug=(n == debug)) for n in order}
        self.phase = Phase.INIT
        self.errors: list[str] = []  # any entry makes an orderly end exit 1
        self.exit_code: int | None = None
        self.emergency: dict[str, Any] | None = None
        self._events: list[Lifecycle] = []
        self._barrier: Barrier | None = None
        self._stop_queue: list[str] = []
        self._phase_deadline: float | None = None
        self._survivor_killed = False
        self._out: list[Action] = []

    # -- inputs ---------------------------------------------------------------------

    def begin(self, now: float) -> list[Action]:
        """Spawn every selected subsystem's process and start the first one."""
        self._set_phase(Phase.STARTING)
        self._publish_lifecycle(Lifecycle.ON_GLOBAL_INIT)
        if not self.subs:  # nothing asked for: nothing runs, so the application ends
            self._finish(EXIT_OK)
            return self._take()
        for sub in self.subs.values():
            if sub.debug:
                self._set_state(sub, State.WAITING)
            else:
                sub.spawned_at, sub.alive = now, True
                sub.deadline = now + self.t.start
                self._out.append(Spawn(sub.name))
        self._advance_start(now)
        return self._take()

    def spawned(self, name: str, pid: int) -> None:
        """The driver started ``name``'s process as ``pid``."""
        self.subs[name].pid = pid

    def hello_refusal(self, name: str, attached: bool) -> str | None:
        """Why a hello from ``name`` is not accepted, or None when it is."""
        sub = self.subs.get(name)
        if sub is None:
            return f"subsystem {name!r} is not part of this instance"
        if self.phase not in (Phase.STARTING, Phase.OPENING, Phase.RUNNING):
            return f"the instance is {self.phase}"
        if attached != sub.debug:
            return (
                f"{name} is not waiting for `lumiera run` (start with --debug {name})"
                if attached
                else f"{name} is under --debug; only `lumiera run` may attach it"
            )
        expected = State.WAITING if sub.debug else State.SPAWNED
        if sub.state is not expected:
            return f"{name} is {sub.state.public}"
        return None

    def hello(self, name: str, pid: int, now: float) -> list[Action]:
        """``name`` connected (call only when :meth:`hello_refusal` gave None)."""
        sub = self.subs[name]
        sub.connected, sub.alive, sub.pid = True, True, pid
        sub.last_heartbeat, sub.deadline = now, None
        sub.problem = sub.ending_error = None
        sub.kill_sent = sub.ending = False
        self._set_state(sub, State.IDLE)
        if self.phase is Phase.STARTING:
            self._advance_start(now)
        else:  # a debugged subsystem attached again while the rest runs
            self._send_start(sub, now)
        return self._take()

    def ready(self, name: str, alive: bool, now: float) -> list[Action]:
        """``name`` said READY; ``alive`` is whether its process still exists."""
        sub = self.subs[name]
        if sub.state is not State.STARTING:
            return self._take()
        if not alive:
            self._start_failed(sub, "said READY but its process is not running", now)
            return self._take()
        sub.started_at, sub.deadline = now, None
        self._set_state(sub, State.RUNNING)
        if sub.debug and self.phase is Phase.RUNNING:
            # Attached again after the session opened: it gets the events it
            # missed, in order (its acks arrive outside any barrier and are ignored).
            self._out.extend(SendEvent(name, event) for event in SESSION_OPENING)
        self._advance_start(now)
        return self._take()

    def heartbeat(self, name: str, now: float) -> None:
        self.subs[name].last_heartbeat = now

    def ack(self, name: str, event: str, now: float) -> list[Action]:
        b = self._barrier
        if b is not None and b.event == event and name in b.pending:
            b.pending.discard(name)
            if not b.pending:
                self._next_barrier(now)
        return self._take()

    def problem(self, name: str, reason: str) -> None:
        """``name`` reported an uncaught exception; its exit follows."""
        self.subs[name].problem = reason[:MAX_REASON]

    def ending(self, name: str, error: str | None, now: float | None = None) -> None:
        """``name`` announced a regular end (``error``: the user's work failed).

        From here it stops heartbeating: it gets the grace period to exit, not the watchdog.
        """
        sub = self.subs[name]
        sub.ending_error = error or None
        sub.ending = True
        if now is not None and sub.alive:
            sub.deadline = now + self.t.grace

    def exited(self, name: str, status: ExitStatus, now: float) -> list[Action]:
        """``name``'s process is gone."""
        sub = self.subs[name]
        was = sub.state
        sub.alive, sub.connected, sub.exit, sub.deadline = False, False, status, None
        if self._barrier is not None:
            self._barrier.pending.discard(name)
        if sub.debug:
            self._debug_detached(sub, now)
        elif self.phase is Phase.EMERGENCY:
            if was is not State.FAILED:
                self._set_state(sub, State.STOPPED if status.ok else State.FAILED)
            self._check_emergency_done()
        elif self.phase is Phase.DONE:
            pass
        elif was is State.STOPPING:
            self._stopped(sub, status, now)
        elif was in (State.SPAWNED, State.IDLE, State.STARTING):
            detail = sub.problem or f"ended before it was ready ({status.describe()})"
            self._start_failed(sub, detail, now)
        elif was is State.FAILED:
            self._continue_stopping(now)
        elif (status.ok or (sub.ending and sub.kill_sent)) and sub.problem is None:
            self._regular_end(sub, now)  # killed past its grace after `ending`: still regular
        else:
            self._begin_emergency(sub, sub.problem or status.describe(), now)
        if self._barrier is not None and not self._barrier.pending:
            self._next_barrier(now)
        return self._take()

    def shutdown(self, reason: str, now: float) -> list[Action]:
        """Orderly shutdown (SIGINT/SIGTERM, `lumiera stop`, a regular end)."""
        self._shutdown(reason, now)
        return self._take()

    def _shutdown(self, reason: str, now: float) -> None:
        # Internal callers use this one: only public inputs may _take() the actions.
        if self.phase in (Phase.OPENING, Phase.RUNNING):
            self._publish("appstate.shutdown", Shutdown(reason=reason))
            self._set_phase(Phase.CLOSING)
            self._events = list(SESSION_CLOSING)
            self._next_barrier(now)
        elif self.phase in (Phase.INIT, Phase.STARTING):
            self._publish("appstate.shutdown", Shutdown(reason=reason))
            self._begin_stopping(now)

    def tick(self, now: float) -> list[Action]:
        """Handle every deadline that has passed by ``now``."""
        for sub in self.subs.values():
            if sub.deadline is not None and now >= sub.deadline:
                sub.deadline = None
                self._deadline_passed(sub, now)
            elif self._hung(sub, now):
                self._watchdog(sub, now)
        b = self._barrier
        if b is not None and now >= b.deadline:
            missing = ", ".join(sorted(b.pending))
            self._error(f"{b.event}: no acknowledgement from {missing} within {self.t.barrier} s")
            self._next_barrier(now)
        if self._phase_deadline is not None and now >= self._phase_deadline:
            self._phase_deadline = None
            self._emergency_deadline(now)
        return self._take()

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`tick` has something to do (heartbeats included)."""
        times = [s.deadline for s in self.subs.values() if s.deadline is not None]
        times += [
            s.last_heartbeat + self.t.watchdog
            for s in self.subs.values()
            if self._watched(s) and s.last_heartbeat is not None
        ]
        if self._barrier is not None:
            times.append(self._barrier.deadline)
        if self._phase_deadline is not None:
            times.append(self._phase_deadline)
        return min(times, default=None)

    # -- status ---------------------------------------------------------------------

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        """Each subsystem as plain data, in start order (for ``status``)."""
        out = []
        for sub in self.subs.values():
            running = sub.state is State.RUNNING and sub.started_at is not None
            beat = sub.last_heartbeat if sub.alive and sub.connected else None
            out.append(
                {
                    "name": sub.name,
                    "layer": sub.spec.layer,
                    "pid": sub.pid if sub.alive else None,
                    "state": sub.state.public,
                    "debug": sub.debug,
                    "uptime_s": round(now - sub.started_at, 3) if running else None,  # type: ignore[operator]
                    "heartbeat_age_s": round(now - beat, 3) if beat is not None else None,
                    "last_failure": sub.failure,
                    "exit": sub.exit.describe() if sub.exit else None,
                }
            )
        return out

    # -- starting -------------------------------------------------------------------

    def _advance_start(self, now: float) -> None:
        if self.phase is not Phase.STARTING:
            return
        for name in self.order:
            sub = self.subs[name]
            if sub.state is State.RUNNING:
                continue
            if sub.state is State.IDLE:
                self._send_start(sub, now)
            return  # wait for this one: to connect, say READY, or attach
        self._set_phase(Phase.OPENING)
        self._events = list(SESSION_OPENING)
        self._next_barrier(now)

    def _send_start(self, sub: Sub, now: float) -> None:
        self._set_state(sub, State.STARTING)
        sub.deadline = None if sub.debug else now + self.t.start
        self._out.append(SendStart(sub.name))

    def _start_failed(self, sub: Sub, reason: str, now: float) -> None:
        self._fail(sub, reason)
        self._error(f"{sub.name} failed to start: {reason}")
        if sub.alive:
            self._kill(sub, now)
        if self.phase in (Phase.STARTING, Phase.OPENING, Phase.RUNNING):
            # Dependents never started; what runs stops in order. Not an emergency.
            self._shutdown(f"{sub.name} failed to start", now)
        else:
            self._continue_stopping(now)

    # -- lifecycle barriers ---------------------------------------------------------

    def _next_barrier(self, now: float) -> None:
        self._barrier = None
        while self._events:
            event = self._events.pop(0)
            self._publish_lifecycle(event)
            targets = {n for n, s in self.subs.items() if s.state is State.RUNNING}
            if targets:
                for name in self.order:
                    if name in targets:
                        self._out.append(SendEvent(name, event))
                self._barrier = Barrier(event, targets, now + self.t.barrier)
                return
        if self.phase is Phase.OPENING:
            self._set_phase(Phase.RUNNING)
        elif self.phase is Phase.CLOSING:
            self._begin_stopping(now)

    # -- helpers --------------------------------------------------------------------

    def _error(self, message: str) -> None:
        self.errors.append(message)
        self._publish("appstate.problem", ProblemReported(message=message))

    def _set_phase(self, phase: Phase) -> None:
        self.phase = phase
        self._publish("appstate.phase", PhaseChanged(phase=phase.value))

    def _set_state(self, sub: Sub, state: State, reason: str | None = None) -> None:
        changed = sub.state.public != state.public
        sub.state = state
        if changed:
            body = SubsystemState(name=sub.name, state=state.public, pid=sub.pid, reason=reason)
            self._publish(f"subsystem.{sub.name}.{state.public}", body)

    def _publish_lifecycle(self, event: Lifecycle) -> None:
        self._publish(f"lifecycle.{event.value}", LifecycleEvent(event=event.value))

    def _publish(self, topic: str, body: EventBody) -> None:
        self._out.append(Publish(topic, body))

    def _take(self) -> list[Action]:
        out, self._out = self._out, []
        return out
