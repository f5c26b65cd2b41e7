"""Every declared event kind round-trips; every malformed event is BadMessage naming why."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Annotated, Any, Union

import msgpack
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from lumiera.bus.codec import Limits
from lumiera.bus.events import (
    TOPICS,
    EmergencyExit,
    EngineRenderEnded,
    EngineStreamInfo,
    EventBody,
    ExtBody,
    LifecycleEvent,
    LogLine,
    PlayerRenderEnded,
    Record,
    RingStats,
    SessionChanged,
    StatsEngine,
    StatsPlayer,
    SubsystemState,
    Topic,
    check_forwardable,
    decode_event,
    encode_event,
    kind_of,
    topic_of,
)
from lumiera.bus.messages import TEXT_MAX, MaxLen
from lumiera.errors import BadMessage
from tests.unit.bus.strategies import plain

SETTINGS = settings(database=None, deadline=None, max_examples=60)

# -- strategies derived from the declarations ---------------------------------------------


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """Values of a declared field type (records included), within its bounds."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        limit = min(e.n for e in args[1:] if isinstance(e, MaxLen))
        at_bound = st.characters(codec="utf-8").map(lambda c: c * limit)  # the longest accepted
        return st.text(max_size=min(limit, 40)) | at_bound
    if origin in (Union, types.UnionType):
        return st.one_of(*(strategy_for(a) for a in args))
    if isinstance(hint, type) and issubclass(hint, Record):
        return record(hint)
    if origin is list:
        return st.lists(strategy_for(args[0]) if args[0] is not Any else plain, max_size=3)
    if origin is dict:
        return st.dictionaries(st.text(max_size=8), plain, max_size=4)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        type(None): st.none(),
        bool: st.booleans(),
        int: st.integers(min_value=-(2**63), max_value=2**63 - 1),
        float: st.floats(allow_nan=False),
        str: st.text(max_size=40),
    }
    return simple[hint]


def record(cls: type[Record]) -> st.SearchStrategy[Any]:
    if cls is ExtBody:
        keys = st.text(max_size=8).filter(lambda k: k not in ("sender", "ts"))
        return st.builds(ExtBody, fields=st.dictionaries(keys, plain, max_size=4))
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    return st.builds(cls, **{f.name: strategy_for(hints[f.name]) for f in fields})


segment = st.from_regex(r"\A[A-Za-z0-9_-]{1,12}\Z")


def topics_of(declared: Topic) -> st.SearchStrategy[str]:
    """Concrete topics that fall under ``declared`` (and no other declaration)."""
    parts = re.split(r"(<[^>]+>)", declared.pattern)
    pieces = [segment if p.startswith("<") else st.just(p) for p in parts if p]
    return st.tuples(*pieces).map("".join).filter(lambda t: topic_of(t) is declared)


EXT = topic_of("ext.anything")
DECLARED = [*TOPICS, EXT]

# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("declared", DECLARED, ids=lambda t: t.pattern)
@SETTINGS
@given(data=st.data())
def test_every_declared_kind_round_trips_through_encode_and_decode(declared, data):
    topic = data.draw(topics_of(declared))
    body = data.draw(record(declared.kind))
    sender = data.draw(st.text(min_size=1, max_size=64))
    ts = data.draw(st.floats(min_value=0, max_value=4e9))

    try:
        frames = encode_event(topic, body, sender, ts)
    except BadMessage as e:  # fields each within their bound, together past one message
        assert "the bus carries at most" in str(e)
        reject()
    event = decode_event(frames)

    assert (event.topic, event.sender, event.ts, event.body) == (topic, sender, ts, body)
    assert type(event.body) is declared.kind is kind_of(topic)
    wire = msgpack.unpackb(encode_event(topic, body, sender, ts)[1])
    assert wire == {"sender": sender, "ts": ts, **event.data()}


def test_an_event_larger_than_the_bus_carries_is_refused_where_it_is_made():
    error = "\U00010000" * TEXT_MAX  # the longest text, 4 bytes a character: 256 KiB
    info = {"id": "p1", "mode": "render", "state": "failed", "first": 0, "count": 2, "frame": 0}
    info |= {"frames": 0, "fps": 0.0, "dropped": 0, "eta_s": 0.0, "seconds": 0.0, "rate": "25"}
    info |= {"engine_stream": None, "ring": None, "output": error, "error": error}
    body = StatsPlayer.from_wire({"streams": [info, info]})  # each field valid: 1 MiB in all
    with pytest.raises(BadMessage, match=r"event stats\.player: \d+ bytes; the bus carries at"):
        encode_event("stats.player", body, "player")
    small = Limits(max_message_bytes=1000)
    with pytest.raises(BadMessage, match="carries at most 1000"):
        encode_event(
            "stats.player",
            StatsPlayer.from_wire({"streams": [info | {"error": "x" * 900, "output": None}]}),
            "player",
            limits=small,
        )


