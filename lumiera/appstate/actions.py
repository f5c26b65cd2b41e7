"""What the runner asks its driver to do, and how a process ended.

The runner (:mod:`.runner`) is pure logic: every call returns a list of these
actions and the driver (:mod:`.supervisor`, or a test) carries them out.
"""

from __future__ import annotations

import signal as _signal
from dataclasses import dataclass

from lumiera.bus.topics import EventBody


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended: an exit code, or the signal that killed it."""

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_returncode(cls, rc: int) -> ExitStatus:
        return cls(signal=-rc) if rc < 0 else cls(code=rc)

    @property
    def ok(self) -> bool:
        return self.code == 0 and self.signal is None

    def describe(self) -> str:
        if self.code is None and self.signal is None:
            return "ended (exit status not ours to read)"
        if self.signal is not None:
            try:
                return f"killed by {_signal.Signals(self.signal).name}"
            except ValueError:
                return f"killed by signal {self.signal}"
        return f"exit code {self.code}"


@dataclass(frozen=True)
class Spawn:
    """Start the subsystem's process (it connects and says hello, then waits)."""

    name: str


@dataclass(frozen=True)
class SendStart:
    """Tell a connected subsystem to start (its prerequisites are ready)."""

    name: str


@dataclass(frozen=True)
class SendEvent:
    """Send lifecycle ``event`` to a running subsystem; it acks when its hooks ran."""

    name: str
    event: str


@dataclass(frozen=True)
class SendStop:
    """Ask a connected subsystem to stop (``emergency``: because another one crashed)."""

    name: str
    reason: str
    emergency: bool = False


@dataclass(frozen=True)
class Kill:
    """SIGKILL the subsystem's process."""

    name: str


@dataclass(frozen=True)
class Publish:
    """Publish ``body`` (of ``topic``'s declared kind) on the events bus."""

    topic: str
    body: EventBody


@dataclass(frozen=True)
class Finish:
    """Everything is down: clean up and exit with ``code``."""

    code: int


Action = Spawn | SendStart | SendEvent | SendStop | Kill | Publish | Finish
