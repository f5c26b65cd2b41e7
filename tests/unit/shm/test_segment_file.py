"""A segment as a file in /dev/shm: its space reserved at creation, its mode, its OFD locks."""

from __future__ import annotations

import os
import stat

import pytest

from lumiera import shm
from lumiera.shm.layout import PAGE, Policy, segment_size, slot_size_for, slots_offset
from lumiera.shm.segment import Segment, SegmentError
from tests.unit.shm.ringkit import RingKit


def test_a_ring_segment_is_private_and_its_space_is_reserved_not_sparse(kit: RingKit):
    seg = kit.create(slots=3, payload_bytes=10_000, max_consumers=5)
    st = os.stat(seg.path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == seg.size == segment_size(3, slot_size_for(10_000), 5)
    assert st.st_blocks * 512 >= st.st_size  # posix_fallocate, not ftruncate
    assert seg.path.name == shm.segment_name(kit.rd.instance, "r")
    assert shm.list_segments(kit.rd.instance) == [seg.path.name]


def test_a_new_ring_has_its_header_written_and_nothing_published(kit: RingKit):
    seg = kit.create(slots=3, payload_bytes=100, policy=Policy.DROP, max_consumers=70)
    p = kit.producer()
    h = p.header
    assert (h.slots, h.slot_size, h.max_consumers, h.policy) == (3, PAGE, 70, Policy.DROP)
    assert h.slots_offset == slots_offset(70) == 2 * PAGE
    assert (h.write_seq, h.drops) == (0, 0)
    assert h.created_ns > 0
    assert bytes(seg.buf[h.slots_offset :]) == bytes(seg.size - h.slots_offset)


def test_an_empty_segment_cannot_be_attached(kit: RingKit):
    name = shm.segment_name(kit.rd.instance, "empty")
    (shm.SHM_DIR / name).touch()
    try:
        with pytest.raises(SegmentError, match="is empty"):
            Segment.attach(name)
    finally:
        (shm.SHM_DIR / name).unlink()


def test_an_exclusive_lock_excludes_every_other_lock_and_a_shared_one_only_exclusive_ones(
    kit: RingKit,
):
    seg = kit.create()
    with Segment.attach(seg.name) as a, Segment.attach(seg.name) as b:
        assert a.try_lock(0, 64, exclusive=False)
        assert b.try_lock(0, 64, exclusive=False)
        assert not b.try_lock(0, 64, exclusive=True)
        assert seg.is_locked(0, 64)
        a.unlock(0, 64)
        b.unlock(0, 64)
        assert not seg.is_locked(0, 64)

        assert a.try_lock(64, 64, exclusive=True)
        assert not b.try_lock(64, 64, exclusive=False)
        assert not b.try_lock(100, 1, exclusive=True)
        assert b.try_lock(0, 64, exclusive=True)  # the byte ranges do not overlap
        assert a.is_locked(0, 64) and b.is_locked(64, 64)
        assert not a.is_locked(64, 64)  # its own lock is no conflict


def test_closing_a_segment_drops_its_locks(kit: RingKit):
    seg = kit.create()
    a = Segment.attach(seg.name)
    assert a.try_lock(0, 128, exclusive=True)
    assert seg.is_locked(0, 128)
    a.close()
    a.close()  # closing twice is harmless
    assert not seg.is_locked(0, 128)
