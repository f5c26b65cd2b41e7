"""A block ring's producer holding several claims at once: claimed ahead, published in order.

Real rings, real threads: the frames claimed ahead are filled by other threads
(as the Engine's workers render straight into their slots) and published by
the producer's thread, oldest first.
"""

from __future__ import annotations

import threading
import time

import pytest

from lumiera.shm import producer as producer_module
from lumiera.shm import ring
from lumiera.shm.layout import PixelFormat, Policy
from lumiera.shm.ring import RingTimeout
from tests.unit.shm.ringkit import WAIT_S, RingKit, fill_value, put, take

SHORT_S = 0.3  # how long a test waits for something that must not happen
FW, FH = 16, 8  # the frames of these tests: gray, as ringkit's put writes them


def ahead(p: ring.Producer, pts: int) -> ring.Frame:
    """A frame claimed ahead (the slot must be free)."""
    frame = p.claim_ahead(FW, FH, PixelFormat.GRAY, pts=pts)
    assert frame is not None, f"no slot for pts {pts} ({p.claims} claims outstanding)"
    return frame


def fill(frame: ring.Frame, value: int | None = None) -> None:
    """Every byte ``fill_value(pts)`` (what ringkit's take checks), or ``value``."""
    frame.array[...] = fill_value(frame.pts) if value is None else value


