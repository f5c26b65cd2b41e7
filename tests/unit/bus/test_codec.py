"""The msgpack codec: what it lets through, and that untrusted bytes fail only as BadMessage."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumiera.bus.codec import MAX_DEPTH, Limits, check_plain, pack, unpack
from lumiera.errors import BadMessage
from tests.unit.bus.strategies import plain

SETTINGS = settings(database=None, deadline=None, max_examples=300)

bodies = st.dictionaries(st.text(max_size=8), plain, max_size=6)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


@SETTINGS
@given(bodies)
def test_any_map_of_plain_values_survives_pack_and_unpack(body: dict[str, Any]):
    assert unpack(pack(body)) == body


@SETTINGS
@given(st.binary(max_size=512))
def test_garbage_bytes_never_raise_anything_but_bad_message(data: bytes):
    try:
        body = unpack(data)
    except BadMessage:
        return
    assert isinstance(body, dict)
    check_plain(body)


@SETTINGS
@given(bodies, st.data())
def test_a_truncated_or_corrupted_frame_fails_only_as_bad_message(
    body: dict[str, Any], data: st.DataObject
):
    frame = bytearray(pack(body))
    at = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    frame[at] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(frame)))
    with contextlib.suppress(BadMessage):
        unpack(bytes(frame[:cut]))


def test_a_frame_over_the_byte_limit_is_refused_before_it_is_read():
    frame = pack({"text": "x" * 100})
    with pytest.raises(BadMessage, match=rf"^frame of {len(frame)} bytes exceeds 64$"):
        unpack(frame, Limits(max_message_bytes=64))


def test_a_frame_at_the_byte_limit_is_accepted():
    frame = pack({"text": "x" * 100})
    assert unpack(frame, Limits(max_message_bytes=len(frame))) == {"text": "x" * 100}


def test_a_length_header_larger_than_the_frame_allows_is_refused():
    # A str8 header announcing 200 bytes inside a 64-byte limit: refused, nothing allocated.
    frame = b"\x81\xa1k\xd9\xc8" + b"x" * 40
    with pytest.raises(BadMessage, match="not a msgpack message"):
        unpack(frame, Limits(max_message_bytes=64))


@pytest.mark.parametrize("code", [0, 5, 127])
def test_an_extension_type_is_refused(code: int):
    for payload in (b"", b"payload"):
        with pytest.raises(BadMessage):
            unpack(msgpack.packb({"x": msgpack.ExtType(code, payload)}))


def test_a_msgpack_timestamp_is_refused():
    with pytest.raises(BadMessage):
        unpack(msgpack.packb({"when": msgpack.Timestamp(1_700_000_000, 0)}))


@pytest.mark.parametrize(
    "body",
    [{1: "int key"}, {b"raw": "bytes key"}, {"ok": {b"raw": 1}}, {"ok": [{2: "deep"}]}],
    ids=["int", "bytes", "nested-bytes", "in-a-list"],
)
def test_map_keys_must_be_strings_at_every_level(body: dict[Any, Any]):
    with pytest.raises(BadMessage):
        unpack(msgpack.packb(body, use_bin_type=True))


@pytest.mark.parametrize("value", [[1, 2], "text", 7, None, b"bytes"])
def test_a_body_that_is_not_a_map_is_refused(value: Any):
    with pytest.raises(BadMessage, match="message body must be a map"):
        unpack(msgpack.packb(value, use_bin_type=True))


def test_nesting_deeper_than_the_limit_is_refused():
    with pytest.raises(BadMessage, match=f"message nests deeper than {MAX_DEPTH}"):
        unpack(pack({"deep": nested(MAX_DEPTH + 1)}))


def test_nesting_up_to_the_limit_is_accepted():
    body = {"deep": nested(MAX_DEPTH - 1)}
    assert unpack(pack(body)) == body


def test_nesting_far_deeper_than_msgpack_can_follow_is_still_bad_message():
    frame = b"\x81\xa1d" + b"\x91" * 100_000 + b"\xc0"
    with pytest.raises(BadMessage):
        unpack(frame)


def test_extra_bytes_after_the_message_are_refused():
    with pytest.raises(BadMessage, match="ExtraData"):
        unpack(pack({"a": 1}) + b"\x00")


def test_an_empty_frame_is_refused():
    with pytest.raises(BadMessage):
        unpack(b"")


def test_invalid_utf8_in_a_string_is_refused():
    with pytest.raises(BadMessage):
        unpack(b"\x81\xa1k\xa2\xff\xfe")


def test_strings_and_bytes_stay_apart():
    assert unpack(pack({"s": "text", "b": b"\x00\xff"})) == {"s": "text", "b": b"\x00\xff"}


def test_check_plain_refuses_values_msgpack_cannot_carry():
    for value in ({"t": (1, 2)}, {"s": {1, 2}}, {"o": object()}):
        with pytest.raises(BadMessage, match="is not accepted"):
            check_plain(value)


def test_unpack_without_value_checks_leaves_the_walk_to_the_caller():
    frame = pack({"deep": nested(MAX_DEPTH + 5)})
    assert unpack(frame, check_values=False) == {"deep": nested(MAX_DEPTH + 5)}
