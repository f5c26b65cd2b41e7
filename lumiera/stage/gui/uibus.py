"""The UI-Bus: what travels between the GUI process and a page, declared once.

One websocket per page. Text frames are JSON objects ``{"type": KIND, ...fields}``;
each kind is a :class:`~lumiera.bus.records.Record` declared here, checked on
arrival by :func:`decode` (the same checkers as the bus) and, in the page, by
``uibus.js`` against :func:`schema` (served as ``/uibus.json``), so both ends
hold one declaration. Binary frames carry the viewer's pictures
(:data:`FRAME_HEADER`, then a JPEG) and a playback's sound (:data:`SOUND_HEADER`).

Down (GUI process -> page): ``hello`` on connect, ``session`` (the whole
timeline) then ``diff`` after each applied command, ``note`` and ``mark`` (the
GUI Notification facade), ``event`` (a bus event the page subscribed to),
``status`` (the instance's status), ``reply`` (the answer to an action),
``emergency`` (the reason, before the connection drops), ``viewer`` (the
viewer's counts).

Up (page -> GUI process): ``command`` (a session or player command, from
:data:`ALLOWED` only), ``quit``, ``subscribe`` (event topic prefixes),
``viewer`` (on/off, and the last frame drawn: the server sends the next
picture only after that ack, latest frame wins), ``clock`` (clock sync).

docs/UIBUS.md says the same for people; the tests hold the page's copy
(``/uibus.json``) to this module.
"""

from __future__ import annotations

import json
import struct
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

from lumiera.bus.messages import Id, Name, Text
from lumiera.bus.records import Record
from lumiera.bus.timeline import Clip, Media, Output, Timeline, Track, Transition
from lumiera.errors import BadMessage

VERSION = 1
MAX_MESSAGE_BYTES = 1 << 20  # one text frame from a page
# A viewer picture: frame number (int64), the ring's publish time (float64,
# CLOCK_MONOTONIC seconds), then the JPEG bytes.
FRAME_HEADER = struct.Struct("<qd")
# A viewer sound (a playback's frame of sound): FRAME_HEADER's fields (frame number, its
# publish time = its due time), SOUND_TAG (where a picture's JPEG begins), the sample
# rate (uint32), the channels (uint16), 2 bytes of padding, then int16 interleaved PCM.
SOUND_TAG = b"PCM1"
SOUND_HEADER = struct.Struct("<qd4sIH2x")

# What a page may ask for: everything else is refused (``not_allowed``).
ALLOWED: dict[str, frozenset[str]] = {
    "session": frozenset(
        {
            "add_media",
            "add_track",
            "remove_track",
            "add_clip",
            "move_clip",
            "trim_clip",
            "set_opacity",
            "set_gain",
            "remove_clip",
            "add_transition",
            "remove_transition",
            "set_output",
            "undo",
            "redo",
            "describe",
            "timeline",
            "history",
        }
    ),
    "player": frozenset({"play", "pause", "seek", "stop", "streams"}),
    "appstate": frozenset({"status"}),
}

NOTE_LEVELS = ("info", "warning", "error")
MARKS = ("error", "warning", "info", "selected", "none")


class UiMessage(Record):
    """Base of the UI-Bus kinds; ``KIND`` is the ``type`` on the wire."""

    KIND: ClassVar[str]
    UP: ClassVar[bool]  # sent by the page (else by the GUI process)


KINDS: dict[str, type[UiMessage]] = {}


def kind(name: str, *, up: bool) -> typing.Callable[[type[UiMessage]], type[UiMessage]]:
    """Register a UI-Bus kind under its wire ``type``; ``up``: the page sends it."""

    def register(cls: type[UiMessage]) -> type[UiMessage]:
        assert name not in KINDS, name
        cls.KIND, cls.UP = name, up
        KINDS[name] = cls
        return cls

    return register


# -- down: GUI process -> page ----------------------------------------------------------


@kind("hello", up=False)
@dataclass(frozen=True, kw_only=True)
class Hello(UiMessage):
    """First message on a connection: who answers, and the server's clock (ms)."""

    instance: Name
    version: int = VERSION
    server_ms: float  # time.monotonic() * 1000 when sent: the page's clock offset from it
    allowed: dict[str, list[str]] = field(default_factory=dict)


@kind("session", up=False)
@dataclass(frozen=True, kw_only=True)
class SessionState(UiMessage):
    """The whole session's timeline (on connect, and when a diff cannot be made)."""

    timeline: Timeline


@kind("diff", up=False)
@dataclass(frozen=True, kw_only=True)
class SessionDiff(UiMessage):
    """What one applied command changed, from ``revision`` ``base`` to ``revision``.

    ``media``/``clips``: added or changed elements, whole; ``removed_*``: ids;
    ``tracks``: the whole list (bottom to top) when it changed; ``output`` when
    it changed; ``transitions``: the whole list when it changed (an empty one:
    none left). An added transition comes with its clip ``b`` changed (extended
    over ``a``'s end), so a page never holds overlapping clips without one.
    """

    base: int
    revision: int
    command: Name = ""
    media: tuple[Media, ...] = ()
    clips: tuple[Clip, ...] = ()
    removed_media: list[Id] = field(default_factory=list)
    removed_clips: list[Id] = field(default_factory=list)
    tracks: tuple[Track, ...] | None = None
    output: Output | None = None
    transitions: tuple[Transition, ...] | None = None


@kind("note", up=False)
@dataclass(frozen=True, kw_only=True)
class Note(UiMessage):
    """An info, warning or error note for the user (the Notification facade's ``notify``)."""

    level: Name
    text: Text
    sender: Name = ""

    def invalid(self) -> str | None:
        return None if self.level in NOTE_LEVELS else f"level: one of {', '.join(NOTE_LEVELS)}"


