"""Every message kind of the ``control`` socket, declared once.

A message is a frozen dataclass; on the wire it is one msgpack map holding
``v`` (:data:`~lumiera.bus.codec.PROTOCOL_VERSION`), ``kind`` (the name given to
:func:`kind`) and exactly the declared fields. :func:`decode` checks the
version, the kind, that every required field is present, that no unknown field
is, and each field's type and length, before any code acts on the message.

docs/PROTOCOL.md describes the same table for clients in other languages; keep
the two in step.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, TypeVar, Union

from lumiera.bus.codec import DEFAULT_LIMITS, PROTOCOL_VERSION, Limits, check_plain, pack, unpack
from lumiera.errors import BadMessage


@dataclass(frozen=True)
class MaxLen:
    """Longest accepted string (in characters) for an annotated ``str`` field."""

    n: int


Name = Annotated[str, MaxLen(64)]
"""A subsystem, command, event or error-code name."""
Id = Annotated[str, MaxLen(128)]
"""A request id, chosen by the client; echoed in the reply."""
TEXT_MAX = 1 << 16
Text = Annotated[str, MaxLen(TEXT_MAX)]
"""Human-readable text: reasons, error messages, tracebacks."""
CUT = " ... [cut]"


class Message:
    """Base of all message kinds."""

    KIND: ClassVar[str]


KINDS: dict[str, type[Message]] = {}

M = TypeVar("M", bound=type[Message])


def kind(name: str) -> typing.Callable[[M], M]:
    """Register a message dataclass under its wire ``kind`` name."""

    def register(cls: M) -> M:
        assert name not in KINDS, name
        cls.KIND = name
        KINDS[name] = cls
        return cls

    return register


# -- tools and subsystems -> supervisor, and routed on to a subsystem ----------------


@kind("request")
@dataclass(frozen=True)
class Request(Message):
    """Ask ``to`` (a subsystem's name, or ``appstate`` for the supervisor) to run ``command``."""

    id: Id
    to: Name
    command: Name
    args: dict[str, Any] = field(default_factory=dict)


@kind("reply")
@dataclass(frozen=True)
class Reply(Message):
    """The successful answer to request ``id``."""

    id: Id
    result: Any = None


@kind("error")
@dataclass(frozen=True)
class Error(Message):
    """The failed answer to request ``id`` (nil when the request could not be read)."""

    id: Id | None
    code: Name
    message: Text

    def __post_init__(self) -> None:
        # A message may quote what it refuses (an argument of any size): cut to what a
        # Text holds, so that the answer itself stays readable (found by tests/fuzz).
        if len(self.message) > TEXT_MAX:
            object.__setattr__(self, "message", self.message[: TEXT_MAX - len(CUT)] + CUT)


# -- the subsystem handshake and lifecycle (subsystem process <-> supervisor) ---------


@kind("hello")
@dataclass(frozen=True)
class Hello(Message):
    """A subsystem process connected; ``attached`` for one run by ``lumiera run``."""

    name: Name
    pid: int
    attached: bool = False


@kind("welcome")
@dataclass(frozen=True)
class Welcome(Message):
    """The supervisor's answer to hello: the instance, the configuration and the options."""

    instance: Name
    config: dict[str, Any]
    options: dict[str, Any]


@kind("start")
@dataclass(frozen=True)
class Start(Message):
    """Supervisor -> subsystem: everything you depend on is ready; start now."""


@kind("ready")
@dataclass(frozen=True)
class Ready(Message):
    """Subsystem -> supervisor: started and running."""


@kind("heartbeat")
@dataclass(frozen=True)
class Heartbeat(Message):
    """Subsystem -> supervisor, every ``appstate.heartbeat_interval``, from its main loop."""


@kind("event")
@dataclass(frozen=True)
class Event(Message):
    """Supervisor -> subsystem: run your hooks for lifecycle ``event``, then ack."""

    event: Name


@kind("ack")
@dataclass(frozen=True)
class Ack(Message):
    """Subsystem -> supervisor: my hooks for ``event`` ran."""

    event: Name


@kind("stop")
@dataclass(frozen=True)
class Stop(Message):
    """Supervisor -> subsystem: stop and exit 0.

    ``emergency`` is set when another subsystem crashed: the subsystem runs its
    ON_EMERGENCY_EXIT hooks instead of its ON_GLOBAL_SHUTDOWN hooks.
    """

    reason: Text = ""
    emergency: bool = False


@kind("ending")
@dataclass(frozen=True)
class Ending(Message):
    """Subsystem -> supervisor: I end regularly (the application ends in order).

    ``error`` is set when the user's work failed (a script raised): still an
    orderly end, but ``lumiera up`` then exits 1.
    """

    error: Text | None = None


@kind("problem")
@dataclass(frozen=True)
class Problem(Message):
    """Subsystem -> supervisor: an uncaught exception; the process exits non-zero next."""

    reason: Text
    traceback: Text = ""


# -- encoding and validation ----------------------------------------------------------


def encode(message: Message) -> bytes:
    """The wire form of ``message``."""
    body = {"v": PROTOCOL_VERSION, "kind": message.KIND}
    for fname in _fields(type(message)):
        body[fname] = getattr(message, fname)
    return pack(body)


def decode(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Validate and decode one untrusted frame, or raise BadMessage saying why."""
    # The field checkers below walk the free-form fields (Any, dict, list) for
    # plain values, so the codec need not walk the whole body a second time.
    return from_body(unpack(data, limits, check_values=False))


def from_body(body: dict[str, Any]) -> Message:
    """Validate a decoded map against the declared kinds."""
    version = body.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise BadMessage(f"protocol version {version!r} is not supported (want {PROTOCOL_VERSION})")
    name = body.get("kind")
    cls = KINDS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise BadMessage(f"unknown message kind {name!r}")
    fields = _fields(cls)
    if len(body) - 2 > len(fields) or not fields.keys() >= body.keys() - _ENVELOPE:
        unknown = body.keys() - _ENVELOPE - fields.keys()
        raise BadMessage(f"{name}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    values = {}
    for fname, (check, required) in fields.items():
        if fname in body:
            values[fname] = check(body[fname])
        elif required:
            raise BadMessage(f"{name}: missing field {fname!r}")
    return cls(**values)


_ENVELOPE = {"v", "kind"}
Check = Callable[[Any], Any]
_FIELDS: dict[type[Message], dict[str, tuple[Check, bool]]] = {}


def _fields(cls: type[Message]) -> dict[str, tuple[Check, bool]]:
    """Each field's compiled checker and whether it is required (built once per kind)."""
    cached = _FIELDS.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls, include_extras=True)
    out = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out[f.name] = (checker(f"{cls.KIND}.{f.name}", hints[f.name]), required)
    _FIELDS[cls] = out
    return out


def check_type(where: str, value: Any, hint: Any) -> Any:
    """``value`` if it matches the type ``hint``, else BadMessage (see :func:`checker`)."""
    return checker(where, hint)(value)


_CHECKERS: dict[tuple[str, Any], Check] = {}


def checker(where: str, hint: Any) -> Check:
    """A function that returns its argument if it matches ``hint``, else raises BadMessage.

    Understands the hints used in message and command declarations: str (with
    MaxLen), int, float (ints accepted and converted), bool, None, unions,
    list, dict with str keys, Any, and the contract's types (a class with a
    ``from_wire`` classmethod, e.g. :class:`~lumiera.bus.timeline.Timeline`).
    Free-form values (Any, dict, list) must be built only of plain msgpack
    values. Built once per (place, hint).
    """
    key = (where, hint)
    found = _CHECKERS.get(key)
    if found is None:
        found = _CHECKERS[key] = _compile(where, hint)
    return found


def _compile(where: str, hint: Any) -> Check:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *extras = typing.get_args(hint)
        inner = _compile(where, base)
        limits = [e.n for e in extras if isinstance(e, MaxLen)]
        if not limits:
            return inner
        n = min(limits)

        def bounded(value: Any) -> Any:
            value = inner(value)
            if len(value) > n:
                raise BadMessage(f"{where}: longer than {n} characters")
            return value

        return bounded
    wire = getattr(hint, "from_wire", None)
    if isinstance(hint, type) and wire is not None:
        # A contract type (lumiera.bus.timeline): it decodes and checks itself, and its
        # own error (BadTimeline, a BadMessage) names the field that failed.
        def contract(value: Any) -> Any:
            return wire(value, where)

        return contract
    if origin in (Union, types.UnionType):
        options = [_compile(where, h) for h in typing.get_args(hint)]

        def union(value: Any) -> Any:
            for option in options:
                try:
                    return option(value)
                except BadMessage:
                    continue
            raise BadMessage(f"{where}: {type(value).__name__} is not {_describe(hint)}")

        return union
    if origin is list and typing.get_args(hint) and typing.get_args(hint)[0] is not Any:
        item = _compile(f"{where}[]", typing.get_args(hint)[0])

        def items(value: Any) -> Any:
            if not isinstance(value, list):
                raise BadMessage(f"{where}: {type(value).__name__} is not list")
            return [item(v) for v in value]

        return items
    if hint is Any or origin is list or hint is list or origin is dict or hint is dict:
        want = list if (origin is list or hint is list) else dict if hint is not Any else object

        def free(value: Any) -> Any:
            if not isinstance(value, want):
                raise BadMessage(f"{where}: {type(value).__name__} is not {_describe(hint)}")
            check_plain(value)
            return value

        return free
    if hint is float:

        def number(value: Any) -> Any:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            raise BadMessage(f"{where}: {type(value).__name__} is not float")

        return number
    if hint is type(None) or hint in (str, int, bool, bytes):
        exact = hint

        def simple(value: Any) -> Any:
            # type(), not isinstance: bool is an int, and a bool where an int belongs is a mistake
            if type(value) is exact:
                return value
            raise BadMessage(f"{where}: {type(value).__name__} is not {_describe(hint)}")

        return simple
    raise TypeError(f"{where}: unsupported type hint {hint!r}")  # a declaration bug


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if hint is type(None):
        return "nil"
    return getattr(hint, "__name__", str(hint))
