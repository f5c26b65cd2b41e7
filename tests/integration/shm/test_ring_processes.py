"""Frame rings between processes: many frames, slow and fast readers, and processes that die.

Helper processes are ``python -c CODE`` (not multiprocessing, whose children
would share the test's resource tracker). Every frame is recognisable: all
its bytes are ``seq % 251`` and its pts is its seq, so a torn or misplaced
frame shows.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

import numpy as np
import pytest

from lumiera import shm
from lumiera.shm.layout import OFF_DROPS, SLOT_HEADER_SIZE, PixelFormat, Policy, planes_of
from lumiera.shm.ring import RingTimeout
from tests.unit.shm.ringkit import Child, RingKit, fill_value, put, take

pytestmark = pytest.mark.integration

SHORT_S = 0.3  # how long a test waits for something that must not happen

# Reads until frame LAST, checking each; holds each frame HOLD_S; starts reading only
# once the producer has published START_AT. Prints one "result <json>" line.
READER = """
last, hold, start_at = int(args[0]), float(args[1]), int(args[2])
c = ring.Consumer(rd, name, timeout=10.0)
say("ready", c.index)
deadline = time.monotonic() + 10
while c.write_seq < start_at:
    if time.monotonic() > deadline:
        sys.exit(f"no frame {start_at} within 10 s")
    time.sleep(0.002)
seqs, bad = [], []
while not seqs or seqs[-1] < last:
    f = c.acquire()
    if f.pts != f.seq or f.array.shape != (8, 16) or not (f.array == f.seq % 251).all():
        bad.append(f.seq)
    seqs.append(f.seq)
    time.sleep(hold)
    c.release(f)
result = {"seqs": seqs, "bad": bad, "drops": c.drops, "read": c.u64(c.off + C_READ)}
say("result", json.dumps(result, separators=(",", ":")))
c.close()
"""

# Attaches, acquires one frame and keeps it until killed.
HOLDER = """
c = ring.Consumer(rd, name, timeout=10.0)
say("attached", c.index)
f = c.acquire()
say("holding", f.seq)
time.sleep(60)
"""

# Publishes COMPLETE frames, then claims one more, fills its first half and waits to be killed.
TORN_PRODUCER = """
p = ring.Producer(rd, name, timeout=10.0)
for _ in range(int(args[0])):
    f = p.claim(16, 8, PixelFormat.GRAY)
    f.array[...] = f.seq % 251
    f.pts = f.seq
    p.publish(f)
f = p.claim(16, 8, PixelFormat.GRAY)
f.array[:4] = f.seq % 251
say("claimed", f.seq)
time.sleep(60)
"""

# Writes one frame of random content per (format, width, height); prints its checksum.
FORMATS_PRODUCER = """
import hashlib
from lumiera.shm.layout import planes_of
p = ring.Producer(rd, name, timeout=10.0)
for k, (fmt, w, h) in enumerate(json.loads(args[0])):
    fmt = PixelFormat[fmt]
    rng = np.random.default_rng(k)
    planes = tuple(rng.integers(0, 256, pl.shape, dtype=np.uint8) for pl in planes_of(fmt, w, h))
    assert p.write(planes if len(planes) > 1 else planes[0], fmt, pts=k)
    say("sent", k, hashlib.sha256(b"".join(a.tobytes() for a in planes)).hexdigest())
p.close()
"""

# Attaches a bare segment, a consumer and a producer, passes a frame, then leaves:
# closing everything ("close") or exiting at once with everything attached ("exit").
VISITOR = """
from lumiera.shm import segment_name
from lumiera.shm.segment import Segment
seg = Segment.attach(segment_name(rd.instance, name))
c = ring.Consumer(rd, name, timeout=10.0)
p = ring.Producer(rd, name, timeout=10.0)
assert p.write(np.full((8, 16), 7, np.uint8), PixelFormat.GRAY, pts=7)
f = c.acquire()
say("read", f.seq, f.pts, bool((f.array == 7).all()))
c.release(f)
del f
if args[0] == "close":
    c.close()
    p.close()
    seg.close()
    say("closed")
else:
    os._exit(0)