def test_nil_fields_that_default_to_nil_are_left_out_and_the_others_sent():
    state = SubsystemState(name="engine", state="running", pid=None)
    assert state.to_wire() == {"name": "engine", "state": "running", "pid": None}
    failed = SubsystemState(name="engine", state="failed", pid=7, reason="hung")
    assert failed.to_wire()["reason"] == "hung"


def test_a_body_built_from_a_commands_plain_answer_is_checked_and_typed():
    info = {"id": "p1", "mode": "render", "state": "done", "first": 0, "count": 2, "frame": 2}
    info |= {"frames": 2, "fps": 10, "dropped": 0, "eta_s": 0.0, "seconds": 0.2, "rate": "25"}
    info |= {"engine_stream": "s1", "ring": "render-64x64", "output": "/tmp/o.mkv"}
    ended = PlayerRenderEnded.from_wire(info)
    assert isinstance(ended, PlayerRenderEnded) and ended.fps == 10.0 and ended.error is None
    with pytest.raises(BadMessage, match="frames: str is not int"):
        PlayerRenderEnded.from_wire({**info, "frames": "2"})


# -- the table ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "topic, kind",
    [
        ("lifecycle.ON_SESSION_READY", LifecycleEvent),
        ("lifecycle.ON_EMERGENCY_EXIT", EmergencyExit),  # exact beats the pattern
        ("subsystem.engine.running", SubsystemState),
        ("log.player", LogLine),
        ("stats.viewer-640x360", RingStats),
        ("stats.engine", StatsEngine),  # not a ring named engine
        ("stats.player", StatsPlayer),
        ("session.changed", SessionChanged),
        ("engine.render.failed", EngineRenderEnded),
        ("player.render.done", PlayerRenderEnded),
        ("ext.my.tool.progress", ExtBody),
    ],
)
def test_a_concrete_topic_has_the_kind_of_its_declaration(topic, kind):
    assert kind_of(topic) is kind


@pytest.mark.parametrize(
    "topic", ["bogus", "subsystem.engine", "log.a.b", "stats.", "ext.", "engine.render", "extx"]
)
def test_an_undeclared_topic_is_bad_message_naming_it(topic):
    with pytest.raises(BadMessage, match=re.escape(repr(topic))):
        kind_of(topic)


def test_every_body_class_says_what_it_is():
    for declared in DECLARED:
        assert declared.kind.__doc__ and declared.kind.__doc__ != EventBody.__doc__


def test_no_body_declares_a_field_of_the_envelope_the_encoder_adds():
    for declared in DECLARED:
        fields = {f.name for f in dataclasses.fields(declared.kind)}  # type: ignore[arg-type]
        assert not fields & {"sender", "ts"}, declared.pattern


# -- what is refused ----------------------------------------------------------------------

ENVELOPE = {"sender": "engine", "ts": 1.5}
STATS = {**ENVELOPE, "workers": 2, "queued": 0}
STREAM = {"id": "s1", "ring": "r", "mode": "render", "first": 0, "count": 1, "position": 1}
STREAM |= {"state": "done", "frames": 1, "dropped": 0, "missed": 0, "failed": 0, "decoded": 1}
STREAM |= {"prefetch_lead": None, "lateness_ms_p50": None}


@pytest.mark.parametrize(
    "topic, body, why",
    [
        ("stats.engine", {**ENVELOPE, "queued": 0}, "missing field 'workers'"),
        ("stats.engine", {**STATS, "workers": "2"}, "workers: str is not int"),
        ("stats.engine", {**STATS, "workers": True}, "workers: bool is not int"),
        ("stats.engine", {**STATS, "bogus": 1}, "unknown field(s) bogus"),
        ("stats.engine", {**STATS, "streams": [{**STREAM, "id": 5}]}, "streams[0].id: int is not"),
        (
            "stats.engine",
            {**STATS, "streams": [{**STREAM, "x": 1}]},
            "streams[0]: unknown field(s) x",
        ),
        ("stats.engine", {**STATS, "streams": {}}, "streams: dict is not list"),
        ("stats.engine", {**STATS, "jobs": []}, "jobs: list is not dict"),
        ("stats.engine", {"ts": 1.0, "workers": 2, "queued": 0}, "missing field 'sender'"),
        ("stats.engine", {**STATS, "ts": True}, "ts: bool is not float"),
        ("stats.engine", {**STATS, "sender": 3}, "sender: int is not str"),
        ("stats.engine", {**STATS, "sender": "x" * 65}, "sender: longer than 64"),
        ("session.changed", {**ENVELOPE, "command": "c", "id": "1"}, "missing field 'revision'"),
        ("lifecycle.ON_EMERGENCY_EXIT", {**ENVELOPE, "event": "E"}, "missing field 'subsystem'"),
        ("bogus.topic", dict(ENVELOPE), "'bogus.topic' is not declared"),
    ],
)
def test_a_malformed_event_is_bad_message_naming_the_field(topic, body, why):
    frames = [topic.encode(), msgpack.packb(body)]
    with pytest.raises(BadMessage, match=re.escape(why)):
        decode_event(frames)


