"""Every message kind round-trips; every malformed message is BadMessage before anything acts."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumiera.bus import messages as m
from lumiera.bus.codec import MAX_DEPTH, PROTOCOL_VERSION, Limits, pack, unpack
from lumiera.errors import BadMessage
from tests.unit.bus.strategies import plain

SETTINGS = settings(database=None, deadline=None, max_examples=200)

plain_map = st.dictionaries(st.text(max_size=12), plain, max_size=5)
name = st.text(max_size=64)
ident = st.text(max_size=128)
text = st.text(max_size=300)

STRATEGIES: dict[str, st.SearchStrategy[m.Message]] = {
    "request": st.builds(m.Request, id=ident, to=name, command=name, args=plain_map),
    "reply": st.builds(m.Reply, id=ident, result=plain),
    "error": st.builds(m.Error, id=st.none() | ident, code=name, message=text),
    "hello": st.builds(
        m.Hello,
        name=name,
        pid=st.integers(min_value=-(2**63), max_value=2**63 - 1),
        attached=st.booleans(),
    ),
    "welcome": st.builds(m.Welcome, instance=name, config=plain_map, options=plain_map),
    "start": st.just(m.Start()),
    "ready": st.just(m.Ready()),
    "heartbeat": st.just(m.Heartbeat()),
    "event": st.builds(m.Event, event=name),
    "ack": st.builds(m.Ack, event=name),
    "stop": st.builds(m.Stop, reason=text),
    "ending": st.builds(m.Ending, error=st.none() | text),
    "problem": st.builds(m.Problem, reason=text, traceback=text),
}
any_message = st.one_of(*STRATEGIES.values())


def frame(**body: Any) -> bytes:
    return pack(body)


def refused(data: bytes, match: str) -> None:
    with pytest.raises(BadMessage, match=match):
        m.decode(data)


# -- round trips -------------------------------------------------------------------------


def test_every_declared_kind_has_a_round_trip_strategy():
    assert set(STRATEGIES) == set(m.KINDS)
    assert all(kind == cls.KIND for kind, cls in m.KINDS.items())


@SETTINGS
@given(any_message)
def test_every_message_decodes_to_what_was_encoded(msg: m.Message):
    assert m.decode(m.encode(msg)) == msg


@SETTINGS
@given(any_message)
def test_the_wire_form_is_the_version_the_kind_and_exactly_the_declared_fields(msg: m.Message):
    body = unpack(m.encode(msg))
    assert body.pop("v") == PROTOCOL_VERSION
    assert body.pop("kind") == msg.KIND
    assert set(body) == {f.name for f in dataclasses.fields(msg)}  # type: ignore[arg-type]


def test_optional_fields_take_their_defaults_when_absent():
    assert m.decode(frame(v=1, kind="request", id="r1", to="gui", command="ping")) == m.Request(
        "r1", "gui", "ping", {}
    )
    assert m.decode(frame(v=1, kind="hello", name="gui", pid=7)) == m.Hello("gui", 7, False)
    assert m.decode(frame(v=1, kind="stop")) == m.Stop("")
    assert m.decode(frame(v=1, kind="ending")) == m.Ending(None)


def test_an_error_reply_may_have_no_request_id():
    msg = m.Error(None, "bad_message", "could not read the request")
    assert m.decode(m.encode(msg)) == msg


def test_names_may_be_exactly_as_long_as_declared():
    msg = m.Request("i" * 128, "t" * 64, "c" * 64)
    assert m.decode(m.encode(msg)) == msg
    long_text = m.Problem("r" * (1 << 16))
    assert m.decode(m.encode(long_text)) == long_text


# -- untrusted input ---------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=512))
def test_garbage_bytes_never_raise_anything_but_bad_message(data: bytes):
    try:
        msg = m.decode(data)
    except BadMessage:
        return
    assert isinstance(msg, m.Message)


@SETTINGS
@given(st.sampled_from(sorted(m.KINDS)), st.dictionaries(st.text(max_size=10), plain, max_size=5))
def test_a_known_kind_with_arbitrary_fields_decodes_or_fails_as_bad_message(
    kind: str, fields: dict[str, Any]
):
    try:
        msg = m.decode(pack({**fields, "v": 1, "kind": kind}))
    except BadMessage:
        return
    assert kind == msg.KIND


@SETTINGS
@given(any_message, st.sampled_from(["v", "kind"]), plain)
def test_any_envelope_but_version_1_and_a_known_kind_is_refused(
    msg: m.Message, key: str, value: Any
):
    body = unpack(m.encode(msg))
    body[key] = value
    kind = body["kind"]
    if type(body["v"]) is int and body["v"] == 1 and isinstance(kind, str) and kind in m.KINDS:
        return  # still a valid envelope
    with pytest.raises(BadMessage):
        m.from_body(body)


def test_an_oversized_frame_is_refused():
    data = m.encode(m.Problem("x" * 500))
    with pytest.raises(BadMessage, match="exceeds 100"):
        m.decode(data, Limits(max_message_bytes=100))


@pytest.mark.parametrize("version", [None, 0, 2, "1", [1]])
def test_a_wrong_protocol_version_is_refused(version: Any):
    refused(frame(v=version, kind="start"), "protocol version .* is not supported")


def test_a_missing_protocol_version_is_refused():
    refused(frame(kind="start"), r"protocol version None is not supported \(want 1\)")


@pytest.mark.parametrize("version", [True, 1.0])
def test_a_protocol_version_that_is_not_the_integer_1_is_refused(version: Any):
    refused(frame(v=version, kind="start"), "protocol version")


@pytest.mark.parametrize("kind", ["nope", "", "Request", 5, None])
def test_an_unknown_kind_is_refused(kind: Any):
    refused(frame(v=1, kind=kind), "unknown message kind")


def test_a_missing_field_is_refused_naming_it():
    refused(frame(v=1, kind="request", id="r", to="gui"), r"^request: missing field 'command'$")


def test_an_unknown_field_is_refused_naming_it():
    refused(frame(v=1, kind="ready", extra=1, more=2), r"^ready: unknown field\(s\) extra, more$")


def test_a_field_with_a_bytes_name_is_an_unknown_field():
    data = b"\x83\xa1v\x01\xa4kind\xa5ready\xc4\x01x\x01"  # {"v": 1, "kind": "ready", b"x": 1}
    refused(data, "ready: unknown field")


def test_a_message_body_that_is_not_a_map_is_refused():
    refused(pack([1, "start"]), "message body must be a map")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"kind": "hello", "name": "gui", "pid": True}, r"hello\.pid: bool is not int"),
        ({"kind": "hello", "name": "gui", "pid": 1.0}, r"hello\.pid: float is not int"),
        (
            {"kind": "hello", "name": "gui", "pid": 1, "attached": 1},
            r"hello\.attached: int is not bool",
        ),
        (
            {"kind": "request", "id": 5, "to": "gui", "command": "ping"},
            r"request\.id: int is not str",
        ),
        (
            {"kind": "request", "id": "r", "to": b"gui", "command": "ping"},
            r"request\.to: bytes is not str",
        ),
        (
            {"kind": "request", "id": "r", "to": "gui", "command": "p", "args": [1]},
            r"request\.args: list",
        ),
        (
            {"kind": "request", "id": "r", "to": "gui", "command": "p", "args": None},
            r"request\.args",
        ),
        (
            {"kind": "error", "id": 1, "code": "x", "message": "y"},
            r"error\.id: int is not str or nil",
        ),
        ({"kind": "ending", "error": 0}, r"ending\.error: int is not str or nil"),
        ({"kind": "event", "event": None}, r"event\.event: NoneType is not str"),
        ({"kind": "welcome", "instance": "i", "config": "c", "options": {}}, r"welcome\.config"),
    ],
)
def test_a_field_of_the_wrong_type_is_refused_naming_it(body: dict[str, Any], why: str):
    refused(pack({"v": 1, **body}), why)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (
            {"kind": "request", "id": "r", "to": "t" * 65, "command": "p"},
            r"request\.to: longer than 64",
        ),
        (
            {"kind": "request", "id": "r", "to": "t", "command": "p" * 65},
            r"request\.command: longer than 64",
        ),
        (
            {"kind": "request", "id": "i" * 129, "to": "t", "command": "p"},
            r"request\.id: longer than 128",
        ),
        ({"kind": "hello", "name": "n" * 65, "pid": 1}, r"hello\.name: longer than 64"),
        ({"kind": "problem", "reason": "r" * (1 << 16 | 1)}, r"problem\.reason: longer than 65536"),
    ],
)
def test_a_string_longer_than_declared_is_refused(body: dict[str, Any], why: str):
    refused(pack({"v": 1, **body}), why)


def test_a_name_limit_counts_characters_not_bytes():
    msg = m.Event("é" * 64)
    assert m.decode(m.encode(msg)) == msg


def test_free_form_fields_are_checked_for_plain_values_and_depth():
    deep: Any = 0
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    refused(frame(v=1, kind="reply", id="r", result=deep), f"nests deeper than {MAX_DEPTH}")
    refused(
        pack(
            {
                "v": 1,
                "kind": "request",
                "id": "r",
                "to": "t",
                "command": "c",
                "args": {"a": {b"k": 1}},
            }
        ),
        "map keys must be strings",
    )


@pytest.mark.parametrize(
    "value",
    [msgpack.ExtType(1, b"1234"), msgpack.ExtType(2, b""), msgpack.Timestamp(1, 0)],
    ids=["ext", "empty-ext", "timestamp"],
)
def test_an_extension_value_inside_a_field_is_refused(value: Any):
    refused(msgpack.packb({"v": 1, "kind": "reply", "id": "r", "result": value}), "ext")
