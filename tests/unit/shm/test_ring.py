"""Frame rings within one process: round trips, the block and drop policies, exact counts.

Producer and consumers here are separate open file descriptions of the same
segment, so their OFD locks conflict exactly as between processes.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Generator
from pathlib import Path

import numpy as np
import pytest
import zmq

from lumiera import shm
from lumiera.errors import RuntimeDirError
from lumiera.runtime_dir import RuntimeDir
from lumiera.shm import ring
from lumiera.shm.layout import (
    OFF_DROPS,
    PAGE,
    SLOT_HEADER_SIZE,
    PixelFormat,
    Policy,
    frame_bytes,
    planes_of,
)
from lumiera.shm.ring import RingTimeout
from lumiera.shm.segment import SegmentError
from tests.unit.shm.ringkit import WAIT_S, RingKit, digest, fill_value, frames_read, put, take

SHORT_S = 0.3  # how long a test waits for something that must not happen
SIZES = [(1, 1), (2, 2), (1, 3), (3, 1), (5, 7), (33, 17), (64, 48)]


def random_planes(fmt: PixelFormat, w: int, h: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(0, 256, p.shape, dtype=np.uint8) for p in planes_of(fmt, w, h))


def header_drops(p: ring.Producer) -> int:
    return p.u64(OFF_DROPS)


# -- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(PixelFormat))
def test_every_pixel_format_and_size_arrives_byte_for_byte(kit: RingKit, fmt: PixelFormat):
    kit.create(slots=3, payload_bytes=frame_bytes(PixelFormat.RGBA, 64, 48))
    c = kit.consumer()
    p = kit.producer()
    for k, (w, h) in enumerate(SIZES):
        sent = random_planes(fmt, w, h, seed=k)
        assert p.write(sent if len(sent) > 1 else sent[0], fmt, pts=-k * 1001)

        frame = c.acquire()
        assert (frame.seq, frame.width, frame.height, frame.fmt) == (k + 1, w, h, fmt)
        assert frame.pts == -k * 1001
        assert [a.shape for a in frame.planes] == [pl.shape for pl in planes_of(fmt, w, h)]
        assert digest(frame.planes) == digest(sent)
        assert all(not a.flags.writeable for a in frame.planes)
        c.release(frame)
    assert c.drops == 0
    assert frames_read(c) == len(SIZES)


def test_a_frame_carries_the_monotonic_time_it_was_published(kit: RingKit):
    kit.create(slots=2)
    c = kit.consumer()
    p = kit.producer()
    before = time.monotonic()
    put(p)
    after = time.monotonic()
    frame = c.acquire()
    try:
        assert before <= frame.published <= after
    finally:
        c.release(frame)


def test_a_frame_decoded_in_place_into_the_claimed_slot_arrives_as_written(kit: RingKit):
    kit.create(slots=2, payload_bytes=frame_bytes(PixelFormat.YUV420P, 7, 5))
    c = kit.consumer()
    p = kit.producer()
    expected = random_planes(PixelFormat.YUV420P, 7, 5, seed=9)

    frame = p.claim(7, 5, PixelFormat.YUV420P, pts=42)
    assert frame is not None
    for dst, src in zip(frame.planes, expected, strict=True):
        dst[...] = src
    p.publish(frame)
    del frame  # the producer's views must go before it closes (see the test below)

    got = c.acquire()
    assert (got.seq, got.pts, got.fmt) == (1, 42, PixelFormat.YUV420P)
    assert [a.shape for a in got.planes] == [(5, 7), (3, 4), (3, 4)]
    assert digest(got.planes) == digest(expected)
    c.release(got)
    assert got.planes == ()


def test_a_producer_closes_while_the_caller_still_holds_the_frame_it_published(kit: RingKit):
    kit.create()
    p = kit.producer()
    frame = p.claim(4, 4, PixelFormat.GRAY)
    assert frame is not None
    p.publish(frame)
    try:
        p.close()  # BufferError: the published frame still has (writable) views of its slot
    finally:
        frame.planes = ()


def test_a_frame_that_exactly_fills_a_slot_fits_and_one_byte_more_is_refused(kit: RingKit):
    kit.create(slots=2, payload_bytes=PAGE)
    capacity = 2 * PAGE - SLOT_HEADER_SIZE  # the payload rounded up to whole pages
    p = kit.producer()
    assert p.write(np.zeros((1, capacity), np.uint8), PixelFormat.GRAY)
    with pytest.raises(ValueError, match="exceeds slot"):
        p.claim(capacity + 1, 1, PixelFormat.GRAY)


# -- the producer's contract ---------------------------------------------------------


def test_a_second_claim_before_publishing_the_first_is_refused(kit: RingKit):
    kit.create()
    p = kit.producer()
    frame = p.claim(4, 4, PixelFormat.GRAY)
    assert frame is not None
    with pytest.raises(RuntimeError, match="claimed already"):
        p.claim(4, 4, PixelFormat.GRAY)
    p.abort(frame)
    frame.planes = ()


def test_a_ring_has_one_producer_at_a_time_and_the_next_may_open_once_it_closed(kit: RingKit):
    kit.create()
    first = kit.producer()
    with pytest.raises(SegmentError, match="has a producer already"):
        ring.Producer(kit.rd, "r")
    assert [f.name for f in kit.socket_files()] == ["ring-r.frames", "ring-r.free"]  # untouched
    kit.detach(first)
    second = kit.producer()
    consumer = kit.consumer()
    seq = put(second, tag=7)
    frame = consumer.acquire(WAIT_S)
    assert frame.seq == seq and frame.pts == 7  # the new producer's wake-up sockets work
    consumer.release(frame)


def test_the_producer_lock_of_a_killed_producer_goes_with_its_process(kit: RingKit):
    kit.create()
    child = kit.spawn("p = ring.Producer(rd, name)\nsay('open')\ntime.sleep(60)")
    child.expect("open")
    with pytest.raises(SegmentError, match="has a producer already"):
        ring.Producer(kit.rd, "r")
    child.kill()
    kit.producer()  # accepted: the kernel dropped the dead producer's lock


def test_only_the_claimed_frame_can_be_published(kit: RingKit):
    kit.create()
    p = kit.producer()
    frame = p.claim(4, 4, PixelFormat.GRAY)
    assert frame is not None
    p.abort(frame)
    with pytest.raises(RuntimeError, match="not the claimed one"):
        p.publish(frame)
    frame.planes = ()


def test_an_aborted_frame_is_never_seen_and_its_number_goes_to_the_next_frame(kit: RingKit):
    kit.create(policy=Policy.DROP)
    c = kit.consumer()
    p = kit.producer()
    frame = p.claim(16, 8, PixelFormat.GRAY, pts=666)
    assert frame is not None
    frame.array[...] = 1
    p.abort(frame)
    frame.planes = ()
    with pytest.raises(RingTimeout):
        c.acquire(SHORT_S)

    assert put(p) == 1
    assert take(c) == (1, 1, True)
    assert c.drops == 0


def test_a_write_that_fails_while_copying_gives_the_slot_back_unpublished(kit: RingKit):
    kit.create(policy=Policy.BLOCK, slots=1)
    c = kit.consumer()
    p = kit.producer()
    with pytest.raises(ValueError):  # 2 planes given for a 1-plane format
        p.write((np.zeros((4, 4), np.uint8),) * 2, PixelFormat.GRAY)
    assert p.write_seq == 0
    assert put(p) == 1  # the slot was unlocked again: no wait
    assert take(c) == (1, 1, True)


def test_a_consumer_sees_only_the_frames_published_after_it_attached(kit: RingKit):
    kit.create(policy=Policy.DROP)
    p = kit.producer()
    put(p)
    put(p)
    c = kit.consumer()
    with pytest.raises(RingTimeout, match="no new frame"):
        c.acquire(SHORT_S)
    put(p)
    assert take(c) == (3, 3, True)
    assert c.drops == 0


def test_waiting_for_a_frame_that_never_comes_ends_in_ring_timeout_after_the_bound(
    kit: RingKit,
):
    kit.create()
    c = kit.consumer()
    start = time.monotonic()
    with pytest.raises(RingTimeout, match=r"within 0\.4 s"):
        c.acquire(0.4)
    assert 0.4 <= time.monotonic() - start < 2.0


def test_frames_iterates_and_releases_each_frame_when_the_loop_moves_on(kit: RingKit):
    kit.create(slots=4)
    c = kit.consumer()
    p = kit.producer()
    for _ in range(3):
        put(p)
    it = c.frames(timeout=SHORT_S)
    assert isinstance(it, Generator)
    assert next(it).seq == 1
    assert frames_read(c) == 0
    assert next(it).seq == 2
    assert frames_read(c) == 1
    it.close()
    assert frames_read(c) == 2
    assert take(c) == (3, 3, True)


# -- block policy -----------------------------------------------------------------------


def test_a_blocking_producer_without_consumers_never_waits(kit: RingKit):
    kit.create(slots=2, policy=Policy.BLOCK)
    p = kit.producer(timeout=SHORT_S)
    assert [put(p) for _ in range(6)] == [1, 2, 3, 4, 5, 6]


def test_a_blocking_producer_waits_for_the_consumer_that_has_not_released_the_oldest_frame(
    kit: RingKit,
):
    kit.create(slots=4, policy=Policy.BLOCK)
    c = kit.consumer()
    p = kit.producer(timeout=SHORT_S)
    assert [put(p) for _ in range(4)] == [1, 2, 3, 4]
    with pytest.raises(
        RingTimeout, match=rf"frame 1 not released by consumer pid\(s\) \[{os.getpid()}\]"
    ):
        put(p)

    frame = c.acquire()
    with pytest.raises(RingTimeout):  # acquired is not released
        put(p)
    c.release(frame)
    assert put(p) == 5
    with pytest.raises(RingTimeout, match="frame 2 not released"):
        put(p)
    assert header_drops(p) == 0


def test_a_blocking_producer_does_not_overwrite_a_frame_still_held_after_a_later_release(
    kit: RingKit,
):
    kit.create(slots=2, policy=Policy.BLOCK)
    c = kit.consumer()
    p = kit.producer(timeout=SHORT_S)
    put(p)
    put(p)
    first, second = c.acquire(), c.acquire()
    c.release(second)  # released runs ahead of the frame still in use
    with pytest.raises(RingTimeout, match="reading it"):
        put(p)
    assert (first.seq, int(first.array[0, 0])) == (1, fill_value(1))
    c.release(first)
    assert put(p) == 3


def test_a_blocking_producer_does_not_wait_for_a_consumer_that_detached(kit: RingKit):
    kit.create(slots=2, policy=Policy.BLOCK)
    c = kit.consumer()
    p = kit.producer(timeout=SHORT_S)
    put(p)
    put(p)
    frame = c.acquire()
    kit.detach(c)  # releases what it held
    assert frame.planes == ()
    assert [put(p) for _ in range(4)] == [3, 4, 5, 6]


def test_two_consumers_each_get_every_frame_and_the_producer_waits_for_the_slower(
    kit: RingKit,
):
    kit.create(slots=2, policy=Policy.BLOCK)
    fast, slow = kit.consumer(), kit.consumer()
    assert fast.index != slow.index
    p = kit.producer(timeout=SHORT_S)
    seen_fast, seen_slow = [], []
    for _ in range(3):
        put(p)
        put(p)
        seen_fast += [take(fast), take(fast)]
        with pytest.raises(RingTimeout):
            put(p)
        seen_slow += [take(slow), take(slow)]
    expected = [(s, s, True) for s in range(1, 7)]
    assert seen_fast == seen_slow == expected
    assert fast.drops == slow.drops == header_drops(p) == 0


# -- drop policy ------------------------------------------------------------------------


def test_a_consumer_that_falls_behind_gets_the_newest_frames_and_counts_the_rest_as_dropped(
    kit: RingKit,
):
    kit.create(slots=4, policy=Policy.DROP)
    c = kit.consumer()
    p = kit.producer()
    assert [put(p) for _ in range(10)] == list(range(1, 11))
    assert header_drops(p) == 0  # the producer placed every frame

    got = [take(c)]
    assert c.drops == 6  # frames 1-6 were overwritten before it got to them
    got += [take(c), take(c), take(c)]
    assert got == [(s, s, True) for s in (7, 8, 9, 10)]
    with pytest.raises(RingTimeout):
        c.acquire(SHORT_S)
    assert (c.drops, frames_read(c)) == (6, 4)

    assert put(p) == 11
    assert take(c) == (11, 11, True)
    assert c.drops == 6


def test_a_dropping_producer_writes_past_a_frame_a_reader_holds_and_skips_its_number(
    kit: RingKit,
):
    kit.create(slots=4, policy=Policy.DROP)
    c = kit.consumer()
    other = kit.consumer()  # keeps up: it sees every frame, and no skipped number as a drop
    p = kit.producer()
    put(p)
    held = c.acquire()  # frame 1, in slot 1: held (a stalled viewer)
    assert take(other) == (1, 1, True)
    got = []
    for _ in range(6):
        got.append(put(p))
        got_by_other = take(other)
        assert got_by_other == (got[-1], got[-1], True)
    # 5 and 9 would go into slot 1: their numbers are skipped, their frames go on
    assert got == [2, 3, 4, 6, 7, 8]
    assert header_drops(p) == 0 and p.write_seq == 8
    assert other.drops == 0
    assert bool((held.array == fill_value(1)).all())  # the held frame is untouched
    c.release(held)
    # The stalled reader goes on after 1: 2-4 were overwritten (its drops), 5 skipped.
    assert [take(c) for _ in range(3)] == [(s, s, True) for s in (6, 7, 8)]
    assert (c.drops, header_drops(p)) == (3, 0)


def test_a_dropping_producer_drops_only_when_every_slot_is_held(kit: RingKit):
    kit.create(slots=2, policy=Policy.DROP)
    c1, c2 = kit.consumer(), kit.consumer()
    p = kit.producer()
    put(p)
    put(p)
    f1 = c1.acquire()  # frame 1, slot 1
    f2 = c2.acquire()  # frame 1 too; then c2 takes frame 2 (slot 0)
    g2 = c2.acquire()
    assert (f1.seq, f2.seq, g2.seq) == (1, 1, 2)
    assert [put(p) for _ in range(3)] == [0, 0, 0]  # both slots held: dropped, counted
    assert header_drops(p) == 3
    for consumer, frame in ((c1, f1), (c2, f2), (c2, g2)):
        consumer.release(frame)
    assert put(p) == 3


def test_with_one_slot_a_consumer_reading_the_only_frame_makes_every_write_drop(kit: RingKit):
    kit.create(slots=1, policy=Policy.DROP)
    c = kit.consumer()
    p = kit.producer()
    put(p)
    frame = c.acquire()
    assert [put(p) for _ in range(3)] == [0, 0, 0]
    c.release(frame)
    assert [put(p) for _ in range(3)] == [2, 3, 4]
    assert take(c) == (4, 4, True)
    assert (c.drops, header_drops(p)) == (2, 3)


def test_of_two_consumers_only_the_one_that_falls_behind_loses_frames(kit: RingKit):
    kit.create(slots=3, policy=Policy.DROP)
    keeping_up, behind = kit.consumer(), kit.consumer()
    p = kit.producer()
    for s in range(1, 21):
        put(p)
        assert take(keeping_up) == (s, s, True)
    assert [take(behind) for _ in range(3)] == [(s, s, True) for s in (18, 19, 20)]
    assert (keeping_up.drops, behind.drops, header_drops(p)) == (0, 17, 0)
    assert (frames_read(keeping_up), frames_read(behind)) == (20, 3)


# -- the consumer table -----------------------------------------------------------------


def test_the_consumer_table_refuses_one_consumer_more_and_takes_a_closed_ones_entry(
    kit: RingKit,
):
    kit.create(max_consumers=2)
    first, second = kit.consumer(), kit.consumer()
    assert {first.index, second.index} == {0, 1}
    with pytest.raises(SegmentError, match="all 2 consumer entries are taken"):
        kit.consumer()
    kit.detach(first)
    assert kit.consumer().index == 0


def test_closing_a_consumer_twice_is_harmless(kit: RingKit):
    kit.create()
    c = kit.consumer()
    kit.detach(c)
    c.close()


# -- creation and attaching -------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "A", "-r", "_r", "r.x", "r/x", "r:x", "x" * 33])
def test_a_ring_name_outside_the_allowed_set_is_refused(kit: RingKit, name: str):
    with pytest.raises(ValueError, match="ring name"):
        kit.create(name)


@pytest.mark.parametrize(("slots", "payload"), [(0, 1), (1, 0), (-1, 10)])
def test_a_ring_without_a_slot_or_a_payload_byte_is_refused(kit: RingKit, slots, payload):
    with pytest.raises(ValueError, match="at least one slot"):
        kit.create(slots=slots, payload_bytes=payload)
    assert shm.list_segments(kit.rd.instance) == []


def test_a_ring_that_exists_already_is_not_created_again(kit: RingKit):
    kit.create("r")
    with pytest.raises(SegmentError, match="already exists"):
        ring.create(kit.rd.instance, "r", slots=1, payload_bytes=1, policy=Policy.DROP)


@pytest.mark.parametrize("side", [ring.Producer, ring.Consumer])
def test_attaching_to_a_ring_that_does_not_exist_fails_with_segment_error(kit: RingKit, side):
    with pytest.raises(SegmentError, match="no shared-memory segment"):
        side(kit.rd, "missing")


def test_attaching_to_a_segment_that_is_not_a_ring_fails_with_segment_error(kit: RingKit):
    path = shm.SHM_DIR / shm.segment_name(kit.rd.instance, "junk")
    path.write_bytes(bytes(2 * PAGE))
    try:
        with pytest.raises(SegmentError, match="ring junk: not a lumiera ring"):
            ring.Consumer(kit.rd, "junk")
        assert _open_fds_on(path) == 0
    finally:
        path.unlink()


def _open_fds_on(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            continue
    return count


def test_attaching_to_a_segment_too_short_for_a_header_fails_with_segment_error(kit: RingKit):
    path = shm.SHM_DIR / shm.segment_name(kit.rd.instance, "stub")
    path.write_bytes(b"LUMRING1")
    try:
        with pytest.raises(SegmentError):
            ring.Consumer(kit.rd, "stub")
        assert _open_fds_on(path) == 0
    finally:
        path.unlink()


def test_attaching_to_a_ring_shorter_than_its_header_declares_fails_with_segment_error(
    kit: RingKit,
):
    seg = kit.create(slots=4, payload_bytes=PAGE)
    os.truncate(seg.path, PAGE)  # header and table only: the slots are gone
    with pytest.raises(SegmentError):
        kit.producer()


def test_a_producer_that_cannot_bind_its_wake_up_sockets_leaves_the_segment_closed(
    kit: RingKit,
):
    seg = kit.create()
    nowhere = RuntimeDir(kit.rd.path / "missing", kit.rd.instance, False)
    before = _open_fds_on(seg.path)  # the creator's (its mmap holds a second one)
    with pytest.raises(zmq.ZMQError, match="No such file"):
        ring.Producer(nowhere, "r")
    gc.collect()
    assert _open_fds_on(seg.path) == before


def test_a_consumer_that_cannot_connect_its_wake_up_sockets_gives_its_table_entry_back(
    kit: RingKit,
):
    kit.create(max_consumers=1)
    too_long = RuntimeDir(kit.rd.path / ("d" * 100), kit.rd.instance, False)  # > 107 chars
    with pytest.raises(RuntimeDirError, match="over 107 characters"):
        ring.Consumer(too_long, "r")
    gc.collect()
    assert kit.consumer().index == 0  # else a blocking producer waits for a ghost
