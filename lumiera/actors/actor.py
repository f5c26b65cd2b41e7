"""The base of every subsystem's actor, and its command table.

An actor is the logic of one subsystem: it is called as
``handle(command, args) -> result`` and knows nothing of sockets, so tests can
drive it directly. Request handlers are methods ``on_<command>`` declared with
:func:`~lumiera.bus.commands.command` (see there).

Every method here runs in the subsystem's process, in its main thread.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lumiera.bus.commands import Commands, CommandSpec, command
from lumiera.bus.topics import EventBody
from lumiera.config import Config
from lumiera.errors import BadArguments, FaultsDisabled, LumieraError
from lumiera.lifecycle import Hooks


@dataclass
class ActorContext:
    """What the runtime gives an actor: who it is, its configuration, and the bus."""

    name: str
    instance: str
    config: Config
    options: dict[str, Any]
    hooks: Hooks = field(default_factory=Hooks)
    # Publish on the events bus: (topic, body of the topic's declared kind). The runtime
    # adds sender and ts. Thread-safe: any thread of the subsystem may publish.
    publish: Callable[[str, EventBody], None] = lambda _t, _b: None
    # Announce a regular end of this subsystem (``error``: the user's work failed).
    end: Callable[[str | None], None] = lambda _e: None
    attached: bool = False
    # The instance's runtime directory (rings' wake-up sockets, the bus endpoints).
    runtime_dir: str | None = None
    # The instance's temp area (render intermediates), removed when the instance ends.
    temp_dir: str | None = None


class Actor(Commands):
    """Base of the subsystem actors.

    Subclasses set ``name`` and ``summary``, declare commands with
    :func:`command`, and override the hooks they need. Hooks run in the
    subsystem process's main thread; an exception from one is a crash of the
    subsystem (reported to the supervisor, then a non-zero exit), except where
    a hook says otherwise.
    """

    name: ClassVar[str] = "actor"
    summary: ClassVar[str] = ""

    def __init__(self, ctx: ActorContext) -> None:
        self.ctx = ctx
        self.log = logging.getLogger(f"lumiera.{ctx.name}")
        self.started_at: float | None = None
        # Seconds between calls of :meth:`on_tick` once started; None: never.
        self.tick_interval: float | None = None

    @property
    def owner(self) -> str:
        return self.ctx.name

    # -- hooks ----------------------------------------------------------------------

    def on_start(self) -> None:
        """Start the subsystem's work; runs when all it depends on is running.

        Raising here is a start failure: the application shuts down in order, exit 1.
        """

    def on_stop(self) -> None:
        """Stop the subsystem's work (orderly or emergency); the process exits 0 next."""

    def on_tick(self) -> None:
        """Periodic work in the main thread (e.g. publish ``stats.<name>``): every tick_interval s.

        Runs only while the subsystem is running; raising here is a crash.
        """

    def on_failure(self, exc: BaseException) -> None:
        """An uncaught exception is ending the process; last chance to release things.

        Must not raise (an exception here is logged and ignored).
        """

    # -- the commands every subsystem has -------------------------------------------

    @command
    def on_ping(self) -> dict[str, Any]:
        """Answer at once: liveness and identity."""
        return {"pong": True, "name": self.ctx.name, "pid": os.getpid(), "ts": time.time()}

    @command
    def on_describe(self) -> dict[str, Any]:
        """What this subsystem is, what it can do, and its state."""
        return {
            "name": self.ctx.name,
            "summary": self.summary,
            "pid": os.getpid(),
            "attached": self.ctx.attached,
            "uptime_s": None if self.started_at is None else time.monotonic() - self.started_at,
            "commands": {n: (s.doc.splitlines() or [""])[0] for n, s in self.commands.items()},
            **self.describe_state(),
        }

    def handle_batch(self, requests: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Handle requests that arrived together, in order; each outcome a result or a LumieraError.

        The default handles them one by one. An actor that can do better (the
        session commits a batch in one transaction) overrides it. Any other
        exception propagates: every request of the batch is answered
        ``internal`` and the subsystem ends as a crash.
        """
        outcomes: list[Any] = []
        for command_name, args in requests:
            try:
                outcomes.append(self.handle(command_name, args))
            except LumieraError as e:
                outcomes.append(e)
        return outcomes

    def describe_state(self) -> dict[str, Any]:
        """Subsystem-specific part of ``describe``; override in subclasses."""
        return {}

    @command
    def on_fault(self, *, kind: str, code: int = 1) -> dict[str, Any]:
        """Inject a fault (only with ``debug.faults = yes``): raise, exit, hang, end, end_error."""
        if not self.ctx.config.get_bool("debug.faults"):
            raise FaultsDisabled("fault injection is off (set debug.faults = yes)")
        if kind == "raise":
            raise RuntimeError("fault injected: raise")
        if kind == "exit":
            os._exit(code)
        if kind == "hang":  # hold the main thread (and so the heartbeat) forever
            while True:
                pass
        if kind in ("end", "end_error"):
            self.ctx.end("fault injected: end with error" if kind == "end_error" else None)
            return {"ending": True}
        raise BadArguments(f"fault: unknown kind {kind!r} (raise, exit, hang, end, end_error)")


__all__ = ["Actor", "ActorContext", "CommandSpec", "command"]
