"""Every event topic the system publishes, declared once with its body's fields and types.

A body is a frozen dataclass (an :class:`EventBody`); what a body nests (a
stream's description, a ring's consumer) is a :class:`Record`. :data:`TOPICS`
says which body each topic carries and who publishes it; a topic with a
variable segment is declared as a pattern (``log.<name>``), and an exact
declaration wins over a pattern (``stats.engine`` is not a ring's stats).

On the wire a body is one msgpack map: ``sender`` and ``ts`` (added by the
encoder in :mod:`lumiera.bus.events`, never by callers) and the declared
fields. A field whose default is nil is left out while it is nil. Field types
are checked by the checkers of :mod:`lumiera.bus.messages`.

Topics under ``ext.`` are the user's own (a tool's): their body is free-form
(:class:`ExtBody`), every key but ``sender`` and ``ts`` plain msgpack.

docs/PROTOCOL.md holds the table rendered from these declarations
(``python -m lumiera.bus.events --markdown``); a test keeps the two equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Self

from lumiera.bus.codec import check_plain
from lumiera.bus.messages import Id, Name, Text
from lumiera.bus.records import Record
from lumiera.errors import BadMessage

EXT_PREFIX = "ext."
MAX_TOPIC = 256
APPSTATE = "appstate"  # the supervisor's name as a sender


ENVELOPE = ("sender", "ts")  # the encoder's fields of every body, never a declared one


class EventBody(Record):
    """Base of the declared event bodies: one frozen dataclass per kind, named after its topic.

    A body, and what it nests, is a :class:`~lumiera.bus.records.Record`: one wire
    codec (``to_wire``/``from_wire``) for it and for the timeline.
    """


# Each record is @dataclass(frozen=True, kw_only=True): built with named fields
# only, so a subclass may add required fields after its base's optional ones.


# -- published by the supervisor -------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LifecycleEvent(EventBody):
    """A lifecycle event (``lifecycle.<EVENT>``); ``event`` is the topic's last segment."""

    event: Name


@dataclass(frozen=True, kw_only=True)
class EmergencyExit(LifecycleEvent):
    """An emergency began: ``subsystem`` (``appstate``: the supervisor itself) failed so."""

    subsystem: Name
    exit_code: int | None
    signal: int | None
    reason: Text


@dataclass(frozen=True, kw_only=True)
class PhaseChanged(EventBody):
    """The supervisor entered ``phase`` (starting, opening, running, closing, stopping, ...)."""

    phase: Name


@dataclass(frozen=True, kw_only=True)
class Shutdown(EventBody):
    """An orderly shutdown began, and why (``stop requested``, ``<name> ended``, ...)."""

    reason: Text


@dataclass(frozen=True, kw_only=True)
class ProblemReported(EventBody):
    """An error was recorded (``lumiera up`` exits 1 if the end is orderly)."""

    message: Text


@dataclass(frozen=True, kw_only=True)
class SubsystemState(EventBody):
    """Subsystem ``name`` changed its public state to ``state``.

    ``reason`` comes on ``failed`` when the failure was the subsystem's own.
    """

    name: Name
    state: Name
    pid: int | None
    reason: Text | None = None


@dataclass(frozen=True, kw_only=True)
class LogLine(EventBody):
    """One line (no newline) of a subsystem's stdout or stderr; its sender is the subsystem."""

    stream: Name
    line: Text


@dataclass(frozen=True, kw_only=True)
class RingConsumer(Record):
    """One attached consumer of a ring."""

    entry: int
    pid: int
    alive: bool
    released: int
    frames_read: int
    drops: int


@dataclass(frozen=True, kw_only=True)
class RingStats(EventBody):
    """A frame ring's geometry, counters and consumers (the ``rings`` entry of ``status``)."""

    name: Name
    segment: Text
    policy: Name
    slots: int
    slot_bytes: int
    size_bytes: int
    frames_written: int
    fill: int
    drops: int
    producer_drops: int
    consumers: list[RingConsumer] = field(default_factory=list)


# -- published by the subsystems -----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SessionChanged(EventBody):
    """A session command was applied and is durable: its ``args`` as sent, what it ``applied``."""

    command: Name
    id: Id
    revision: int
    # Left out when they would make the event too large (docs/RECORDING.md).
    args: dict[str, Any] | None = None
    applied: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class EngineStreamInfo(Record):
    """An engine stream: a frame range of a timeline computed into a ring.

    ``position`` is the next frame it was on; ``missed`` counts frames whose job
    a worker took after its deadline, ``failed`` jobs that raised (a stream ends
    at the first); ``prefetch_lead`` is nil when no clip is visible,
    ``lateness_ms_p50`` (playback) the median of write time minus due time.
    """

    id: Name
    ring: Name
    mode: Name
    first: int
    count: int
    position: int
    state: Name
    frames: int
    dropped: int
    missed: int
    failed: int
    decoded: int
    prefetch_lead: int | None
    lateness_ms_p50: float | None
    error: Text | None = None


@dataclass(frozen=True, kw_only=True)
class EngineRenderEnded(EngineStreamInfo, EventBody):
    """An engine stream ended: state ``done`` or ``stopped``, or ``failed`` with ``error``."""

    seconds: float


@dataclass(frozen=True, kw_only=True)
class StatsEngine(EventBody):
    """The engine's workers, queue, job counters, frame cache and running streams."""

    workers: int
    queued: int
    jobs: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    streams: list[EngineStreamInfo] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class SoundInfo(Record):
    """A playback's sound: where it goes (the ``[audio]`` sink) and how it went."""

    sink: Name
    ring: Name
    rate: int
    channels: int
    sent: int  # frames of sound given to the sink
    dropped: int  # frames of sound not mixed in time (never played late)
    stale: int  # frames published before a pause or seek, not played
    error: Text | None = None