"""


def header_drops(kit: RingKit) -> int:
    return int.from_bytes(kit.segments[0].buf[OFF_DROPS : OFF_DROPS + 8], "little")


def result_of(child: Child) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(child.expect("result", timeout=20)[1])
    return result


# -- many frames, two consumers --------------------------------------------------------


def test_with_the_block_policy_a_fast_and_a_slow_consumer_each_get_every_frame_intact(
    kit: RingKit,
):
    n = 200
    kit.create(slots=3, policy=Policy.BLOCK)
    p = kit.producer()  # bound first, so the readers' wake-up sockets connect at once
    fast = kit.spawn(READER, "r", n, 0, 0)
    slow = kit.spawn(READER, "r", n, 0.001, 0)
    fast.expect("ready")
    slow.expect("ready")

    assert [put(p) for _ in range(n)] == list(range(1, n + 1))

    every = {"seqs": list(range(1, n + 1)), "bad": [], "drops": 0, "read": n}
    assert result_of(fast) == every
    assert result_of(slow) == every
    assert fast.finish() == (0, "", "")
    assert slow.finish() == (0, "", "")
    assert header_drops(kit) == 0


def test_with_the_drop_policy_consumers_lose_only_overwritten_frames_and_count_each_exactly(
    kit: RingKit,
):
    n, slots = 300, 4
    kit.create(slots=slots, policy=Policy.DROP)
    p = kit.producer()  # bound first, so the readers' wake-up sockets connect at once
    fast = kit.spawn(READER, "r", n, 0, 0)
    late = kit.spawn(READER, "r", n, 0.001, n // 2)  # starts reading at frame n/2
    fast.expect("ready")
    late.expect("ready")

    # A slot whose frame a reader is reading is passed over: its number is skipped
    # (no frame has it), the frame goes into the next slot. None only if all are held.
    published: list[int] = []
    deadline = time.monotonic() + 20
    while p.write_seq < n:
        assert time.monotonic() < deadline, f"only {p.write_seq} of {n} frames published"
        if seq := put(p):
            published.append(seq)
    skipped = set(range(1, p.write_seq + 1)) - set(published)
    assert header_drops(kit) == 0

    results = {child: result_of(child) for child in (fast, late)}
    for child, r in results.items():
        seqs = r["seqs"]
        assert seqs == sorted(set(seqs)), "frames out of order or twice"
        assert set(seqs) <= set(published)  # never a skipped number
        assert seqs[-1] == published[-1]  # the newest frame is never lost
        assert r["bad"] == []
        # Every frame it never saw is a drop; a skipped number is not, unless the reader
        # was overtaken past it without looking (then it cannot tell).
        missed = len(set(published) - set(seqs))
        assert missed <= r["drops"] <= missed + len(skipped)
        assert r["read"] == len(seqs)
        assert child.finish() == (0, "", "")
    # When the late one began, frames up to n/2 - slots had been overwritten already.
    assert results[late]["seqs"][0] > n // 2 - slots
    assert results[late]["drops"] >= n // 2 - slots


def test_every_pixel_format_crosses_processes_byte_for_byte(kit: RingKit):
    shapes = [(fmt.name, w, h) for fmt in PixelFormat for w, h in ((1, 1), (5, 3), (33, 17))]
    kit.create(slots=2, payload_bytes=33 * 17 * 4, policy=Policy.BLOCK)
    c = kit.consumer()
    child = kit.spawn(FORMATS_PRODUCER, "r", json.dumps(shapes))
    for k, (fmt_name, w, h) in enumerate(shapes):
        fmt = PixelFormat[fmt_name]
        _, _, checksum = child.expect("sent")
        frame = c.acquire()
        assert (frame.seq, frame.pts, frame.fmt, frame.width, frame.height) == (
            k + 1,
            k,
            fmt,
            w,
            h,
        )
        assert [a.shape for a in frame.planes] == [pl.shape for pl in planes_of(fmt, w, h)]
        got = hashlib.sha256(b"".join(a.tobytes() for a in frame.planes)).hexdigest()
        c.release(frame)
        rng = np.random.default_rng(k)
        expected = b"".join(
            rng.integers(0, 256, pl.shape, dtype=np.uint8).tobytes() for pl in planes_of(fmt, w, h)
        )
        assert got == checksum == hashlib.sha256(expected).hexdigest()
    assert child.finish() == (0, "", "")
    assert c.drops == 0


# -- a producer dies mid-frame -----------------------------------------------------------


@pytest.mark.parametrize("policy", list(Policy), ids=lambda p: p.name.lower())
def test_a_producer_killed_mid_frame_leaves_no_torn_frame_and_a_new_producer_goes_on(
    kit: RingKit, policy: Policy
):
    seg = kit.create(slots=4, policy=policy)
    c = kit.consumer()
    child = kit.spawn(TORN_PRODUCER, "r", 3)
    assert child.expect("claimed") == ["claimed", "4"]
    child.kill()

    assert [take(c) for _ in range(3)] == [(s, s, True) for s in (1, 2, 3)]
    with pytest.raises(RingTimeout):
        c.acquire(SHORT_S)
    torn = c.slot_base(4 % 4)
    assert c.u64(torn) == 0  # the slot says: nothing valid here
    payload = seg.buf[torn + SLOT_HEADER_SIZE : torn + SLOT_HEADER_SIZE + 128]
    assert bytes(payload) == bytes([fill_value(4)] * 64) + bytes(64)  # really half written
    del payload
    assert c.write_seq == 3

    p = kit.producer()  # binds the dead producer's wake-up socket paths again
    # The write seq never got past 3, so the new producer's first frame is number 4 again.
    assert put(p, tag=1000) == 4
    assert take(c) == (4, 1000, True)
    assert put(p, tag=1001) == 5
    assert take(c) == (5, 1001, True)
    assert c.drops == 0


# -- a consumer dies ----------------------------------------------------------------------


def test_a_blocking_producer_stops_waiting_for_a_consumer_once_it_is_killed(kit: RingKit):
    kit.create(slots=2, policy=Policy.BLOCK, max_consumers=1)
    p = kit.producer(timeout=SHORT_S)
    holder = kit.spawn(HOLDER)
    holder.expect("attached")
    assert [put(p), put(p)] == [1, 2]
    assert holder.expect("holding") == ["holding", "1"]
    with pytest.raises(RingTimeout, match=rf"not released by consumer pid\(s\) \[{holder.pid}\]"):
        put(p)

    holder.kill()  # the kernel drops its entry lock and its lock on slot 1
    assert put(p) == 3  # within the producer's 0.3 s bound, or RingTimeout again

    c = kit.consumer()  # the only entry, a dead consumer's, can be taken again
    assert c.index == 0
    assert put(p) == 4
    assert take(c) == (4, 4, True)


def test_a_dropping_producer_writes_past_a_held_frame_and_uses_its_slot_once_killed(
    kit: RingKit,
):
    kit.create(slots=2, policy=Policy.DROP)
    p = kit.producer()
    holder = kit.spawn(HOLDER)
    holder.expect("attached")
    assert [put(p), put(p)] == [1, 2]
    assert holder.expect("holding") == ["holding", "1"]
    # 3 and 5 would overwrite frame 1, which another process reads: skipped, not dropped
    assert [put(p), put(p)] == [4, 6]
    assert header_drops(kit) == 0

    holder.kill()  # the kernel drops its lock on slot 1
    assert put(p) == 7
    assert header_drops(kit) == 0


# -- attaching from another process ---------------------------------------------------


@pytest.mark.parametrize("leaving", ["close", "exit"])
def test_another_process_attaching_and_leaving_keeps_the_ring_and_warns_about_nothing(
    kit: RingKit, leaving: str
):
    seg = kit.create(slots=2, policy=Policy.DROP)
    inode = os.stat(seg.path).st_ino
    visitor = kit.spawn(VISITOR, "r", leaving)
    assert visitor.expect("read") == ["read", "1", "7", "True"]
    rc, out, err = visitor.finish()
    assert rc == 0
    assert out == ("closed\n" if leaving == "close" else "")
    assert err == ""  # no resource_tracker warning about "leaked" shared memory
    assert os.stat(seg.path).st_ino == inode
    assert shm.list_segments(kit.rd.instance) == [seg.name]
    if leaving == "close":
        assert kit.socket_files() == []  # its producer removed the sockets it bound

    c = kit.consumer()
    p = kit.producer()
    assert put(p) == 2
    assert take(c) == (2, 2, True)
