"""How a run of ``lumiera up`` ends: in order, in an emergency, or because time ran out.

These are the end's rules (DESIGN.md, "The supervisor's rules") as a base
class of :class:`~lumiera.appstate.runner.Runner`, which holds the state and
the inputs; nothing here is called from outside it. Like the runner, the rules
touch no socket and read no clock: ``now`` comes with every call, and what the
driver must do is recorded as actions.

- Orderly: subsystems stop in reverse start order, each told to stop and
  given ``grace`` before SIGKILL; then ON_GLOBAL_SHUTDOWN. Exit 0, or 1 after
  any error.
- Emergency: ON_EMERGENCY_EXIT (never followed by ON_GLOBAL_SHUTDOWN), every
  survivor told to stop, ``emergency`` seconds in all, then SIGKILL. Exit 2,
  or 3 when a survivor had to be killed.
- Deadlines: a subsystem that does not connect or say READY in time fails to
  start; one that does not stop within its grace is killed; one whose
  heartbeat stops (the watchdog) is killed, and its end is an emergency.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from lumiera.appstate.actions import Action, ExitStatus, Finish, Kill, SendStop
from lumiera.appstate.model import MAX_REASON, Barrier, Phase, State, Sub, Timeouts
from lumiera.bus.topics import EmergencyExit, EventBody
from lumiera.exits import EXIT_EMERGENCY, EXIT_EMERGENCY_FAILED, EXIT_ERROR, EXIT_OK
from lumiera.lifecycle import Lifecycle


class EndRules(ABC):
    """The runner's rules for its end. Runs wherever the runner does (the supervisor's loop)."""

    # The runner's state, set up by Runner.__init__ (runner.py).
    order: list[str]
    t: Timeouts
    subs: dict[str, Sub]
    phase: Phase
    errors: list[str]
    exit_code: int | None
    emergency: dict[str, Any] | None
    _events: list[Lifecycle]
    _barrier: Barrier | None
    _stop_queue: list[str]  # orderly: who is stopped next, in reverse start order
    _phase_deadline: float | None  # emergency: when survivors are killed
    _survivor_killed: bool
    _out: list[Action]

    # What the runner does for these rules: record events and changes, start ending.
    @abstractmethod
    def _publish(self, topic: str, body: EventBody) -> None: ...

    @abstractmethod
    def _publish_lifecycle(self, event: Lifecycle) -> None: ...

    @abstractmethod
    def _set_phase(self, phase: Phase) -> None: ...

    @abstractmethod
    def _set_state(self, sub: Sub, state: State, reason: str | None = None) -> None: ...

    @abstractmethod
    def _error(self, message: str) -> None: ...

    @abstractmethod
    def _shutdown(self, reason: str, now: float) -> None: ...

    @abstractmethod
    def _start_failed(self, sub: Sub, reason: str, now: float) -> None: ...

    # -- orderly end ----------------------------------------------------------------

    def _regular_end(self, sub: Sub, now: float) -> None:
        self._set_state(sub, State.STOPPED)
        if sub.ending_error:
            self._error(f"{sub.name}: {sub.ending_error}")
        self._shutdown(f"{sub.name} ended", now)
        self._continue_stopping(now)

    def _begin_stopping(self, now: float) -> None:
        self._set_phase(Phase.STOPPING)
        self._stop_queue = list(reversed(self.order))
        self._continue_stopping(now)

    def _continue_stopping(self, now: float) -> None:
        if self.phase is not Phase.STOPPING:
            return
        while self._stop_queue:
            sub = self.subs[self._stop_queue[0]]
            if not sub.alive:
                self._stop_queue.pop(0)
                if sub.state not in (State.FAILED, State.WAITING):
                    self._set_state(sub, State.STOPPED)
                continue
            if sub.state is State.STOPPING or sub.kill_sent:
                return  # its exit (or its deadline) moves us on
            if sub.connected:
                self._set_state(sub, State.STOPPING)
                sub.deadline = now + self.t.grace
                self._out.append(SendStop(sub.name, "shutdown"))
            else:  # never connected: nothing to save, nothing to say
                self._set_state(sub, State.STOPPING)
                self._kill(sub, now)
            return
        self._finish(EXIT_ERROR if self.errors else EXIT_OK)

    def _stopped(self, sub: Sub, status: ExitStatus, now: float) -> None:
        if status.ok or sub.kill_sent:
            self._set_state(sub, State.STOPPED)
            self._continue_stopping(now)
        else:
            self._begin_emergency(sub, f"failed while stopping ({status.describe()})", now)

    # -- emergency ------------------------------------------------------------------

    def _begin_emergency(self, sub: Sub, reason: str, now: float) -> None:
        self._fail(sub, reason)
        if self.phase in (Phase.EMERGENCY, Phase.DONE):
            return
        self._set_phase(Phase.EMERGENCY)
        self._barrier, self._events = None, []
        status = sub.exit
        self.emergency = {
            "subsystem": sub.name,
            "exit_code": status.code if status else None,
            "signal": status.signal if status else None,
            "reason": reason,
        }
        event = Lifecycle.ON_EMERGENCY_EXIT
        self._publish(f"lifecycle.{event}", EmergencyExit(event=event.value, **self.emergency))
        for other in self.subs.values():
            if other.alive and other is not sub:
                self._set_state(other, State.STOPPING)
                if other.connected:
                    other.deadline = None  # the emergency timeout governs from here
                    why = f"emergency: {sub.name} {reason}"[:MAX_REASON]
                    self._out.append(SendStop(other.name, why, emergency=True))
                else:
                    self._kill(other, now)
        self._phase_deadline = now + self.t.emergency
        self._check_emergency_done()

    def _emergency_deadline(self, now: float) -> None:
        alive = [s for s in self.subs.values() if s.alive]
        if not alive or self.phase is not Phase.EMERGENCY:
            return
        if all(s.kill_sent for s in alive):  # killed and still not seen gone: give up
            for s in alive:
                self._error(f"{s.name} (pid {s.pid}) could not be confirmed dead")
                s.alive = False
            self._check_emergency_done()
            return
        for s in alive:
            if not s.kill_sent:
                self._survivor_killed = True
                self._kill(s, now)
        self._phase_deadline = now + self.t.kill_wait

    def _check_emergency_done(self) -> None:
        if self.phase is Phase.EMERGENCY and not any(s.alive for s in self.subs.values()):
            self._finish(EXIT_EMERGENCY_FAILED if self._survivor_killed else EXIT_EMERGENCY)

    # -- deadlines and the watchdog -------------------------------------------------

    def _deadline_passed(self, sub: Sub, now: float) -> None:
        if sub.state is State.SPAWNED:
            self._start_failed(sub, f"did not connect within {self.t.start} s", now)
        elif sub.state is State.STARTING:
            self._start_failed(sub, f"did not say READY within {self.t.start} s", now)
        elif sub.alive and not sub.kill_sent:  # stopping, past its grace
            self._error(f"{sub.name} did not stop within {self.t.grace} s; killed")
            self._kill(sub, now)
        elif sub.alive:  # killed, yet no exit seen
            self._error(f"{sub.name} (pid {sub.pid}) could not be confirmed dead")
            sub.alive = False
            self._continue_stopping(now)
            self._check_emergency_done()

    def _watched(self, sub: Sub) -> bool:
        return (
            not sub.debug
            and not sub.ending
            and sub.alive
            and sub.connected
            and not sub.kill_sent
            # not STARTING: on_start may block the loop; start_timeout bounds it
            and sub.state in (State.IDLE, State.RUNNING)
        )

    def _hung(self, sub: Sub, now: float) -> bool:
        return (
            self._watched(sub)
            and sub.last_heartbeat is not None
            and now - sub.last_heartbeat >= self.t.watchdog
        )

    def _watchdog(self, sub: Sub, now: float) -> None:
        silent = 0.0 if sub.last_heartbeat is None else now - sub.last_heartbeat
        reason = f"hung: no heartbeat for {silent:.2f} s"
        self._kill(sub, now)
        if sub.state is State.RUNNING:
            self._begin_emergency(sub, reason, now)
        else:
            self._start_failed(sub, reason, now)

    def _debug_detached(self, sub: Sub, now: float) -> None:
        sub.pid, sub.started_at = None, None
        self._set_state(sub, State.WAITING)
        if self._stop_queue and self._stop_queue[0] == sub.name:
            self._continue_stopping(now)  # only while stopping in order
        # An emergency that began while it was being stopped in order may end with it.
        self._check_emergency_done()

    # -- helpers --------------------------------------------------------------------

    def _kill(self, sub: Sub, now: float) -> None:
        sub.kill_sent = True
        sub.deadline = now + self.t.kill_wait
        self._out.append(Kill(sub.name))

    def _fail(self, sub: Sub, reason: str) -> None:
        sub.failure = reason
        self._set_state(sub, State.FAILED, reason=reason)

    def _finish(self, code: int) -> None:
        if self.phase is not Phase.EMERGENCY:
            self._publish_lifecycle(Lifecycle.ON_GLOBAL_SHUTDOWN)
        self._set_phase(Phase.DONE)
        self.exit_code = code
        self._out.append(Finish(code))