@dataclass(frozen=True, kw_only=True)
class PlayerStreamInfo(Record):
    """A Player stream: a render to a file or a playback into the viewer ring.

    Playback has ``start`` and ``start_frame``: frame ``start_frame`` is due at
    ``start`` (CLOCK_MONOTONIC), frame k at ``start + (k - start_frame) / rate``.
    """

    id: Name
    mode: Name
    state: Name
    first: int
    count: int
    frame: int
    frames: int
    fps: float
    dropped: int
    eta_s: float
    seconds: float
    rate: Name
    engine_stream: Name | None
    ring: Name | None
    start: float | None = None
    start_frame: int | None = None
    output: Text | None = None
    error: Text | None = None
    audio_ring: Name | None = None  # a playback with sound: its ring (``viewer-audio-<M>mb``)
    sound: SoundInfo | None = None  # ... and its sink's state


@dataclass(frozen=True, kw_only=True)
class PlayerRenderEnded(PlayerStreamInfo, EventBody):
    """A render to a file ended: ``done`` (the file is complete), else ``failed``/``stopped``."""


@dataclass(frozen=True, kw_only=True)
class StatsPlayer(EventBody):
    """The Player's running and paused streams."""

    streams: list[PlayerStreamInfo] = field(default_factory=list)


# -- the user's own ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ExtBody(EventBody):
    """A user's event under ``ext.``: free-form; on the wire its fields are the body's keys."""

    fields: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return dict(self.fields)

    @classmethod
    def from_wire(cls, data: Any, where: str = "") -> Self:
        """Any map of plain values whose keys are not the envelope's."""
        if not isinstance(data, dict):
            raise BadMessage(f"{type(data).__name__} is not a map")
        for name in ENVELOPE:
            if name in data:
                raise BadMessage(f"{name!r} is the envelope's, not a field of an ext. body")
        check_plain(data)
        return cls(fields=dict(data))


# -- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    """One declared topic: its pattern (``<x>`` is one variable segment), kind and publisher."""

    pattern: str
    kind: type[EventBody]
    publisher: str  # who publishes it: appstate (reserved: never forwarded) or a subsystem
    when: str

    @property
    def reserved(self) -> bool:
        """Only the supervisor publishes it: the forwarder drops it from anyone else."""
        return self.publisher == APPSTATE


TOPICS: tuple[Topic, ...] = (
    Topic("lifecycle.<EVENT>", LifecycleEvent, APPSTATE, "each lifecycle event (10.2)"),
    Topic(
        "lifecycle.ON_EMERGENCY_EXIT",
        EmergencyExit,
        APPSTATE,
        "an emergency began (11.5), instead of ON_GLOBAL_SHUTDOWN",
    ),
    Topic("appstate.phase", PhaseChanged, APPSTATE, "the supervisor entered a phase (10.4)"),
    Topic("appstate.shutdown", Shutdown, APPSTATE, "an orderly shutdown began"),
    Topic("appstate.problem", ProblemReported, APPSTATE, "an error was recorded"),
    Topic(
        "subsystem.<name>.<state>",
        SubsystemState,
        APPSTATE,
        "a subsystem's public state changed (10.5)",
    ),
    Topic(
        "log.<name>",
        LogLine,
        APPSTATE,
        "a line of a spawned subsystem's output (sender: the subsystem)",
    ),
    Topic(
        "stats.<ring>",
        RingStats,
        APPSTATE,
        "every `[rings] stats_interval` s, for each ring",
    ),
    Topic("session.changed", SessionChanged, "session", "each applied command (8.4)"),
    Topic("engine.render.done", EngineRenderEnded, "engine", "a stream ended done or stopped"),
    Topic("engine.render.failed", EngineRenderEnded, "engine", "a stream failed"),
    Topic("stats.engine", StatsEngine, "engine", "every `[engine] stats_interval` s"),
    Topic("player.render.done", PlayerRenderEnded, "player", "a render's file is complete"),
    Topic("player.render.failed", PlayerRenderEnded, "player", "a render failed or was stopped"),
    Topic(
        "stats.player",
        StatsPlayer,
        "player",
        "every `[engine] stats_interval` s while it has streams",
    ),
)

_EXACT: dict[str, Topic] = {t.pattern: t for t in TOPICS if "<" not in t.pattern}
_PATTERNS: list[tuple[re.Pattern[str], Topic]] = [
    (re.compile(re.sub(r"<[^>]+>", "[^.]+", re.escape(t.pattern)) + r"\Z"), t)
    for t in TOPICS
    if "<" in t.pattern
]
_EXT = Topic(f"{EXT_PREFIX}<anything>", ExtBody, "anyone", "a user's tool's own events")


def check_topic(topic: str) -> None:
    """Raise BadMessage unless ``topic`` is 1-256 printable ASCII characters (0x21-0x7E)."""
    if not 0 < len(topic) <= MAX_TOPIC or not all("!" <= c <= "~" for c in topic):
        raise BadMessage("topic must be 1-256 printable ASCII characters")


def topic_of(topic: str) -> Topic:
    """The declaration ``topic`` falls under; BadMessage naming it if none does."""
    found = _EXACT.get(topic)
    if found is not None:
        return found
    if topic.startswith(EXT_PREFIX) and len(topic) > len(EXT_PREFIX):
        return _EXT
    for pattern, declared in _PATTERNS:
        if pattern.match(topic):
            return declared
    raise BadMessage(f"topic {topic!r} is not declared (a tool's own topics go under ext.)")
