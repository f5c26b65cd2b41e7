"""The ring's byte layout: header and slot header encoding, frame geometry, sizes."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lumiera.shm import layout
from lumiera.shm.layout import (
    HEADER,
    HEADER_SIZE,
    LAYOUT_VERSION,
    MAGIC,
    PAGE,
    SLOT_HEADER_SIZE,
    Header,
    PixelFormat,
    Policy,
    SlotHeader,
    frame_bytes,
    planes_of,
    slot_size_for,
    slots_offset,
)

U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)
CHANNELS = {PixelFormat.RGB24: 3, PixelFormat.RGBA: 4, PixelFormat.GRAY: 1}


@st.composite
def headers(draw: st.DrawFn) -> Header:
    """Any header a ring of this layout may have."""
    max_consumers = draw(st.integers(1, 2**20))
    return Header(
        slots=draw(st.integers(1, 2**32 - 1)),
        slot_size=draw(st.integers(1, 2**40)) * PAGE,
        max_consumers=max_consumers,
        policy=draw(st.sampled_from(Policy)),
        write_seq=draw(U64),
        drops=draw(U64),
        created_ns=draw(U64),
        slots_offset=slots_offset(max_consumers) + draw(st.integers(0, 2**20)) * PAGE,
    )


def raw_header(h: Header, **changes: object) -> bytes:
    """``h`` packed with fields replaced by raw values (that Header itself might not allow)."""
    fields = {
        "magic": h.magic,
        "version": h.version,
        "slots": h.slots,
        "slot_size": h.slot_size,
        "max_consumers": h.max_consumers,
        "policy": int(h.policy),
        "write_seq": h.write_seq,
        "drops": h.drops,
        "created_ns": h.created_ns,
        "slots_offset": h.slots_offset,
    }
    fields.update(changes)
    return HEADER.pack(*fields.values())


# -- ring header --------------------------------------------------------------------


@given(headers())
def test_a_header_survives_packing_and_unpacking(h: Header):
    data = h.pack()
    assert len(data) == HEADER_SIZE
    assert Header.unpack(data) == h
    assert Header.unpack(memoryview(data + b"more bytes after it")) == h


@given(headers())
def test_the_counters_the_ring_updates_alone_sit_at_their_documented_offsets(h: Header):
    data = h.pack()
    assert data[:8] == MAGIC
    assert struct.unpack_from("<Q", data, layout.OFF_WRITE_SEQ)[0] == h.write_seq
    assert struct.unpack_from("<Q", data, layout.OFF_DROPS)[0] == h.drops
    assert struct.unpack_from("<Q", data, 56)[0] == h.slots_offset


@given(headers(), st.binary(min_size=8, max_size=8).filter(lambda b: b != MAGIC))
def test_a_header_with_another_magic_is_refused(h: Header, magic: bytes):
    with pytest.raises(ValueError, match="not a lumiera ring"):
        Header.unpack(raw_header(h, magic=magic))


@given(headers(), U32.filter(lambda v: v != LAYOUT_VERSION))
def test_a_header_of_another_layout_version_is_refused(h: Header, version: int):
    with pytest.raises(ValueError, match=f"layout version {version}"):
        Header.unpack(raw_header(h, version=version))


@st.composite
def inconsistencies(draw: st.DrawFn) -> dict[str, int]:
    """One field of a header set to a value no ring of this layout has."""
    return draw(
        st.one_of(
            st.just({"slots": 0}),
            st.just({"max_consumers": 0}),
            st.builds(lambda v: {"policy": v}, st.integers(2, 2**32 - 1)),
            st.builds(lambda v: {"slot_size": v}, st.integers(0, SLOT_HEADER_SIZE)),
            st.builds(
                lambda v: {"slot_size": v},
                st.integers(SLOT_HEADER_SIZE + 1, 2**50).filter(lambda v: v % PAGE != 0),
            ),
            st.builds(lambda v: {"slots_offset": v}, U64.filter(lambda v: v % PAGE != 0)),
            st.builds(
                lambda n: {"max_consumers": n, "slots_offset": slots_offset(n) - PAGE},
                st.integers(1, 2**20),
            ),
        )
    )


@given(headers(), inconsistencies())
def test_a_header_with_inconsistent_fields_is_refused(h: Header, bad: dict[str, int]):
    with pytest.raises(ValueError, match="inconsistent"):
        Header.unpack(raw_header(h, **bad))


@given(headers(), st.integers(0, HEADER_SIZE - 1))
def test_a_header_cut_short_is_refused_with_value_error(h: Header, length: int):
    with pytest.raises(ValueError):
        Header.unpack(h.pack()[:length])


# -- slot header ----------------------------------------------------------------------


@given(
    st.builds(
        SlotHeader,
        seq=U64,
        width=U32,
        height=U32,
        fmt=U32,
        planes=U32,
        pts=I64,
        nbytes=U64,
        table=st.tuples(U32, U32, U32, U32, U32, U32),
        published=st.floats(allow_nan=False),
    )
)
def test_a_slot_header_survives_packing_and_unpacking(s: SlotHeader):
    data = s.pack()
    assert len(data) == SLOT_HEADER_SIZE
    assert SlotHeader.unpack(data) == s
    assert struct.unpack_from("<Q", data, layout.S_SEQ)[0] == s.seq


def test_a_slot_header_carries_a_negative_pts():
    s = SlotHeader(7, 2, 2, int(PixelFormat.GRAY), 1, -(2**63), 4)
    assert SlotHeader.unpack(s.pack()).pts == -(2**63)


def test_the_structs_have_the_documented_sizes():
    assert (layout.HEADER.size, layout.CONSUMER.size, layout.SLOT_HEADER.size) == (128, 64, 128)
    fields = [f.name for f in dataclasses.fields(SlotHeader)]
    assert fields == [
        *("seq", "width", "height", "fmt", "planes", "pts", "nbytes", "table", "published")
    ]
    packed = SlotHeader(1, 1, 1, 1, 1, 0, 1, published=2.5).pack()
    assert struct.unpack_from("<d", packed, 64)[0] == 2.5


# -- frame geometry ------------------------------------------------------------------

SIDES = st.integers(1, 4097)


@given(SIDES, SIDES)
def test_yuv420p_has_a_full_luma_plane_and_chroma_planes_rounded_up_for_odd_sizes(w, h):
    y, u, v = planes_of(PixelFormat.YUV420P, w, h)
    cw, ch = -(-w // 2), -(-h // 2)
    assert (y.offset, y.shape, y.stride) == (0, (h, w), w)
    assert (u.offset, u.shape, u.stride) == (w * h, (ch, cw), cw)
    assert (v.offset, v.shape, v.stride) == (w * h + cw * ch, (ch, cw), cw)
    assert frame_bytes(PixelFormat.YUV420P, w, h) == w * h + 2 * cw * ch
    # every chroma sample covers a 2x2 block of luma, the last row/column only partly
    assert 2 * cw >= w > 2 * (cw - 1)
    assert 2 * ch >= h > 2 * (ch - 1)


@given(st.integers(0, 2048).map(lambda n: 2 * n + 1), st.integers(0, 2048).map(lambda n: 2 * n + 1))
def test_an_odd_sized_yuv420p_frame_has_one_more_chroma_row_and_column_than_half(w, h):
    _, u, v = planes_of(PixelFormat.YUV420P, w, h)
    assert u.shape == v.shape == (h // 2 + 1, w // 2 + 1)


@given(st.sampled_from(PixelFormat), SIDES, SIDES)
def test_the_planes_of_a_frame_are_packed_one_after_another_without_gaps(fmt, w, h):
    end = 0
    for p in planes_of(fmt, w, h):
        assert p.offset == end
        row_bytes = p.shape[1] * (p.shape[2] if len(p.shape) == 3 else 1)
        assert p.stride == row_bytes
        end = p.offset + p.stride * p.shape[0]
    assert end == frame_bytes(fmt, w, h)


@given(st.sampled_from(sorted(CHANNELS)), SIDES, SIDES)
def test_a_packed_format_is_one_plane_of_width_times_channels_bytes_per_row(fmt, w, h):
    (plane,) = planes_of(fmt, w, h)
    n = CHANNELS[fmt]
    assert plane.shape == ((h, w, n) if n > 1 else (h, w))
    assert plane.stride == w * n
    assert frame_bytes(fmt, w, h) == w * h * n


@pytest.mark.parametrize("fmt", list(PixelFormat))
@pytest.mark.parametrize(("w", "h"), [(0, 1), (1, 0), (-2, 4), (4, -2), (0, 0)])
def test_a_frame_without_pixels_has_no_planes(fmt, w, h):
    with pytest.raises(ValueError, match="must be positive"):
        planes_of(fmt, w, h)
    with pytest.raises(ValueError, match="must be positive"):
        frame_bytes(fmt, w, h)


# -- sizes ------------------------------------------------------------------------------


@given(st.integers(1, 2**40))
def test_a_slot_is_the_fewest_whole_pages_that_hold_its_header_and_payload(payload):
    size = slot_size_for(payload)
    assert size % PAGE == 0
    assert size >= SLOT_HEADER_SIZE + payload > size - PAGE


@given(st.integers(1, 2**16))
def test_slots_begin_on_the_first_page_after_the_header_and_consumer_table(n):
    off = slots_offset(n)
    assert off % PAGE == 0
    assert off >= HEADER_SIZE + n * layout.CONSUMER_SIZE > off - PAGE


@given(st.integers(1, 64), st.integers(1, 2**24), st.integers(1, 64))
def test_a_segment_is_the_header_pages_and_the_slots(slots, payload, consumers):
    size = slot_size_for(payload)
    expected = slots_offset(consumers) + slots * size
    assert layout.segment_size(slots, size, consumers) == expected
