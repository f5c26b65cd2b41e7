"""What makes a ring call cheap keeps its contract: word views, prepacked locks, reused views.

The per-frame paths read and write the segment through native memoryview casts,
lock slots with prepacked requests, and hand out the same numpy views of a slot
while its frames keep one geometry. Here: the bytes they write are the layout's,
the views stay correct (read-only for consumers, fresh for a new geometry), and
closing still refuses while a caller holds a view.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from lumiera.shm.layout import (
    C_READ,
    C_RELEASED,
    C_WAITING,
    OFF_WRITE_SEQ,
    SLOT_HEADER,
    SLOT_HEADER_SIZE,
    PixelFormat,
    SlotHeader,
    frame_bytes,
)
from lumiera.shm.segment import Segment
from tests.unit.shm.ringkit import RingKit, fill_value, put, take


def test_the_words_a_publish_writes_are_the_little_endian_fields_of_the_layout(kit: RingKit):
    seg = kit.create(slots=2, payload_bytes=frame_bytes(PixelFormat.YUV420P, 7, 5))
    c = kit.consumer()
    p = kit.producer()
    for n in range(1, 4):
        put(p, 7, 5, tag=n)
        assert take(c) == (n, n, True)
    seq = 2**40 + 1  # a seq of more than 4 bytes: every byte of the words counts
    p.set_u64(OFF_WRITE_SEQ, seq - 1)
    c.set_u64(c.off + C_RELEASED, seq - 1)
    c.last = seq - 1
    frame = p.claim(7, 5, PixelFormat.YUV420P, pts=-5)
    assert frame is not None
    assert frame.seq == seq
    p.publish(frame)
    base = p.slot_base(frame.slot)
    assert struct.unpack_from("<Q", seg.buf, OFF_WRITE_SEQ)[0] == seq
    hdr = SlotHeader.unpack(bytes(seg.buf[base : base + SLOT_HEADER_SIZE]))
    assert (hdr.seq, hdr.width, hdr.height, hdr.fmt, hdr.planes, hdr.pts) == (
        seq,
        7,
        5,
        PixelFormat.YUV420P,
        3,
        -5,
    )
    assert hdr.nbytes == frame_bytes(PixelFormat.YUV420P, 7, 5)
    assert hdr.table == (0, 7, 35, 4, 47, 4)
    assert hdr.published == frame.published > 0
    assert bytes(seg.buf[base + 72 : base + SLOT_HEADER_SIZE]) == bytes(56)  # reserved: zero
    assert SLOT_HEADER.unpack_from(seg.buf, base)[0] == seq

    got = c.acquire()
    assert (got.seq, got.width, got.height, got.fmt, got.pts) == (seq, 7, 5, hdr.fmt, -5)
    c.release(got)
    off = c.off
    assert struct.unpack_from("<Q", seg.buf, off + C_RELEASED)[0] == seq
    assert struct.unpack_from("<Q", seg.buf, off + C_READ)[0] == 4
    assert struct.unpack_from("<I", seg.buf, off + C_WAITING)[0] == 0


def test_a_slot_s_views_are_reused_while_the_geometry_repeats_and_remade_when_it_changes(
    kit: RingKit,
):
    kit.create(slots=2, payload_bytes=frame_bytes(PixelFormat.RGB24, 16, 8))
    c = kit.consumer()
    p = kit.producer()
    seen: list[tuple[int, int]] = []
    for k, (w, h, fmt) in enumerate(
        [(16, 8, PixelFormat.GRAY)] * 4
        + [(8, 4, PixelFormat.RGB24)] * 2
        + [(16, 8, PixelFormat.GRAY)] * 2
    ):
        frame = p.claim(w, h, fmt, pts=k)
        assert frame is not None
        assert all(a.flags.writeable for a in frame.planes)
        frame.array[...] = fill_value(k)
        p.publish(frame)
        got = c.acquire()
        assert (got.width, got.height, got.fmt, got.pts) == (w, h, fmt, k)
        assert got.array.shape == ((h, w) if fmt is PixelFormat.GRAY else (h, w, 3))
        assert (got.array == fill_value(k)).all()
        assert not got.array.flags.writeable  # the consumer's views are read-only, reused too
        with pytest.raises(ValueError, match="read-only"):
            got.array[0, 0] = 1
        seen.append((id(got.array), got.slot))
        c.release(got)
        assert got.planes == () and frame.planes == ()
    # the same slot and geometry gives the same view object; a new geometry a new one
    assert seen[0] == seen[2] and seen[1] == seen[3]
    assert seen[4][0] not in (seen[0][0], seen[1][0])
    assert seen[6][0] != seen[0][0]  # after the RGB24 frames in that slot: made again


def test_a_consumer_still_refuses_to_close_while_its_caller_holds_a_reused_view(kit: RingKit):
    kit.create()
    c = kit.consumer()
    p = kit.producer()
    put(p)
    frame = c.acquire()
    kept = frame.array
    c.release(frame)
    with pytest.raises(BufferError):
        c.close()
    del kept
    c.close()  # once the view is gone (and again after a refusal)
    assert c.seg.fd < 0
    put(p)  # the producer goes on, nobody lags behind a closed consumer


def test_a_closed_segment_releases_its_word_views_and_stays_open_while_it_refuses(kit: RingKit):
    seg = kit.create()
    other = Segment.attach(seg.name)
    q = other.cast("Q")
    q[0] = 7
    view = np.frombuffer(other.buf, np.uint8, 8, 0)
    with pytest.raises(BufferError):
        other.close()
    assert other.fd >= 0 and other.buf[0] == 7  # still open and mapped
    with pytest.raises(ValueError, match="released"):
        q[0]  # a refused close released the word views too: take them again
    q = other.cast("Q")
    assert q[0] == 7
    del view
    other.close()
    with pytest.raises(ValueError, match="released"):
        q[0]


def test_take_and_put_round_trip_many_frames_through_the_fast_paths(kit: RingKit):
    kit.create(slots=3)
    c = kit.consumer()
    p = kit.producer()
    for n in range(1, 50):
        assert put(p) == n
        assert take(c) == (n, n, True)
    assert c.drops == 0
