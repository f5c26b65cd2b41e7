"""Frame rings under faults, in a real instance during playback.

Already proven at the ring level, between processes (tests/integration/shm/
test_ring_processes.py): a producer SIGKILLed between claiming and publishing
a slot leaves no torn frame and a new producer goes on; a killed consumer
blocks no producer (block and drop policy). Too little shared memory fails
at creation with SegmentError, never SIGBUS, on a 2 MiB tmpfs standing in
for /dev/shm (tests/integration/shm/test_shm_space.py), and ``lumiera up``
with a declared ring larger than /dev/shm exits 1 before anything starts
(tests/integration/test_rings_e2e.py).

Here, in ``lumiera up --headless`` playing a 30-frame clip whose frames
carry their own number in their pixels (tests/unit/vault/mediakit.py):

* a viewer that takes a frame and never releases it: playback goes on to
  its end (a second viewer sees every frame in order, each its own picture),
  and the instance's shared memory stays what it was (the same segments, of
  the same sizes: the drop ring gives way, nothing queues);
* the engine (the viewer ring's producer) SIGKILLed mid-playback: every
  frame a viewer got is whole (its pixels say its own number), the
  emergency is as documented (exit 2) and no segment is left.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from lumiera import shm
from lumiera.errors import LumieraError, RingTimeout
from lumiera.shm.ring import Consumer
from lumiera.testing import Instance, wait_for
from tests.support import one_clip, stop
from tests.unit.vault.mediakit import read_code, write_video

pytestmark = pytest.mark.integration

VIEWER = "viewer-64x48"
FRAMES = 30


def sizes(inst: Instance) -> dict[str, int]:
    """The instance's shared-memory segments and their sizes in bytes."""
    return {
        name: (shm.SHM_DIR / name).stat().st_size for name in shm.list_segments(inst.rd.instance)
    }


def read(consumer: Consumer, until: int, timeout: float) -> list[tuple[int, int]]:
    """(pts, number in the pixels) of each frame, until pts ``until`` or ``timeout`` s."""
    got: list[tuple[int, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frame = consumer.acquire(0.05)
        except RingTimeout:
            continue
        try:
            got.append((frame.pts, read_code(frame.array)))
        finally:
            consumer.release(frame)
        if frame.pts >= until:
            break
    return got


def test_a_viewer_that_never_releases_its_frame_neither_stops_playback_nor_grows_memory(
    tmp_path: Path,
):
    video = write_video(tmp_path / "v.mkv", FRAMES, "ffv1")
    with one_clip(video) as inst:
        reply = inst.request("player", "play")
        assert reply["mode"] == "playback"
        hog = Consumer(inst.rd, VIEWER)
        good = Consumer(inst.rd, VIEWER)
        try:
            before = sizes(inst)
            held = hog.acquire(5.0)  # and never released while the playback runs
            got = read(good, FRAMES - 1, timeout=5)
            wait_for(
                lambda: inst.request("player", "streams")[0]["state"] == "done",
                10,
                "the playback's end",
            )
            after = sizes(inst)
            good_drops = good.drops
            assert held.pts < FRAMES - 1  # it still holds an early frame
            hog.release(held)
        finally:
            hog.close()
            good.close()
        (listed,) = inst.request("player", "streams")
        stop(inst)
    shown = [p for p, _ in got]
    assert shown == sorted(set(shown)) and shown[-1] == FRAMES - 1, shown
    assert all(p == code for p, code in got), got
    assert len(shown) >= FRAMES - listed["dropped"] - good_drops
    assert after == before  # bounded: the same segments, the same sizes


def test_an_engine_killed_mid_playback_leaves_no_torn_frame_and_no_segment(tmp_path: Path):
    video = write_video(tmp_path / "v.mkv", FRAMES, "ffv1")
    with one_clip(video) as inst:
        inst.request("player", "play")
        viewer = Consumer(inst.rd, VIEWER)
        try:
            got = read(viewer, 5, timeout=10)
            assert got and got[-1][0] >= 5
            os.kill(inst.pid_of("engine"), signal.SIGKILL)
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:  # what it still finds: whole frames only
                try:
                    got += read(viewer, FRAMES, timeout=0.2)
                except LumieraError:
                    break
        finally:
            viewer.close()
        assert inst.wait(timeout=20) == 2, inst.output()
        assert "engine ended: killed by SIGKILL" in inst.output()
        assert shm.list_segments(inst.rd.instance) == []
    assert all(p == code for p, code in got), got
