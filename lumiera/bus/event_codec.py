"""The event codec: one encoder, one decoder, and the forwarder's rule.

An event is two frames, ``[topic, msgpack body]``; the body is a map of
``sender`` and ``ts`` (added by :func:`encode_event` alone) and the fields
declared for the topic in :mod:`lumiera.bus.topics`. :func:`decode_event`
checks the frames, the topic, and every field with the checkers of
:mod:`lumiera.bus.messages` before anything acts on it. Import these names
from :mod:`lumiera.bus.events`, the front of the event plane.
"""

from __future__ import annotations

import dataclasses
import time
import typing
from dataclasses import dataclass
from typing import Any

from lumiera.bus.codec import DEFAULT_LIMITS, Limits, check_plain, pack, unpack
from lumiera.bus.messages import Check, Name, checker
from lumiera.bus.topics import APPSTATE, EventBody, ExtBody, Record, check_topic, topic_of
from lumiera.errors import BadMessage

ENVELOPE = ("sender", "ts")
_check_sender = checker("sender", Name)
_check_ts = checker("ts", float)


@dataclass(frozen=True)
class Event:
    """A received, validated event: its topic, who sent it and when, and its typed body."""

    topic: str
    sender: str
    ts: float
    body: EventBody

    def data(self) -> dict[str, Any]:
        """The body as a plain dict (nil fields left out), for tools that print JSON."""
        plain: dict[str, Any] = to_plain(self.body)
        return plain


def kind_of(topic: str) -> type[EventBody]:
    """The body class of ``topic``; BadMessage naming the topic if it is not declared."""
    return topic_of(topic).kind


# -- the codec --------------------------------------------------------------------------


def encode_event(topic: str, body: EventBody, sender: str, ts: float | None = None) -> list[bytes]:
    """The frames ``[topic, msgpack body]`` of an event; ``ts`` defaults to now.

    Raises TypeError if ``body`` is not of ``topic``'s kind, BadMessage if the
    topic is not declared or a field's value does not match its declared type
    (the same checks a receiver makes, so a bad event fails where it is made).
    """
    check_topic(topic)
    kind = kind_of(topic)
    if type(body) is not kind:
        raise TypeError(f"{topic} carries {kind.__name__}, not {type(body).__name__}")
    plain = to_plain(body)
    try:
        _check_sender(sender)
        _build(kind, plain)  # validate: what we send must pass decode_event
    except BadMessage as e:
        raise BadMessage(f"event {topic}: {e}") from None
    try:
        body_frame = pack({"sender": sender, "ts": time.time() if ts is None else ts, **plain})
    except UnicodeEncodeError as e:  # a lone surrogate: str, but not UTF-8
        raise BadMessage(f"event {topic}: a string is not valid UTF-8: {e.reason}") from None
    return [topic.encode(), body_frame]


def decode_event(frames: list[bytes], limits: Limits = DEFAULT_LIMITS) -> Event:
    """Validate and decode one untrusted event, or raise BadMessage naming what is wrong."""
    if len(frames) != 2:
        raise BadMessage(f"an event has 2 frames, not {len(frames)}")
    raw_topic, raw = frames
    try:
        topic = raw_topic.decode("ascii")
    except UnicodeDecodeError:
        raise BadMessage("topic must be 1-256 printable ASCII characters") from None
    check_topic(topic)
    kind = kind_of(topic)
    # Declared fields are walked by their checkers; a free-form body only by the codec.
    body = unpack(raw, limits, check_values=kind is ExtBody)
    try:
        for name in ENVELOPE:
            if name not in body:
                raise BadMessage(f"missing field {name!r}")
        sender, ts = _check_sender(body.pop("sender")), _check_ts(body.pop("ts"))
        return Event(topic, sender, ts, _build(kind, body))
    except BadMessage as e:
        raise BadMessage(f"event {topic}: {e}") from None


