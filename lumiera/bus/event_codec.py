"""The event codec: one encoder, one decoder, and the forwarder's rule.

An event is two frames, ``[topic, msgpack body]``; the body is a map of
``sender`` and ``ts`` (added by :func:`encode_event` alone) and the fields
declared for the topic in :mod:`lumiera.bus.topics`. :func:`decode_event`
checks the frames, the topic, and every field with the checkers of
:mod:`lumiera.bus.messages` before anything acts on it. Import these names
from :mod:`lumiera.bus.events`, the front of the event plane.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lumiera.bus.codec import DEFAULT_LIMITS, Limits, pack, unpack
from lumiera.bus.messages import Name, checker
from lumiera.bus.records import prepare
from lumiera.bus.topics import APPSTATE, ENVELOPE, TOPICS, EventBody, ExtBody, check_topic, topic_of
from lumiera.errors import BadMessage

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
        return self.body.to_wire()


def prepare_kinds() -> None:
    """Build the codec of every declared body now (about 10 ms), not at its first event.

    The supervisor calls it while its subsystems start, so that an event it
    must send at once (ON_EMERGENCY_EXIT at a crash) costs no first-use time.
    """
    for declared in TOPICS:
        prepare(declared.kind)


def kind_of(topic: str) -> type[EventBody]:
    """The body class of ``topic``; BadMessage naming the topic if it is not declared."""
    return topic_of(topic).kind


# -- the codec --------------------------------------------------------------------------


def encode_event(
    topic: str,
    body: EventBody,
    sender: str,
    ts: float | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[bytes]:
    """The frames ``[topic, msgpack body]`` of an event; ``ts`` defaults to now.

    Raises TypeError if ``body`` is not of ``topic``'s kind, BadMessage if the
    topic is not declared, a field's value does not match its declared type or
    the body is larger than ``limits`` allow (the same checks a receiver makes,
    so a bad event fails where it is made: every declared field within its bound
    can still add up to more than one message holds).
    """
    check_topic(topic)
    kind = kind_of(topic)
    if type(body) is not kind:
        raise TypeError(f"{topic} carries {kind.__name__}, not {type(body).__name__}")
    plain = body.to_wire()
    try:
        _check_sender(sender)
        kind.from_wire(plain)  # validate: what we send must pass decode_event
    except BadMessage as e:
        raise BadMessage(f"event {topic}: {e}") from None
    try:
        body_frame = pack({"sender": sender, "ts": time.time() if ts is None else ts, **plain})
    except UnicodeEncodeError as e:  # a lone surrogate: str, but not UTF-8
        raise BadMessage(f"event {topic}: a string is not valid UTF-8: {e.reason}") from None
    if len(body_frame) > limits.max_message_bytes:
        raise BadMessage(
            f"event {topic}: {len(body_frame)} bytes; the bus carries at most "
            f"{limits.max_message_bytes}"
        )
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
        return Event(topic, sender, ts, kind.from_wire(body))
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
