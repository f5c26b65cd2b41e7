"""Fake subsystem processes that play a Runner's driver, with no sockets and no clock.

A :class:`World` owns a :class:`~lumiera.appstate.runner.Runner`, carries out
every action it returns the way well-behaved processes would (a spawned
process says hello, a started one says READY, an event is acked, a stop or a
SIGKILL ends the process), and keeps one log of the runner's actions and of
what the processes said, in order. A :class:`Behaviour` (``how``, by name) makes one process
misbehave: never connect, never say READY, ignore stop, survive SIGKILL, hang.
Time passes only through :meth:`World.advance`, which has every live process
beat its heartbeat every :data:`BEAT` seconds and lets the runner tick.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

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
from lumiera.appstate.runner import Phase, Runner, Timeouts
from lumiera.subsystems import Spec

# Distinct values, so a message naming a timeout shows which one it is.
TIMEOUTS = Timeouts(start=10.0, barrier=5.0, grace=3.0, emergency=4.0, watchdog=2.0, kill_wait=1.0)
BEAT = 0.5  # the fake processes' heartbeat period: well inside the watchdog's 2 s

A = TypeVar("A", bound=Action)


def spec(name: str, *depends: str, start: bool = False) -> Spec:
    """A fake subsystem; ``start``: whether the command line asks for it itself."""
    return Spec(name, "test", f"fake.{name}", depends=depends, should_start=lambda _o: start)


def table(*specs: Spec) -> dict[str, Spec]:
    return {s.name: s for s in specs}


@dataclass
class Behaviour:
    """How one fake process answers the runner (all True: a well-behaved one)."""

    connects: bool = True  # says hello once spawned
    readies: bool = True  # says READY once told to start
    acks: bool = True  # acks every lifecycle event
    stops: bool = True  # exits 0 once told to stop
    dies_when_killed: bool = True  # SIGKILL ends it (False: stuck in the kernel)
    beats: bool = True  # sends heartbeats while time passes (False: hung)


@dataclass(frozen=True)
class Said:
    """Something a fake process told the runner, logged beside the runner's actions."""

    name: str
    what: str