@pytest.mark.parametrize(
    "frames, why",
    [
        ([b"stats.engine"], "2 frames, not 1"),
        ([b"stats.engine", msgpack.packb(STATS), b""], "2 frames, not 3"),
        ([b"stats engine", msgpack.packb(STATS)], "printable ASCII"),
        ([b"stats.\xc3\xa9", msgpack.packb(STATS)], "printable ASCII"),
        ([b"", msgpack.packb(STATS)], "printable ASCII"),
        ([b"x" * 257, msgpack.packb(STATS)], "printable ASCII"),
        ([b"stats.engine", b"\xc1"], "not a msgpack message"),
        ([b"stats.engine", msgpack.packb([1])], "must be a map"),
        ([b"ext.t", msgpack.packb({**ENVELOPE, "k": msgpack.ExtType(1, b"")})], "extension"),
    ],
)
def test_malformed_frames_are_bad_message(frames, why):
    with pytest.raises(BadMessage, match=re.escape(why)):
        decode_event(frames)


def test_an_event_over_the_size_limit_is_bad_message():
    body = msgpack.packb({**ENVELOPE, "line": "x" * 2000, "stream": "stdout"})
    with pytest.raises(BadMessage, match="exceeds 1000"):
        decode_event([b"log.engine", body], Limits(max_message_bytes=1000))


def test_encoding_a_body_of_another_kind_is_a_type_error():
    with pytest.raises(TypeError, match=r"lifecycle\.ON_EMERGENCY_EXIT carries EmergencyExit"):
        encode_event("lifecycle.ON_EMERGENCY_EXIT", LifecycleEvent(event="X"), "appstate")
    with pytest.raises(TypeError, match=r"engine\.render\.done carries EngineRenderEnded"):
        encode_event("engine.render.done", EngineStreamInfo(**STREAM), "engine")  # type: ignore[arg-type]


def test_encoding_a_value_of_the_wrong_type_fails_where_it_is_made():
    with pytest.raises(BadMessage, match=r"event stats\.engine: workers: str is not int"):
        encode_event("stats.engine", StatsEngine(workers="2", queued=0), "engine")  # type: ignore[arg-type]
    with pytest.raises(BadMessage, match="is not declared"):
        encode_event("bogus", SessionChanged(command="c", id="1", revision=1), "session")
    with pytest.raises(BadMessage, match="envelope"):
        encode_event("ext.x", ExtBody(fields={"ts": 1}), "tool")
    with pytest.raises(BadMessage, match="not valid UTF-8"):
        encode_event("log.engine", LogLine(stream="stdout", line="\ud800"), "engine")


def test_the_encoder_alone_stamps_sender_and_time():
    frames = encode_event("session.changed", SessionChanged(command="c", id="1", revision=1), "s")
    event = decode_event(frames)
    assert event.sender == "s" and event.ts > 1.7e9
    assert "sender" not in event.data() and "ts" not in event.data()


# -- what the supervisor forwards ---------------------------------------------------------


def frames_of(topic: str, body: dict[str, Any]) -> list[bytes]:
    return [topic.encode(), msgpack.packb(body)]


def test_the_subsystems_events_and_the_users_ext_events_are_forwarded():
    changed = {**ENVELOPE, "command": "add_track", "id": "1", "revision": 3}
    event = check_forwardable(frames_of("session.changed", changed), 2)
    assert event.body == SessionChanged(command="add_track", id="1", revision=3)
    assert check_forwardable(frames_of("ext.tool.x", {**ENVELOPE, "n": 1}), 2).data() == {"n": 1}


@pytest.mark.parametrize(
    "topic, body, total, why",
    [
        ("lifecycle.ON_EMERGENCY_EXIT", ENVELOPE, 2, "reserved for the supervisor"),
        ("appstate.phase", {**ENVELOPE, "phase": "done"}, 2, "reserved"),
        ("subsystem.engine.failed", ENVELOPE, 2, "reserved"),
        ("log.engine", {**ENVELOPE, "stream": "stdout", "line": "x"}, 2, "reserved"),
        ("stats.viewer", ENVELOPE, 2, "reserved"),  # a ring's stats are the supervisor's
        ("ext.x", {**ENVELOPE, "sender": "appstate"}, 2, "sender 'appstate'"),
        ("ext.x", ENVELOPE, 3, "2 frames, not 3"),
        ("bogus.x", ENVELOPE, 2, "not declared"),
        ("stats.engine", ENVELOPE, 2, "missing field 'workers'"),
    ],
)
def test_the_forwarder_refuses_what_it_must_not_pass_on(topic, body, total, why):
    with pytest.raises(BadMessage, match=re.escape(why)):
        check_forwardable(frames_of(topic, body), total)