def fill_in_threads(frames: list[ring.Frame]) -> None:
    """Fill each frame in a thread of its own, the last claimed first."""
    threads = [threading.Thread(target=fill, args=(f,)) for f in reversed(frames)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert not any(t.is_alive() for t in threads)


def nothing_comes(c: ring.Consumer) -> bool:
    """True when the consumer gets no frame within SHORT_S."""
    try:
        frame = c.acquire(SHORT_S)
    except RingTimeout:
        return True
    c.release(frame)
    return False


# -- claims ahead, published in order ---------------------------------------------------


def test_frames_claimed_ahead_and_filled_by_other_threads_arrive_in_order_each_intact(
    kit: RingKit,
):
    kit.create(slots=6)
    c = kit.consumer()
    p = kit.producer(timeout=SHORT_S)
    got = []
    for r in range(3):  # three rounds: every slot is claimed ahead again, past the wrap
        frames = [ahead(p, 100 * r + k) for k in range(5)]  # slots - 1 of them
        assert [f.seq for f in frames] == [5 * r + k + 1 for k in range(5)]
        assert p.claims == 5
        fill_in_threads(frames)
        for f in frames:
            p.publish(f)
            assert f.planes == ()  # published: the producer's views are gone
        assert p.claims == 0 and p.write_seq == 5 * r + 5
        got += [take(c) for _ in range(5)]
    assert got == [(5 * r + k + 1, 100 * r + k, True) for r in range(3) for k in range(5)]
    assert c.drops == 0
    assert nothing_comes(c)


def test_a_consumer_reads_the_frames_published_while_later_ones_are_still_claimed(
    kit: RingKit,
):
    kit.create(slots=4)
    c = kit.consumer()
    p = kit.producer()
    first, second, third = ahead(p, 1), ahead(p, 2), ahead(p, 3)
    fill(first)
    p.publish(first)
    assert take(c) == (1, 1, True)
    assert nothing_comes(c)  # frames 2 and 3 are claimed, not published
    fill_in_threads([second, third])
    p.publish(second)
    p.publish(third)
    assert [take(c), take(c)] == [(2, 2, True), (3, 3, True)]
    assert c.drops == 0


def test_publishing_a_later_claim_before_an_earlier_one_is_refused_and_shows_nothing(
    kit: RingKit,
):
    kit.create(slots=4)
    c = kit.consumer()
    p = kit.producer()
    first, second = ahead(p, 1), ahead(p, 2)
    fill_in_threads([first, second])
    with pytest.raises(RuntimeError, match="frame 2 published before frame 1"):
        p.publish(second)
    assert (p.claims, p.write_seq) == (2, 0)
    assert nothing_comes(c)

    p.publish(first)
    p.publish(second)
    assert [take(c), take(c)] == [(1, 1, True), (2, 2, True)]
    with pytest.raises(RuntimeError, match="frame 2 is not the claimed one"):
        p.publish(second)  # published already
    assert p.write_seq == 2 and c.drops == 0


# -- a slot whose old frame is still read -----------------------------------------------


def test_claim_ahead_gives_none_while_the_slots_old_frame_is_held_and_the_slot_once_released(
    kit: RingKit,
):
    kit.create(slots=3)
    c = kit.consumer()
    p = kit.producer()
    assert [put(p) for _ in range(3)] == [1, 2, 3]
    held = c.acquire()  # frame 1, in the slot frame 4 takes
    assert p.claim_ahead(FW, FH, PixelFormat.GRAY, pts=4) is None
    assert p.claims == 0
    assert bool((held.array == fill_value(1)).all())  # untouched
    c.release(held)

    fourth = ahead(p, 4)
    assert fourth.seq == 4
    # frame 2 (in the slot frame 5 takes) is not read yet: no slot for frame 5
    assert p.claim_ahead(FW, FH, PixelFormat.GRAY, pts=5) is None
    assert p.claims == 1
    assert take(c) == (2, 2, True)
    fifth = ahead(p, 5)
    fill_in_threads([fourth, fifth])
    p.publish(fourth)
    p.publish(fifth)
    assert [take(c) for _ in range(3)] == [(3, 3, True), (4, 4, True), (5, 5, True)]
    assert c.drops == 0


def test_wait_free_gives_up_after_its_timeout_while_held_and_returns_soon_after_a_release(
    kit: RingKit, monkeypatch: pytest.MonkeyPatch
):
    # Its periodic re-check comes only after WAIT_S here: a return before that is the
    # release's wake-up, not the re-check finding the slot free.
    monkeypatch.setattr(producer_module, "RECHECK_S", WAIT_S)
    kit.create(slots=2)
    c = kit.consumer()
    p = kit.producer()
    put(p)
    put(p)
    held = c.acquire()  # frame 1: frame 3 would go into its slot

    start = time.monotonic()
    assert p.wait_free(SHORT_S) is False
    assert SHORT_S * 0.9 <= time.monotonic() - start < SHORT_S + 2.0
    assert p.claim_ahead(FW, FH, PixelFormat.GRAY, pts=3) is None

    def release_later() -> None:
        time.sleep(0.2)
        c.release(held)  # the main thread waits meanwhile: the consumer is used by one

    releaser = threading.Thread(target=release_later)
    start = time.monotonic()
    releaser.start()
    try:
        assert p.wait_free(WAIT_S) is True
        waited = time.monotonic() - start
    finally:
        releaser.join(WAIT_S)
    assert 0.15 <= waited < WAIT_S / 2  # woken by the release, long before any re-check
    third = ahead(p, 3)  # wait_free left the slot for claim_ahead to take
    assert third.seq == 3
    fill(third)
    p.publish(third)
    assert [take(c), take(c)] == [(2, 2, True), (3, 3, True)]


def test_wait_free_waits_while_the_next_slot_is_held_though_a_later_frame_was_released(
    kit: RingKit,
):
    """As a blocked claim does (test_ring: ..._still_held_after_a_later_release)."""
    kit.create(slots=2)
    c = kit.consumer()
    p = kit.producer()
    put(p)
    put(p)
    first, second = c.acquire(), c.acquire()
    c.release(second)  # released runs ahead of frame 1, still read in slot 1
    assert p.claim_ahead(FW, FH, PixelFormat.GRAY) is None
    start = time.monotonic()
    assert p.wait_free(SHORT_S) is False
    assert time.monotonic() - start >= SHORT_S * 0.9
    c.release(first)
    assert ahead(p, 3).seq == 3


def test_wait_free_returns_at_once_when_the_next_slot_is_free(kit: RingKit):
    kit.create(slots=2)
    p = kit.producer()
    c = kit.consumer()
    put(p)
    start = time.monotonic()
    assert p.wait_free(WAIT_S) is True  # slot 0 never held a frame
    put(p)
    assert take(c) == (1, 1, True)
    assert p.wait_free(WAIT_S) is True  # frame 1 was released
    assert time.monotonic() - start < WAIT_S / 2
    assert ahead(p, 3).seq == 3
    assert p.claims == 1


def test_no_more_claims_than_slots_are_outstanding_even_without_a_consumer(kit: RingKit):
    kit.create(slots=4)
    p = kit.producer()
    frames = [ahead(p, k) for k in range(4)]
    assert [f.slot for f in frames] == [1, 2, 3, 0]  # every slot once
    assert p.claim_ahead(FW, FH, PixelFormat.GRAY) is None  # its slot is frame 1's
    assert p.claims == 4
    start = time.monotonic()
    assert p.wait_free(WAIT_S) is False  # nothing to wait for: only a publish frees a claim
    assert time.monotonic() - start < WAIT_S / 2
    fill(frames[0])
    p.publish(frames[0])
    assert ahead(p, 4).seq == 5  # the fifth claim goes into the slot of frame 1
    assert p.claim_ahead(FW, FH, PixelFormat.GRAY) is None
    p.abort(frames[1])
    assert p.claims == 0


def test_a_frame_too_big_for_a_slot_is_refused_when_claimed_ahead(kit: RingKit):
    kit.create(slots=2, payload_bytes=4096)
    p = kit.producer()
    with pytest.raises(ValueError, match="exceeds slot"):
        p.claim_ahead(4096, 2, PixelFormat.GRAY)
    assert p.claims == 0


# -- abort -------------------------------------------------------------------------------


def test_aborting_a_middle_claim_gives_back_it_and_every_later_one_and_their_numbers(
    kit: RingKit,
):
    kit.create(slots=6)
    c = kit.consumer()
    p = kit.producer()
    frames = [ahead(p, k + 1) for k in range(4)]
    for f in frames:
        fill(f, 99)  # what no consumer may ever see (take checks fill_value(pts))
    p.abort(frames[1])
    assert p.claims == 1
    assert [f.planes == () for f in frames] == [False, True, True, True]
    with pytest.raises(RuntimeError, match="not the claimed one"):
        p.publish(frames[2])
    p.abort(frames[3])  # given back already: nothing happens
    assert p.claims == 1

    fill(frames[0])
    p.publish(frames[0])
    again = [ahead(p, 12), ahead(p, 13)]
    assert [f.seq for f in again] == [2, 3]  # the aborted numbers go to the next frames
    fill_in_threads(again)
    for f in again:
        p.publish(f)
    assert [take(c) for _ in range(3)] == [(1, 1, True), (2, 12, True), (3, 13, True)]
    assert nothing_comes(c)
    assert c.drops == 0


def test_aborting_the_oldest_claim_gives_back_all_of_them(kit: RingKit):
    kit.create(slots=4)
    c = kit.consumer()
    p = kit.producer()
    frames = [ahead(p, k) for k in range(3)]
    p.abort(frames[0])
    assert p.claims == 0
    assert all(f.planes == () for f in frames)
    assert put(p, tag=7) == 1
    assert take(c) == (1, 7, True)
    assert c.drops == 0


# -- the one-at-a-time claim, the drop policy, close --------------------------------------


def test_claim_is_refused_while_frames_claimed_ahead_are_outstanding(kit: RingKit):
    kit.create(slots=4)
    c = kit.consumer()
    p = kit.producer()
    first, second = ahead(p, 1), ahead(p, 2)
    with pytest.raises(RuntimeError, match="frame 1 is claimed already"):
        p.claim(FW, FH, PixelFormat.GRAY)
    fill(first)
    p.publish(first)
    with pytest.raises(RuntimeError, match="frame 2 is claimed already"):
        p.claim(FW, FH, PixelFormat.GRAY)
    fill(second)
    p.publish(second)
    assert put(p) == 3
    assert [take(c) for _ in range(3)] == [(1, 1, True), (2, 2, True), (3, 3, True)]


def test_claim_ahead_on_a_drop_ring_is_a_runtime_error(kit: RingKit):
    kit.create(policy=Policy.DROP)
    p = kit.producer()
    with pytest.raises(RuntimeError, match="block policy"):
        p.claim_ahead(FW, FH, PixelFormat.GRAY)
    assert p.claims == 0
    assert put(p) == 1


def test_closing_a_producer_with_frames_claimed_ahead_gives_them_back_unseen(kit: RingKit):
    kit.create(slots=4)
    c = kit.consumer()
    p = kit.producer()
    frames = [ahead(p, k + 1) for k in range(3)]
    fill_in_threads(frames)
    p.publish(frames[0])
    kit.detach(p)  # no BufferError: the claims' views went with them
    assert all(f.planes == () for f in frames)

    after = kit.producer()
    assert after.claims == 0
    assert put(after, tag=50) == 2  # frames 2 and 3 were never published: their numbers go on
    assert [take(c), take(c)] == [(1, 1, True), (2, 50, True)]
    assert nothing_comes(c)
    assert c.drops == 0