class World:
    """A Runner and the fake processes of its subsystems."""

    def __init__(
        self,
        order: list[str],
        subsystems: Mapping[str, Spec],
        *,
        debug: str | None = None,
        timeouts: Timeouts = TIMEOUTS,
        clock: float = 0.0,
        how: Mapping[str, Behaviour] | None = None,
    ) -> None:
        self.runner = Runner(order, timeouts, debug=debug, table=subsystems)
        self.now = clock
        self.log: list[Action | Said] = []
        # Each process's own copy, so a test may change one while the world runs.
        self.behaviour = {n: (how or {}).get(n, Behaviour()) for n in order}
        self.pids = {n: 1000 + i for i, n in enumerate(order)}
        self.alive: set[str] = set()  # a process exists
        self.connected: set[str] = set()  # it said hello and has not exited

    # -- what the processes and the user do ---------------------------------------

    def begin(self) -> None:
        self.play(self.runner.begin(self.now))

    def hello(self, name: str) -> None:
        self.play(self._hello(name, attached=False))

    def attach(self, name: str) -> None:
        """``lumiera run name``: a process of the user's connects as the --debug subsystem."""
        self.alive.add(name)
        self.play(self._hello(name, attached=True))

    def ready(self, name: str, alive: bool = True) -> None:
        self.play(self._ready(name, alive))

    def ack(self, name: str, event: str) -> None:
        self.play(self._ack(name, event))

    def exit(self, name: str, code: int = 0) -> None:
        self.play(self._exited(name, ExitStatus(code=code)))

    def crash(self, name: str, signum: int = signal.SIGKILL) -> None:
        self.play(self._exited(name, ExitStatus(signal=signum)))

    def problem(self, name: str, reason: str) -> None:
        self.log.append(Said(name, "problem"))
        self.runner.problem(name, reason)

    def ending(self, name: str, error: str | None) -> None:
        self.log.append(Said(name, "ending"))
        self.runner.ending(name, error)

    def shutdown(self, reason: str = "SIGINT received") -> None:
        self.play(self.runner.shutdown(reason, self.now))

    def advance(self, to: float) -> None:
        """Let time pass until ``to``: processes beat every BEAT s, the runner ticks."""
        while self.now < to:
            self.now = min(self.now + BEAT, to)
            for name in sorted(self.connected):
                if self.behaviour[name].beats:
                    self.runner.heartbeat(name, self.now)
            self.play(self.runner.tick(self.now))

    def run_to_end(self, limit: float = 120.0) -> int | None:
        """Let time pass until the runner finishes (or ``limit``); its exit code."""
        while self.finish is None and self.now < limit:
            self.advance(self.now + BEAT)
        return self.finish

    # -- what the runner asked for --------------------------------------------------

    def play(self, actions: list[Action]) -> None:
        """Log ``actions`` and carry them out, and whatever the answers bring, in order."""
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            self.log.append(action)
            queue += self._react(action)

    def _react(self, action: Action) -> list[Action]:
        if isinstance(action, Finish | Publish):
            return []
        how = self.behaviour[action.name]
        if isinstance(action, Spawn):
            self.alive.add(action.name)
            self.runner.spawned(action.name, self.pids[action.name])
            return self._hello(action.name, attached=False) if how.connects else []
        if isinstance(action, SendStart):
            return self._ready(action.name, True) if how.readies else []
        if isinstance(action, SendEvent):
            return self._ack(action.name, action.event) if how.acks else []
        if isinstance(action, SendStop):
            return self._exited(action.name, ExitStatus(code=0)) if how.stops else []
        if action.name in self.alive and how.dies_when_killed:  # Kill
            return self._exited(action.name, ExitStatus(signal=signal.SIGKILL))
        return []

    def _hello(self, name: str, attached: bool) -> list[Action]:
        refusal = self.runner.hello_refusal(name, attached)
        assert refusal is None, refusal
        self.log.append(Said(name, "hello"))
        self.connected.add(name)
        return self.runner.hello(name, self.pids[name], self.now)

    def _ready(self, name: str, alive: bool) -> list[Action]:
        self.log.append(Said(name, "ready"))
        return self.runner.ready(name, alive, self.now)

    def _ack(self, name: str, event: str) -> list[Action]:
        self.log.append(Said(name, f"ack {event}"))
        return self.runner.ack(name, event, self.now)

    def _exited(self, name: str, status: ExitStatus) -> list[Action]:
        self.log.append(Said(name, f"exit: {status.describe()}"))
        self.alive.discard(name)
        self.connected.discard(name)
        return self.runner.exited(name, status, self.now)

    # -- questions for the tests ----------------------------------------------------

    def phase(self) -> Phase:
        """The runner's phase (a call, so a type checker does not pin it between inputs)."""
        return self.runner.phase

    @property
    def finish(self) -> int | None:
        """The exit code the runner finished with, None while it runs."""
        codes = [a.code for a in self.log if isinstance(a, Finish)]
        assert len(codes) <= 1, f"finished more than once: {codes}"
        return codes[0] if codes else None

    def actions(self, kind: type[A]) -> list[A]:
        return [a for a in self.log if isinstance(a, kind)]

    def names(self, kind: type[SendStart | SendStop | Kill | Spawn]) -> list[str]:
        return [a.name for a in self.actions(kind)]

    def topics(self) -> list[str]:
        return [p.topic for p in self.actions(Publish)]

    def published(self, topic: str) -> list[dict[str, object]]:
        """The bodies published on ``topic``, as plain dicts (as a tool sees them)."""
        return [p.body.to_wire() for p in self.actions(Publish) if p.topic == topic]

    def lifecycle(self) -> list[str]:
        """The lifecycle events published, in order."""
        return [t.removeprefix("lifecycle.") for t in self.topics() if t.startswith("lifecycle.")]

    def events_sent(self, name: str) -> list[str]:
        return [a.event for a in self.actions(SendEvent) if a.name == name]

    def at(self, item: Action | Said) -> int:
        """Where ``item`` first is in the log."""
        return self.log.index(item)