def check_forwardable(frames: list[bytes], total: int, limits: Limits = DEFAULT_LIMITS) -> Event:
    """The event a publisher sent (``total`` frames, the first kept), if it may be forwarded.

    The supervisor's rule for what goes from ``publish`` to ``events``. Raises
    BadMessage saying why not: not two frames, a bad or undeclared topic (a
    tool's own topics go under ``ext.``), a topic only the supervisor publishes,
    a body that is not its topic's kind, or a sender claiming to be the supervisor.
    """
    if total != 2 or len(frames) != 2:
        raise BadMessage(f"an event has 2 frames, not {total}")
    topic = frames[0].decode("ascii", errors="replace")
    check_topic(topic)
    if topic_of(topic).reserved:
        raise BadMessage(f"topic {topic!r} is reserved for the supervisor")
    event = decode_event(frames, limits)
    if event.sender == APPSTATE:
        raise BadMessage(f"{topic}: only the supervisor's events have sender {APPSTATE!r}")
    return event


def from_plain(kind: type[EventBody], data: dict[str, Any]) -> EventBody:
    """A body of class ``kind`` from a plain map of its fields (e.g. a command's answer).

    Every field is checked as :func:`decode_event` checks it; BadMessage names
    the field that fails.
    """
    body: EventBody = _build(kind, data)
    return body


def to_plain(value: Any) -> Any:
    """A record as a plain dict (nil fields that default to nil left out); else ``value``."""
    if isinstance(value, ExtBody):
        return dict(value.fields)
    if isinstance(value, Record):
        out = {}
        for name, _check, _required, omit_nil in _schema(type(value)):
            item = getattr(value, name)
            if item is not None or not omit_nil:
                out[name] = to_plain(item)
        return out
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


_Field = tuple[str, Check, bool, bool]  # name, checker, required, left out when nil
_SCHEMAS: dict[type[Record], list[_Field]] = {}


def _build(cls: type[Record], data: Any) -> Any:
    """An instance of ``cls`` from the plain map ``data``, every field checked."""
    if cls is ExtBody:
        for name in ENVELOPE:
            if name in data:
                raise BadMessage(f"{name!r} is the envelope's, not a field of an ext. body")
        check_plain(data)
        return ExtBody(fields=dict(data))
    if not isinstance(data, dict):
        raise BadMessage(f"{type(data).__name__} is not a map")
    schema = _schema(cls)
    names = {f[0] for f in schema}
    if not names >= data.keys():
        unknown = ", ".join(sorted(str(k) for k in data.keys() - names))
        raise BadMessage(f"unknown field(s) {unknown}")
    values = {}
    for name, check, required, _omit in schema:
        if name in data:
            values[name] = check(data[name])
        elif required:
            raise BadMessage(f"missing field {name!r}")
    return cls(**values)


def _schema(cls: type[Record]) -> list[_Field]:
    """Each field's checker, whether it is required and whether nil is left out (once per class)."""
    found = _SCHEMAS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        found = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            assert f.name not in ENVELOPE, f"{cls.__name__}.{f.name} is an envelope field"
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            check = _field_checker(f.name, hints[f.name])
            found.append((f.name, check, required, f.default is None))
        _SCHEMAS[cls] = found
    return found


def _field_checker(where: str, hint: Any) -> Check:
    """messages.checker, plus the nested records (a record, or a list of them)."""
    args = typing.get_args(hint)
    if isinstance(hint, type) and issubclass(hint, Record):
        nested: type[Record] = hint

        def one(value: Any) -> Any:
            try:
                return _build(nested, value)
            except BadMessage as e:  # the path to the field, outermost first
                raise BadMessage(f"{where}: {e}") from None

        return one
    item = args[0] if typing.get_origin(hint) is list and args else None
    if isinstance(item, type) and issubclass(item, Record):
        of: type[Record] = item

        def records(value: Any) -> Any:
            if not isinstance(value, list):
                raise BadMessage(f"{where}: {type(value).__name__} is not list")
            try:
                return [_build(of, v) for v in value]
            except BadMessage as e:
                raise BadMessage(f"{where}[]: {e}") from None

        return records
    return checker(where, hint)
