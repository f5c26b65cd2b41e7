"""The Player in a real ``lumiera up --headless``: render to a file, real-time playback, faults.

The media are tiny (64x48, tens of frames) and carry their own frame number in
their pixels (:mod:`tests.unit.vault.mediakit`), so what arrives in a file or in
the viewer ring can be checked frame by frame: FFV1 is lossless, so a rendered
file must hold exactly the composite :func:`lumiera.vault.render.render_frame`
computes in this process.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from lumiera import shm
from lumiera.bus.timeline import Timeline
from lumiera.errors import LumieraError, MediaChanged, RingTimeout
from lumiera.shm.ring import Consumer
from lumiera.testing import Instance, synced_tap, wait_for
from lumiera.vault.media import MediaPool
from lumiera.vault.render import render_frame
from tests.support import CUT_AND_OVERLAY, build, one_clip, stop, tmpfs
from tests.unit.vault.mediakit import read_code, write_video

pytestmark = pytest.mark.integration

W, H = 64, 48
RATE = 25
VIEWER = f"viewer-{W}x{H}"
PREROLL_S = 0.25  # the engine's default: the first frame of a playback is due this long after
POLL_S = 0.01  # the test's viewer looks at the ring this often (besides its wake-ups)
LATE_S = 0.2  # a frame shown later than this after its due time is late (a noisy 2-core CI)

Array = np.ndarray[Any, np.dtype[np.uint8]]
Planes = tuple[Array, ...]
Arrival = tuple[int, float, int]  # pts, time.monotonic() of arrival, number read from the pixels


# -- helpers ------------------------------------------------------------------------------


def where(inst: Instance) -> list[str]:
    return ["--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)]


def yuv_planes(frame: av.VideoFrame) -> Planes:
    """A decoded yuv420p frame as three arrays (its rows may be padded)."""
    assert frame.format.name == "yuv420p"
    out = []
    for plane in frame.planes:
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        out.append(rows[: plane.height, : plane.width].copy())
    return tuple(out)


def decode(path: Path) -> tuple[list[Planes], Fraction]:
    """Every frame of ``path``'s video as yuv420p planes, and the container's duration (s)."""
    with av.open(str(path)) as container:
        frames = [yuv_planes(f) for f in container.decode(container.streams.video[0])]
        assert container.duration is not None
        return frames, Fraction(container.duration, av.time_base)


def expected_frames(timeline: Timeline, frames: range) -> list[Planes]:
    """The composite of each frame, computed here as the engine does (yuv420p)."""
    pool = MediaPool()
    try:
        out = []
        for n in frames:
            buffers = (
                np.empty((H, W), np.uint8),
                np.empty((H // 2, W // 2), np.uint8),
                np.empty((H // 2, W // 2), np.uint8),
            )
            out.append(render_frame(timeline, n, pool, buffers, fmt="yuv420p"))
        return out
    finally:
        pool.close()


class Viewer:
    """A reader of the viewer ring, as tools/viewer.py is, recording when each frame arrives.

    ``poll``: it looks at the ring every POLL_S on its own, so a lost wake-up
    costs it no frame; without, it waits for the ring's wake-ups (as the viewer does).
    """

    def __init__(self, inst: Instance, poll: bool = True) -> None:
        self.consumer = Consumer(inst.rd, VIEWER)
        self.step = POLL_S if poll else 1.0

    @property
    def drops(self) -> int:
        """Frames published but overtaken before this reader got to them."""
        return self.consumer.drops

    def frames(self, until: Callable[[int], bool], timeout: float) -> list[Arrival]:
        """Frames as they come, until one whose pts satisfies ``until``, or ``timeout`` s."""
        got: list[Arrival] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = self.consumer.acquire(min(self.step, left))
            except RingTimeout:
                continue
            arrived = time.monotonic()
            try:
                got.append((frame.pts, arrived, read_code(frame.array)))
            finally:
                self.consumer.release(frame)
            if until(frame.pts):
                break
        return got

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> Viewer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pts(arrivals: list[Arrival]) -> list[int]:
    return [p for p, _, _ in arrivals]


def never(_pts: int) -> bool:
    return False


def played_from(shown: list[int], start: int, dropped: int) -> None:
    """``shown`` is a stream from frame ``start`` on, in order, but for the frames counted
    as dropped (by the engine: late; by the ring: overtaken before the reader got to them)."""
    assert shown and shown == sorted(set(shown)) and shown[0] >= start, shown
    unseen = set(range(start, shown[-1] + 1)) - set(shown)
    assert len(unseen) <= dropped, (start, shown, dropped)


def engine_stream(inst: Instance, sid: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in inst.request("engine", "streams") if s["id"] == sid]
    assert found, f"no engine stream {sid}"
    return found[0]


# -- render to a file -------------------------------------------------------------------


def test_a_render_to_ffv1_holds_exactly_the_composite_of_every_frame(tmp_path):
    a = write_video(tmp_path / "a.mkv", 20, "ffv1", first=0)
    b = write_video(tmp_path / "b.mkv", 20, "ffv1", first=100)
    out = tmp_path / "out.mkv"
    clips = CUT_AND_OVERLAY
    with Instance(["--headless", str(tmp_path / "edit.lum")]) as inst:
        inst.wait_running()
        timeline = build(inst, [a, b], clips, tracks=2)
        tap = synced_tap(inst.rd, ["player.render."])
        try:
            started = inst.request("player", "render", {"output": str(out), "codec": "ffv1"})
            assert started["mode"] == "render" and started["state"] == "running"
            assert (started["first"], started["count"]) == (0, 20)
            done = tap.wait_topic("player.render.done", 30)
        finally:
            tap.close()
        assert done["id"] == started["id"] and done["state"] == "done"
        assert done["frames"] == 20 and done["output"] == str(out)
        assert tap.topics("player.render.failed") == []
        (listed,) = inst.request("player", "streams")
        assert listed["state"] == "done" and listed["frames"] == 20
        stop(inst)

    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".out", "out"))) == [
        "out.mkv"
    ]  # complete, under its name; no partial file beside it
    frames, duration = decode(out)
    assert len(frames) == 20
    assert duration == Fraction(20, RATE)
    for n, (got, want) in enumerate(zip(frames, expected_frames(timeline, range(20)), strict=True)):
        for k in range(3):
            assert np.array_equal(got[k], want[k]), f"frame {n}, plane {k}"
    # Where the top-most clip is opaque, the pixels carry its source frame's number.
    codes = [read_code(planes[0]) for planes in frames]
    assert codes[:5] == [0, 1, 2, 3, 4]  # a's frames 0..4, no overlay yet
    assert codes[15:] == [107, 108, 109, 110, 111]  # after the cut and the overlay: b's 7..11


def test_a_media_replaced_on_disk_after_add_media_fails_the_render_before_any_frame(tmp_path):
    video = write_video(tmp_path / "v.mkv", 10, "ffv1")
    out = tmp_path / "out.mkv"
    with one_clip(video) as inst:
        # The same path, other content: what the session probed is not there any more.
        os.replace(write_video(tmp_path / "other.mkv", 10, "ffv1", first=50), video)
        tap = synced_tap(inst.rd, ["engine.render.", "player.render."])
        try:
            with pytest.raises(MediaChanged, match=r"v\.mkv changed on disk"):
                inst.request("player", "render", {"output": str(out), "codec": "ffv1"})
            tap.poll(0.5)  # anything published would have arrived by now
        finally:
            tap.close()
        assert tap.topics("engine.render.") == [] and tap.topics("player.render.") == []
        assert inst.request("engine", "streams") == []  # no stream, so no frame, was started
        assert inst.request("player", "streams") == []
        stop(inst)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".out", "out"))]


def test_a_sigkilled_engine_during_a_render_is_an_emergency_and_leaves_no_file(tmp_path):
    video = write_video(tmp_path / "v.mkv", 40, "ffv1")
    out = tmp_path / "out.mkv"
    defs = ["debug.faults=yes", "engine.workers=2"]
    with one_clip(video, defs) as inst:
        inst.request("engine", "slow", {"first": 5, "last": 39, "ms": 200})  # ~3.5 s of render
        started = inst.request("player", "render", {"output": str(out), "codec": "ffv1"})
        wait_for(
            lambda: inst.request("player", "streams")[0]["frames"] >= 3, 10, "3 frames encoded"
        )
        assert (tmp_path / ".out.mkv.partial").exists()  # under way, under a temporary name
        os.kill(inst.pid_of("engine"), signal.SIGKILL)
        assert inst.wait() == 2, inst.output()  # an emergency
        assert "engine ended: killed by SIGKILL" in inst.output()
        assert started["state"] == "running"

    assert not out.exists()
    left = {p.name for p in tmp_path.iterdir()} - {"v.mkv"}
    assert left <= {".out.mkv.partial"}, left  # nothing presented as the complete file
    assert shm.list_segments(inst.rd.instance) == []


def test_a_render_stopped_by_the_user_ends_stopped_and_leaves_no_file(tmp_path):
    video = write_video(tmp_path / "v.mkv", 40, "ffv1")
    out = tmp_path / "out.mkv"
    defs = ["debug.faults=yes", "engine.workers=2"]
    with one_clip(video, defs) as inst:
        inst.request("engine", "slow", {"first": 5, "last": 39, "ms": 200})
        tap = synced_tap(inst.rd, ["player.render."])
        try:
            started = inst.request("player", "render", {"output": str(out), "codec": "ffv1"})
            wait_for(lambda: inst.request("player", "streams")[0]["frames"] >= 3, 10, "3 frames")
            inst.request("player", "stop", {"stream": started["id"]})
            ended = tap.wait_topic("player.render.failed", 15)
        finally:
            tap.close()
        assert ended["state"] == "stopped" and ended["frames"] < 40
        engine_sid = started["engine_stream"]
        wait_for(lambda: engine_stream(inst, engine_sid)["state"] == "stopped", 10, "engine")
        # the player goes on: another render of the same session is accepted
        inst.request("engine", "slow", {"first": 0, "last": 39, "ms": 0})
        again = inst.request("player", "render", {"output": str(out), "codec": "ffv1", "count": 5})
        wait_for(out.exists, 15, "the second render's file")
        assert again["state"] == "running"
        stop(inst)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv", "v.mkv"]


def test_an_output_the_encoder_cannot_open_is_refused_and_stops_the_engines_stream(tmp_path):
    # The Player starts the Engine's stream before it opens the encoder (their starts
    # overlap): an encoder that then fails must stop that stream and leave nothing.
    video = write_video(tmp_path / "v.mkv", 40, "ffv1")
    bad = tmp_path / ("n" * 248 + ".mkv")  # its partial, ".NAME.partial", is too long a name
    with one_clip(video) as inst:
        with pytest.raises(LumieraError, match="cannot encode"):
            inst.request("player", "render", {"output": str(bad), "codec": "ffv1"})
        streams = inst.request("engine", "streams")
        assert len(streams) == 1  # the one the refused render had started
        wait_for(lambda: inst.request("engine", "streams")[0]["state"] == "stopped", 10, "stopped")
        assert inst.request("player", "streams") == []
        ok = tmp_path / "ok.mkv"
        again = inst.request("player", "render", {"output": str(ok), "codec": "ffv1"})
        assert again["state"] == "running"
        wait_for(ok.exists, 20, "the next render's file")
        stop(inst)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.mkv", "v.mkv"]


def test_a_render_onto_a_full_disk_fails_clearly_leaves_nothing_and_the_player_goes_on(tmp_path):
    # Random pixels do not compress: 30 FFV1 frames of 64x48 need far more than 64 KiB.
    rng = np.random.default_rng(5)
    noise = tmp_path / "noise.mkv"
    with av.open(str(noise), "w") as container:
        stream = container.add_stream("ffv1", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for _ in range(30):
            pixels = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with tmpfs(tmp_path / "disk", "64k", mode="0755") as disk, Instance(["--headless"]) as inst:
        inst.wait_running()
        build(inst, [noise], [{"media": "m1", "track": "t1", "position": 0}])
        tap = synced_tap(inst.rd, ["player.render."])
        try:
            inst.request("player", "render", {"output": str(disk / "out.mkv"), "codec": "ffv1"})
            failed = tap.wait_topic("player.render.failed", 30)
        finally:
            tap.close()
        assert failed["state"] == "failed", failed
        assert "No space left on device" in failed["error"] and "out.mkv" in failed["error"]
        assert list(disk.iterdir()) == []  # neither the file nor its partial
        ok = tmp_path / "ok.mkv"
        again = inst.request("player", "render", {"output": str(ok), "codec": "ffv1"})
        assert again["state"] == "running"
        wait_for(ok.exists, 20, "a render to a disk with room")
        stop(inst)


# -- playback into the viewer ring --------------------------------------------------------


def test_playback_keeps_to_the_rate_drops_a_slow_frame_and_builds_no_backlog(tmp_path):
    video = write_video(tmp_path / "v.mkv", 30, "ffv1")
    # Two workers: a frame's job is queued 6 frames (0.24 s) ahead, so a job of
    # 300 ms cannot be ready in time: frames 10, 11 and 12 are dropped for sure.
    defs = ["debug.faults=yes", "engine.workers=2"]
    with one_clip(video, defs) as inst:
        inst.request("engine", "slow", {"first": 10, "last": 12, "ms": 300})
        tap = synced_tap(inst.rd, ["engine.render."])
        try:
            asked = time.monotonic()
            reply = inst.request("player", "play")
            answered = time.monotonic()
            assert reply["mode"] == "playback" and reply["state"] == "running"
            assert (reply["first"], reply["count"], reply["rate"]) == (0, 30, str(RATE))
            with Viewer(inst) as v:
                got = v.frames(lambda p: p >= 29, timeout=10)
                assert v.drops == 0  # this reader kept up: every frame published reached it
            done = tap.wait_topic("engine.render.done", 10)
        finally:
            tap.close()
        assert done["id"] == reply["engine_stream"] and done["state"] == "done"
        wait_for(
            lambda: inst.request("player", "streams")[0]["state"] == "done", 5, "playback done"
        )
        (listed,) = inst.request("player", "streams")
        stop(inst)

    shown = pts(got)
    assert shown == sorted(set(shown)) and shown[-1] == 29  # in order, to the end
    assert all(code == p for p, _, code in got)  # each frame shows its own picture
    assert not {10, 11, 12} & set(shown)  # the slow ones were dropped ...
    assert done["dropped"] >= 3 and done["frames"] == len(shown)  # ... and counted
    assert len(shown) + done["dropped"] == 30
    assert listed["dropped"] == done["dropped"]  # the Player reports the engine's count
    # Timing: frame k is due at start + k / rate, where the engine set start when the
    # request reached it: between asked and answered, plus the preroll.
    earliest, latest = asked + PREROLL_S, answered + PREROLL_S
    for p, arrived, _ in got:
        assert arrived >= earliest + p / RATE - 0.002, f"frame {p} came before its due time"
    lateness = [arrived - (latest + p / RATE) for p, arrived, _ in got]
    assert max(lateness) < LATE_S, lateness
    assert sorted(lateness)[len(lateness) // 2] < 0.05, lateness
    # No backlog: the first frame after the slow ones and the last are on time.
    after = [late for (p, _, _), late in zip(got, lateness, strict=True) if p > 12]
    assert after[0] < LATE_S and after[-1] < LATE_S, after


def test_the_play_reply_says_when_its_first_frame_is_due(tmp_path):
    video = write_video(tmp_path / "v.mkv", 10, "ffv1")
    with one_clip(video) as inst:
        try:
            asked = time.monotonic()
            reply = inst.request("player", "play")
            answered = time.monotonic()
        finally:
            stop(inst)
    assert "start" in reply, sorted(reply)
    assert asked + PREROLL_S <= reply["start"] <= answered + PREROLL_S


def test_seek_pause_resume_and_stop_move_the_frames_that_reach_the_viewer(tmp_path):
    video = write_video(tmp_path / "v.mkv", 100, "ffv1")
    with Instance(["--headless"], defs=["engine.workers=2"]) as inst:
        inst.wait_running()
        build(inst, [video], [{"media": "m1", "track": "t1", "position": 0}])
        played = inst.request("player", "play")
        assert played["state"] == "running" and played["count"] == 100
        with Viewer(inst) as v:
            shown = pts(v.frames(lambda p: p >= 5, timeout=5))
            assert shown == sorted(set(shown)) and shown[-1] >= 5, shown

            drops = v.drops
            sought = inst.request("player", "seek", {"frame": 40})
            assert sought["id"] == played["id"] and sought["state"] == "running"
            assert sought["frame"] == 40 and sought["engine_stream"] != played["engine_stream"]
            shown = pts(v.frames(lambda p: p >= 47, timeout=5))
            before = [p for p in shown if p < 40]  # published before the seek reached the engine
            assert shown[: len(before)] == before == sorted(set(before)), shown
            dropped = engine_stream(inst, sought["engine_stream"])["dropped"]
            played_from(shown[len(before) :], 40, dropped + v.drops - drops)
            assert engine_stream(inst, played["engine_stream"])["state"] == "stopped"

            paused = inst.request("player", "pause")
            assert paused["state"] == "paused"
            at = paused["frame"]
            assert at >= shown[-1]
            late = pts(v.frames(never, timeout=0.6))
            # At most what was in the ring already (and the frame due as the pause came).
            assert all(p <= at + 1 for p in late), (at, late)
            assert engine_stream(inst, sought["engine_stream"])["state"] == "stopped"
            assert inst.request("player", "streams")[0]["state"] == "paused"

            drops = v.drops
            resumed = inst.request("player", "play")
            assert resumed["id"] == played["id"] and resumed["state"] == "running"
            assert resumed["frame"] == at
            shown = pts(v.frames(lambda p: p >= at + 4, timeout=5))
            dropped = engine_stream(inst, resumed["engine_stream"])["dropped"]
            played_from(shown, at, dropped + v.drops - drops)

            stopped = inst.request("player", "stop")
            assert stopped["state"] == "stopped" and stopped["frame"] >= shown[-1]
            late = pts(v.frames(never, timeout=0.6))
            assert all(p <= stopped["frame"] + 1 for p in late), (stopped["frame"], late)
        assert engine_stream(inst, resumed["engine_stream"])["state"] == "stopped"
        (listed,) = inst.request("player", "streams")
        assert listed["state"] == "stopped" and listed["frame"] == stopped["frame"]
        stop(inst)


def test_a_seek_while_the_engine_is_busy_keeps_the_viewer_woken(tmp_path):
    video = write_video(tmp_path / "v.mkv", 100, "ffv1")
    defs = ["debug.faults=yes", "engine.workers=2"]
    with one_clip(video, defs) as inst:
        # Both workers sleep in frames 10 and 11: the stream's next read waits behind
        # them, so the stream that the seek stops ends ~0.5 s after the seek.
        inst.request("engine", "slow", {"first": 10, "last": 11, "ms": 600})
        sockets = [inst.rd.path / f"ring-{VIEWER}.{end}" for end in ("frames", "free")]
        try:
            played = inst.request("player", "play")
            with Viewer(inst, poll=False) as v:  # woken by the ring, as tools/viewer.py is
                v.frames(lambda p: p >= 7, timeout=5)
                sought = inst.request("player", "seek", {"frame": 40})
                drops = v.drops
                shown = pts(v.frames(never, timeout=1.5))
                lost = v.drops - drops
            missing = [s.name for s in sockets if not s.exists()]
            if engine_stream(inst, sought["engine_stream"])["state"] != "running":
                pytest.fail("the stream after the seek should still run (60 frames)")
            if engine_stream(inst, played["engine_stream"])["state"] != "stopped":
                pytest.fail("the stream before the seek should have ended")
        finally:
            stop(inst)
    # The new stream's wake-up sockets are there, and the viewer loses no frame.
    assert (missing, lost) == ([], 0), f"frames shown after the seek: {shown}"