@kind("mark", up=False)
@dataclass(frozen=True, kw_only=True)
class Mark(UiMessage):
    """Mark the page's element ``id`` (a clip, track or media id): ``none`` clears it."""

    id: Id
    mark: Name

    def invalid(self) -> str | None:
        return None if self.mark in MARKS else f"mark: one of {', '.join(MARKS)}"


@kind("event", up=False)
@dataclass(frozen=True, kw_only=True)
class BusEvent(UiMessage):
    """A bus event whose topic the page subscribed to (body as on the bus)."""

    topic: Text
    sender: Name
    ts: float
    body: dict[str, Any] = field(default_factory=dict)


@kind("status", up=False)
@dataclass(frozen=True, kw_only=True)
class Status(UiMessage):
    """The instance's status, as ``appstate status`` answers it."""

    status: dict[str, Any]


@kind("reply", up=False)
@dataclass(frozen=True, kw_only=True)
class Reply(UiMessage):
    """The answer to the page's action ``ref``: ``result``, or the error's code and message."""

    ref: int
    ok: bool
    result: Any = None
    code: Name | None = None
    message: Text | None = None


@kind("emergency", up=False)
@dataclass(frozen=True, kw_only=True)
class Emergency(UiMessage):
    """The application is ending in an emergency, and why; the connection drops next."""

    reason: Text
    subsystem: Name = ""


@kind("viewer", up=False)
@dataclass(frozen=True, kw_only=True)
class ViewerState(UiMessage):
    """The viewer of this page: pictures sent, dropped (latest wins), the last frame."""

    sent: int
    dropped: int
    frame: int | None = None
    ring: Name | None = None


# -- up: page -> GUI process ------------------------------------------------------------


@kind("command", up=True)
@dataclass(frozen=True, kw_only=True)
class Command(UiMessage):
    """Run ``command`` of subsystem ``to`` (session, player, appstate; :data:`ALLOWED` only)."""

    ref: int
    to: Name
    command: Name
    args: dict[str, Any] = field(default_factory=dict)

    def invalid(self) -> str | None:
        if self.command not in ALLOWED.get(self.to, frozenset()):
            return f"{self.to} {self.command} is not a command a page may send"
        return None


@kind("quit", up=True)
@dataclass(frozen=True, kw_only=True)
class Quit(UiMessage):
    """End the application in order (the main window closed)."""

    ref: int = 0


@kind("subscribe", up=True)
@dataclass(frozen=True, kw_only=True)
class Subscribe(UiMessage):
    """Receive bus events of these topic prefixes (replaces the page's earlier list)."""

    prefixes: list[Text]


@kind("viewer_ack", up=True)
@dataclass(frozen=True, kw_only=True)
class ViewerAck(UiMessage):
    """The page's viewer: ``on`` or not, and the last picture it drew (next one may come)."""

    on: bool = True
    frame: int | None = None


@kind("clock", up=True)
@dataclass(frozen=True, kw_only=True)
class Clock(UiMessage):
    """Clock sync: the page's ``performance.now()``-based time; answered by a reply."""

    ref: int
    page_ms: float


# -- encoding ---------------------------------------------------------------------------


def encode(message: UiMessage) -> str:
    """One text frame."""
    return json.dumps({"type": message.KIND, **message.to_wire()}, separators=(",", ":"))


def decode(text: str | bytes, *, up: bool = True) -> UiMessage:
    """Check and decode one text frame (from a page when ``up``); BadMessage says why."""
    if len(text) > MAX_MESSAGE_BYTES:
        raise BadMessage(f"a UI-Bus message of {len(text)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise BadMessage(f"not JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadMessage(f"a UI-Bus message is an object, not {type(data).__name__}")
    name = data.pop("type", None)
    cls = KINDS.get(name) if isinstance(name, str) else None
    if cls is None or cls.UP is not up:
        raise BadMessage(f"unknown UI-Bus message type {name!r}")
    return cls.from_wire(data, name)


def schema() -> dict[str, Any]:
    """The declaration for the page (``/uibus.json``): each kind's direction and fields."""
    kinds: dict[str, Any] = {}
    for name, cls in sorted(KINDS.items()):
        hints = typing.get_type_hints(cls, include_extras=True)
        kinds[name] = {
            "up": cls.UP,
            "doc": (cls.__doc__ or "").strip().splitlines()[0],
            "fields": {
                f.name: {
                    "type": _json_type(hints[f.name]),
                    "required": f.default is MISSING and f.default_factory is MISSING,
                }
                for f in fields(cls)  # type: ignore[arg-type]
            },
        }
    return {"version": VERSION, "kinds": kinds, "allowed": _allowed()}


def _allowed() -> dict[str, list[str]]:
    return {to: sorted(commands) for to, commands in ALLOWED.items()}


def _json_type(hint: Any) -> str:
    """The JSON type a page checks for a declared field (``any`` when it is free)."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _json_type(typing.get_args(hint)[0])
    if origin in (typing.Union, types.UnionType):
        kinds = sorted({_json_type(h) for h in typing.get_args(hint)} - {"null"})
        return "|".join([*kinds, "null"])
    if hint is type(None):
        return "null"
    if hint is bool:
        return "boolean"
    if hint in (int, float):
        return "number"
    if hint is str:
        return "string"
    if origin in (list, tuple) or hint in (list, tuple):
        return "array"
    if origin is dict or hint is dict or (isinstance(hint, type) and issubclass(hint, Record)):
        return "object"
    return "any"
