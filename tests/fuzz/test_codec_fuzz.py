"""The codecs without sockets: any bytes decode or fail as BadMessage; valid messages round-trip.

Every message kind and every event topic is taken from its declaration
(:mod:`tests.fuzz.strategies`), so one declared tomorrow is fuzzed too.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lumiera.bus import messages as m
from lumiera.bus.codec import pack, unpack
from lumiera.bus.events import check_forwardable, decode_event
from lumiera.bus.topics import TOPICS, ExtBody, topic_of
from lumiera.errors import BadMessage
from tests.fuzz import strategies as fs
from tests.fuzz.profiles import FUZZ, count


def refused(fn: Any, *args: Any) -> BadMessage:
    """Run ``fn``, which must fail with exactly BadMessage (code bad_message); return it."""
    with pytest.raises(BadMessage) as caught:
        fn(*args)
    assert caught.value.code == "bad_message", caught.value
    return caught.value


@FUZZ
@given(fs.garbage_frames)
def test_no_garbage_frame_decodes_and_none_fails_but_as_bad_message(frame: bytes):
    count("codec.garbage_frames")
    refused(m.decode, frame)


@FUZZ
@given(st.binary(max_size=1024) | fs.mangled_frames)
def test_random_and_mangled_bytes_decode_or_fail_as_bad_message(frame: bytes):
    count("codec.random_bytes")
    try:
        m.decode(frame)
    except BadMessage as e:
        assert e.code == "bad_message"


@pytest.mark.parametrize("flavour", [fs.VALID, fs.BOUNDARY])
@pytest.mark.parametrize("kind", sorted(m.KINDS))
@FUZZ
@given(data=st.data())
def test_every_kind_round_trips_through_the_wire(kind: str, flavour: str, data: st.DataObject):
    count("codec.round_trip")
    body = data.draw(fs.message_bodies(kind, flavour))
    msg = fs.as_message(body)
    assert m.decode(pack(body)) == msg
    assert m.decode(m.encode(msg)) == msg


@pytest.mark.parametrize("frame", fs.edge_frames)
def test_frames_at_the_edge_of_the_value_rules_decode(frame: bytes):
    msg = m.decode(frame)
    assert isinstance(msg, m.Request) and set(msg.args) == {"k"}


@FUZZ
@given(fs.bad_message_bodies())
def test_a_body_with_one_thing_wrong_is_refused(body: dict[Any, Any]):
    count("codec.bad_bodies")
    refused(m.decode, pack(body))


@FUZZ
@given(fs.garbage_frames)
def test_the_plain_value_walk_refuses_as_bad_message_too(frame: bytes):
    count("codec.unpack")
    try:
        unpack(frame)
    except BadMessage as e:
        assert e.code == "bad_message"


# -- events -----------------------------------------------------------------------------


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=4) | fs.garbage_events())
def test_no_garbage_event_decodes_into_anything_but_bad_message(frames: list[bytes]):
    count("events.garbage_decode")
    try:
        decode_event(frames)
    except BadMessage as e:
        assert e.code == "bad_message"


@FUZZ
@given(fs.garbage_events())
def test_the_forwarder_drops_every_garbage_event(frames: list[bytes]):
    count("events.garbage_forward")
    refused(check_forwardable, frames[:2], len(frames))


@pytest.mark.parametrize("declared", [t for t in TOPICS if t.reserved], ids=lambda t: t.pattern)
@FUZZ
@given(data=st.data())
def test_a_reserved_topic_is_never_forwarded_from_a_publisher(declared, data: st.DataObject):
    count("events.reserved")
    sender = data.draw(st.text(min_size=1, max_size=64))
    frames = data.draw(fs.event_frames(declared, sender))
    error = refused(check_forwardable, frames, 2)
    assert "reserved" in str(error)


FORWARDABLE = [*fs.FORWARDED, topic_of("ext.x")]


@pytest.mark.parametrize("declared", FORWARDABLE, ids=lambda t: t.pattern)
@pytest.mark.parametrize("flavour", [fs.VALID, fs.BOUNDARY])
@FUZZ
@given(data=st.data())
def test_a_valid_event_of_a_forwarded_topic_is_forwarded_as_it_was(
    declared, flavour: str, data: st.DataObject
):
    count("events.forwarded")
    if declared.kind is ExtBody and flavour == fs.BOUNDARY:
        flavour = fs.VALID
    frames = data.draw(fs.event_frames(declared, sender="fuzz"))
    event = check_forwardable(frames, 2)
    assert event.topic == frames[0].decode() and event.sender == "fuzz"
    assert decode_event(frames) == event
