"""Request handlers declared as methods: the command table of an actor or of the supervisor.

A handler is a method ``on_<command>`` marked with :func:`command`; its
keyword-only parameters, with type hints, are the command's arguments. The
table is built once per class (``Commands.commands``), and :meth:`Commands.handle`
validates the arguments against it before the handler runs: no string ``if``
chains, and one place where arguments are checked.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from lumiera.bus.messages import check_type
from lumiera.errors import BadArguments, BadMessage, UnknownCommand

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

    Where ``on_<name>`` is taken by a lifecycle hook (``on_start``, ``on_stop``,
    ``on_tick``...), name the handler ``cmd_<name>`` instead.

    The handler takes keyword-only arguments; each needs a type hint (str,
    int, float, bool, list, dict, Any, or a union with None); those without a
    default are required.
    """
    if not fn.__name__.startswith(("on_", "cmd_")):
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


def _name(attr: str) -> str:
    return attr.removeprefix("on_") if attr.startswith("on_") else attr.removeprefix("cmd_")


class Commands:
    """A class whose ``@command`` methods form its command table."""

    # Built from the @command methods when a subclass is defined.
    commands: ClassVar[dict[str, CommandSpec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A command declared anywhere in the hierarchy is answered by the most
        # derived definition of its method, decorated again or not.
        declared = {
            attr
            for klass in cls.__mro__
            for attr, fn in vars(klass).items()
            if getattr(fn, "__lumiera_command__", False)
        }
        cls.commands = {
            _name(attr): _spec_of(_name(attr), getattr(cls, attr)) for attr in sorted(declared)
        }

    @property
    def owner(self) -> str:
        """Who answers (for error messages)."""
        return type(self).__name__

    def handle(self, command_name: str, args: dict[str, Any]) -> Any:
        """Run one request; returns the result or raises a LumieraError.

        Raises UnknownCommand or BadArguments before the handler runs; any other
        exception from the handler propagates (the runtime treats it as a crash).
        """
        spec = self.commands.get(command_name)
        if spec is None:
            known = ", ".join(sorted(self.commands))
            raise UnknownCommand(f"{self.owner} has no command {command_name!r} (has: {known})")
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
                if type(e) is not BadMessage:  # a contract's own error (BadTimeline) keeps its code
                    raise
                raise BadArguments(str(e)) from None
        return checked
