"""The base of every subsystem's actor, and its command table.

An actor is the logic of one subsystem: it is called as
``handle(command, args) -> result`` and knows nothing of sockets, so tests can
drive it directly. Request handlers are methods ``on_<command>`` declared with
:func:`command`; their keyword-only parameters, with type hints, are the
command's arguments, validated before the handler runs.

Every method here runs in the subsystem's process, in its main thread.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lumiera.bus.messages import check_type
from lumiera.config import Config
from lumiera.errors import BadArguments, BadMessage, FaultsDisabled, UnknownCommand
from lumiera.lifecycle import Hooks

Handler = Callable[..., Any]


@dataclass(frozen=True)
class CommandSpec:
    """A declared command: its handler and its arguments (name -> (hint, required))."""

    name: str
    handler: Handler
    params: dict[str, tuple[Any, bool]]
    doc: str


def command(fn: Handler) -> Handler:
    """Declare ``on_<name>`` as the handler of request ``<name>``.

    The handler takes keyword-only arguments; each needs a type hint (str,
    int, float, bool, list, dict, Any, or a union with None); those without a
    default are required.
    """
    if not fn.__name__.startswith("on_"):
        raise TypeError(f"command handler {fn.__name__} must be named on_<command>")
    fn.__lumiera_command__ = True  # type: ignore[attr-defined]
    return fn


def _spec_of(name: str, fn: Handler) -> CommandSpec:
    hints = typing.get_type_hints(fn)
    params = {}
    for p in inspect.signature(fn).parameters.values():
        if p.name == "self":
            continue
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(f"{fn.__qualname__}: argument {p.name} must be keyword-only")
        params[p.name] = (hints.get(p.name, Any), p.default is inspect.Parameter.empty)
    return CommandSpec(name, fn, params, inspect.getdoc(fn) or "")


@dataclass
class ActorContext:
    """What the runtime gives an actor: who it is, its configuration, and the bus."""

    name: str
    instance: str
    config: Config
    options: dict[str, Any]
    hooks: Hooks = field(default_factory=Hooks)
    # Publish on the events bus: (topic, body). The runtime adds sender and ts.
    publish: Callable[[str, dict[str, Any]], None] = lambda _t, _b: None
    # Announce a regular end of this subsystem (``error``: the user's work failed).
    end: Callable[[str | None], None] = lambda _e: None
    attached: bool = False


class Actor:
    """Base of the subsystem actors.

    Subclasses set ``name`` and ``summary``, declare commands with
    :func:`command`, and override the hooks they need. Hooks run in the
    subsystem process's main thread; an exception from one is a crash of the
    subsystem (reported to the supervisor, then a non-zero exit), except where
    a hook says otherwise.
    """

    name: ClassVar[str] = "actor"
    summary: ClassVar[str] = ""
    # Built from the @command methods when a subclass is defined.
    commands: ClassVar[dict[str, CommandSpec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, CommandSpec] = {}
        for klass in reversed(cls.__mro__):
            for attr, fn in vars(klass).items():
                if getattr(fn, "__lumiera_command__", False):
                    table[attr.removeprefix("on_")] = _spec_of(attr.removeprefix("on_"), fn)
        cls.commands = table

    def __init__(self, ctx: ActorContext) -> None:
        self.ctx = ctx
        self.log = logging.getLogger(f"lumiera.{ctx.name}")
        self.started_at: float | None = None

    # -- hooks ----------------------------------------------------------------------

    def on_start(self) -> None:
        """Start the subsystem's work; runs when all it depends on is running.

        Raising here is a start failure: the application shuts down in order, exit 1.
        """

    def on_stop(self) -> None:
        """Stop the subsystem's work (orderly or emergency); the process exits 0 next."""

    def on_failure(self, exc: BaseException) -> None:
        """An uncaught exception is ending the process; last chance to release things.

        Must not raise (an exception here is logged and ignored).
        """

    # -- requests -------------------------------------------------------------------

    def handle(self, command_name: str, args: dict[str, Any]) -> Any:
        """Run one request; returns the result or raises a LumieraError.

        Raises UnknownCommand or BadArguments before the handler runs; any other
        exception from the handler propagates (the runtime treats it as a crash).
        """
        spec = self.commands.get(command_name)
        if spec is None:
            known = ", ".join(sorted(self.commands))
            raise UnknownCommand(f"{self.ctx.name} has no command {command_name!r} (has: {known})")
        return spec.handler(self, **self._check_args(spec, args))

    @staticmethod
    def _check_args(spec: CommandSpec, args: dict[str, Any]) -> dict[str, Any]:
        unknown = set(args) - set(spec.params)
        if unknown:
            raise BadArguments(f"{spec.name}: unknown argument(s) {', '.join(sorted(unknown))}")
        checked = {}
        for pname, (hint, required) in spec.params.items():
            if pname not in args:
                if required:
                    raise BadArguments(f"{spec.name}: missing argument {pname!r}")
                continue
            try:
                checked[pname] = check_type(f"{spec.name}.{pname}", args[pname], hint)
            except BadMessage as e:
                raise BadArguments(str(e)) from None
        return checked

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
