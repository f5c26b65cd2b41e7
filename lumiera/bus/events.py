"""Events on the bus: the one encoder, the one decoder, one Publisher, one Subscriber.

Every topic and its body are declared in :mod:`lumiera.bus.topics` (re-exported
here). An event is two frames, ``[topic, msgpack body]``; the body is a map of
``sender`` and ``ts`` (added by :func:`encode_event` alone) and the declared
fields. :func:`decode_event` checks the frames, the topic, and every field with
the checkers of :mod:`lumiera.bus.messages` before anything acts on it.

A :class:`Publisher` is a PUB connected to the instance's ``publish`` socket
(the supervisor forwards what it publishes to ``events``); a
:class:`Subscriber` is a SUB on ``events``. ``python -m lumiera.bus.events
--markdown`` prints the event table of docs/PROTOCOL.md.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from lumiera.bus.codec import DEFAULT_LIMITS, Limits, check_plain, pack, unpack
from lumiera.bus.messages import Check, Name, checker
from lumiera.bus.sockets import configure_bounded, recv_bounded
from lumiera.bus.topics import (
    APPSTATE,
    EXT_PREFIX,
    TOPICS,
    EmergencyExit,
    EngineRenderEnded,
    EngineStreamInfo,
    EventBody,
    ExtBody,
    LifecycleEvent,
    LogLine,
    PhaseChanged,
    PlayerRenderEnded,
    PlayerStreamInfo,
    ProblemReported,
    Record,
    RingConsumer,
    RingStats,
    SessionChanged,
    Shutdown,
    StatsEngine,
    StatsPlayer,
    SubsystemState,
    Topic,
    check_topic,
    topic_of,
)
from lumiera.errors import BadMessage, EventTimeout
from lumiera.runtime_dir import RuntimeDir

__all__ = [
    "APPSTATE",
    "EXT_PREFIX",
    "TOPICS",
    "EmergencyExit",
    "EngineRenderEnded",
    "EngineStreamInfo",
    "Event",
    "EventBody",
    "EventTimeout",
    "ExtBody",
    "LifecycleEvent",
    "LogLine",
    "PhaseChanged",
    "PlayerRenderEnded",
    "PlayerStreamInfo",
    "ProblemReported",
    "Publisher",
    "Record",
    "RingConsumer",
    "RingStats",
    "SessionChanged",
    "Shutdown",
    "StatsEngine",
    "StatsPlayer",
    "Subscriber",
    "SubsystemState",
    "Topic",
    "check_forwardable",
    "check_topic",
    "decode_event",
    "encode_event",
    "from_plain",
    "kind_of",
    "to_plain",
    "topic_of",
]

log = logging.getLogger("lumiera.bus")

ENVELOPE = ("sender", "ts")
CLOSE_LINGER_MS = 1000  # a closing Publisher's last events get this long to leave
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
    return [
        topic.encode(),
        pack({"sender": sender, "ts": time.time() if ts is None else ts, **plain}),
    ]


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


# -- the sockets --------------------------------------------------------------------------


class Publisher:
    """A PUB connected to the instance's ``publish`` socket; any thread may publish.

    Make it early (when the subsystem starts): a PUB loses what it sends until
    the bus has subscribed to it (the slow joiner). zmq sockets are not
    thread-safe, so sends go one at a time under a lock (also the memory
    barrier zmq asks for when a socket changes thread).
    """

    def __init__(
        self, rd: RuntimeDir, sender: str, context: zmq.Context[zmq.Socket[bytes]] | None = None
    ) -> None:
        self.sender = sender
        self._lock = threading.Lock()
        sock = (context or zmq.Context.instance()).socket(zmq.PUB)
        sock.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
        sock.connect(rd.endpoint("publish"))
        self._sock: zmq.Socket[bytes] | None = sock  # None once closed

    def publish(self, topic: str, body: EventBody) -> None:
        """Publish ``body`` on ``topic`` (``sender`` and ``ts`` added); any thread.

        Raises TypeError or BadMessage as :func:`encode_event` does. After
        :meth:`close` it does nothing: a worker thread ending late is no error.
        """
        frames = encode_event(topic, body, self.sender)
        with self._lock:
            if self._sock is not None:
                self._sock.send_multipart(frames)

    def close(self) -> None:
        """Close; what was sent has a bounded time (CLOSE_LINGER_MS) to leave."""
        with self._lock:
            if self._sock is not None:
                self._sock.close(linger=CLOSE_LINGER_MS)
                self._sock = None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscriber:
    """A SUB on the instance's ``events`` socket, receiving the topics of ``prefixes``.

    Not thread-safe: use it in one thread at a time. A new subscription takes
    effect a few milliseconds after it is made (nothing is replayed), so
    subscribe before doing what causes the event you wait for.
    """

    def __init__(self, rd: RuntimeDir, *prefixes: str, limits: Limits = DEFAULT_LIMITS) -> None:
        self.rd = rd
        self.limits = limits
        self.dropped = 0  # malformed events received and dropped
        self._topics: set[str] = set()
        self._sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.SUB)
        configure_bounded(self._sock, limits)
        self._sock.connect(rd.endpoint("events"))
        self.subscribe(*prefixes)

    def subscribe(self, *prefixes: str) -> None:
        """Receive the events whose topic starts with one of ``prefixes`` ("" is all) too."""
        for prefix in prefixes:
            if prefix not in self._topics:
                self._sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
                self._topics.add(prefix)

    def receive(self, timeout: float) -> Event | None:
        """The next valid event, or None when none came within ``timeout`` seconds.

        A malformed event is dropped with one warning in the log and counted in
        :attr:`dropped`; it is never raised.
        """
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            if not self._sock.poll(math.ceil(left * 1000)):
                return None
            frames, total = recv_bounded(self._sock, 2)
            try:
                if total != 2:
                    raise BadMessage(f"an event has 2 frames, not {total}")
                return decode_event(frames, self.limits)
            except BadMessage as e:
                self.dropped += 1
                log.warning("dropped a bad event from instance %s: %s", self.rd.instance, e)
            if time.monotonic() >= deadline:
                return None

    def wait(
        self,
        prefixes: str | tuple[str, ...],
        timeout: float,
        where: Callable[[Event], bool] = lambda _e: True,
    ) -> Event:
        """The next event whose topic starts with ``prefixes`` (one, or a tuple) and ``where``.

        Subscribes the prefixes first; events that do not match are passed
        over. Raises EventTimeout (a TimeoutError) after ``timeout`` seconds.
        """
        wanted = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
        self.subscribe(*wanted)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = self.receive(left)
            if event is not None and event.topic.startswith(wanted) and where(event):
                return event
        raise EventTimeout(
            f"no {' or '.join(p + '*' for p in wanted)} event within {timeout:g} s "
            f"from instance {self.rd.instance!r}"
        )

    def close(self) -> None:
        self._sock.close(linger=0)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m lumiera.bus.events --markdown [--update FILE]``: the table of PROTOCOL.md."""
    from lumiera.bus import event_docs

    return event_docs.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
