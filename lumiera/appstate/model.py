"""The runner's records: phases, subsystem states, timeouts, and what it knows of each subsystem."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lumiera.appstate.actions import ExitStatus
from lumiera.lifecycle import Lifecycle
from lumiera.subsystems import Spec

# Reasons travel in messages whose text fields are bounded: keep them well inside.
MAX_REASON = 4000


class Phase(enum.StrEnum):
    INIT = "init"
    STARTING = "starting"
    OPENING = "opening"  # session events of the start, as barriers
    RUNNING = "running"
    CLOSING = "closing"  # session events of the end, as barriers
    STOPPING = "stopping"
    EMERGENCY = "emergency"
    DONE = "done"

    @property
    def ending(self) -> bool:
        """On the way down (in order or not) or done: a shutdown asked for now has nothing to do."""
        return self in (Phase.CLOSING, Phase.STOPPING, Phase.EMERGENCY, Phase.DONE)


class State(enum.StrEnum):
    """A subsystem's state. SPAWNED and IDLE show as ``starting`` in status."""

    SPAWNED = "spawned"  # process started, not yet connected
    IDLE = "idle"  # connected (hello), waiting for its turn to start
    STARTING = "starting"  # start sent, waiting for READY
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    WAITING = "waiting"  # --debug: waiting for `lumiera run` to attach

    @property
    def public(self) -> str:
        return "starting" if self in (State.SPAWNED, State.IDLE) else self.value


@dataclass(frozen=True)
class Timeouts:
    """The bounded waits of the runner, in seconds (from ``[appstate]`` in setup.ini)."""

    start: float = 10.0
    barrier: float = 5.0
    grace: float = 3.0
    emergency: float = 5.0
    watchdog: float = 2.0
    # After SIGKILL, how long to wait for the exit to be seen before giving up.
    kill_wait: float = 2.0


@dataclass
class Sub:
    """The runner's record of one subsystem."""

    spec: Spec
    debug: bool = False
    state: State = State.SPAWNED
    alive: bool = False  # a process exists
    connected: bool = False  # it said hello (so it can be told to stop)
    pid: int | None = None
    spawned_at: float | None = None
    started_at: float | None = None
    last_heartbeat: float | None = None
    deadline: float | None = None  # of whatever it is waiting for now
    kill_sent: bool = False
    problem: str | None = None  # its own exception report
    ending_error: str | None = None  # error of a regular end (user's work failed)
    ending: bool = False  # it announced its end: no heartbeats from here, grace instead
    failure: str | None = None  # why it failed, for status
    exit: ExitStatus | None = None

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class Barrier:
    event: Lifecycle
    pending: set[str]
    deadline: float
