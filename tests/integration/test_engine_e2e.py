"""The Engine renders a timeline into a ring, with real processes and real media."""

from __future__ import annotations

import av
import numpy as np
import pytest

from lumiera.bus.timeline import Timeline
from lumiera.errors import MediaError
from lumiera.shm import ring
from lumiera.testing import Instance, Tap, run_cli, wait_for
from lumiera.vault.media import MediaPool
from lumiera.vault.render import render_frame

pytestmark = pytest.mark.integration
W, H = 32, 24


def write_ffv1(path, frames: int, base: int) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for k in range(frames):
            gray = np.full((H, W), base + 4 * k, np.uint8)
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(gray, format="gray").reformat(format="yuv420p")
            ):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_the_engine_renders_a_session_timeline_into_a_ring_exactly_and_in_order(tmp_path):
    a, b = tmp_path / "a.mkv", tmp_path / "b.mkv"
    write_ffv1(a, 20, 10)
    write_ffv1(b, 20, 100)
    session = tmp_path / "edit.lumiera"
    defs = ["rings.declared=render:block:4:1", "engine.workers=2"]
    with Instance(["--headless", str(session)], defs=defs) as inst:
        inst.wait_running()
        for args in (
            {"path": str(a)},
            {"path": str(b)},
        ):
            inst.request("session", "add_media", args)
        inst.request("session", "add_track", {"name": "V1"})
        inst.request("session", "add_track", {"name": "V2"})
        inst.request("session", "set_output", {"width": W, "height": H})
        inst.request(
            "session", "add_clip", {"media": "m1", "track": "t1", "position": 0, "source_out": 10}
        )
        inst.request(
            "session",
            "add_clip",
            {"media": "m2", "track": "t1", "position": 10, "source_in": 2, "source_out": 12},
        )
        inst.request(
            "session",
            "add_clip",
            {"media": "m2", "track": "t2", "position": 5, "source_out": 10, "opacity": 0.4},
        )
        timeline = Timeline.from_wire(inst.request("session", "timeline"))

        tap = Tap(inst.rd, ["engine.render."])
        consumer = ring.Consumer(inst.rd, "render", timeout=30)
        pool = MediaPool()
        try:
            wait_for(lambda: inst.request("appstate", "ping"), 5, "ping")
            started = inst.request(
                "engine",
                "render",
                {"timeline": timeline, "first": 0, "count": 20, "ring": "render"},
            )
            assert started["frames"] == 20
            for n in range(20):
                frame = consumer.acquire(30)
                try:
                    assert frame.pts == n  # in order, whatever order the workers finished in
                    expected = render_frame(timeline, n, pool, (np.empty((H, W, 3), np.uint8),))[0]
                    assert (frame.array == expected).all(), n
                finally:
                    consumer.release(frame)
            done = tap.wait_topic("engine.render.done", 30)
        finally:
            consumer.close()
            tap.close()
            pool.close()
        assert done["frames"] == 20 and done["state"] == "done" and done["failed"] == 0
        desc = inst.request("engine", "describe")
        assert desc["built"] is True and desc["jobs"]["done"] >= 20 and desc["streams"] == []
        assert inst.request("engine", "streams")[0]["state"] == "done"
        bad = run_cli(
            "send",
            "engine",
            "render",
            '{"timeline": {}, "first": 0, "count": 1, "ring": "render"}',
            "--instance",
            inst.rd.instance,
            "--runtime-dir",
            str(inst.rd.path),
        )
        assert bad.returncode == 1 and "bad_timeline" in bad.stdout
        assert "timeline: missing field 'output'" in bad.stdout
        assert (
            run_cli(
                "stop", "--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)
            ).returncode
            == 0
        )
        assert inst.wait() == 0


def test_a_render_whose_source_is_missing_is_refused_before_any_stream_and_the_engine_goes_on(
    tmp_path,
):
    gone = {"id": "m1", "path": str(tmp_path / "gone.mkv"), "frames": 10, "rate": "25"}
    gone.update(width=W, height=H, pix_fmt="yuv420p", size=1, mtime_ns=1, inode=1)
    timeline = {
        "output": {"width": W, "height": H, "rate": "25"},
        "media": [gone],
        "tracks": [{"id": "t1", "name": "V1"}],
        "clips": [
            {
                "id": "c1",
                "media": "m1",
                "track": "t1",
                "position": 0,
                "source_in": 0,
                "source_out": 10,
                "opacity": 1.0,
            }
        ],
    }
    with Instance(["--headless"], defs=["rings.declared=render:block:2:1"]) as inst:
        inst.wait_running()
        wait_for(lambda: inst.request("appstate", "ping"), 5, "ping")
        with pytest.raises(MediaError, match=r"gone\.mkv"):
            inst.request(
                "engine", "render", {"timeline": timeline, "first": 0, "count": 3, "ring": "render"}
            )
        assert inst.request("engine", "ping")["pong"] is True
        assert inst.request("engine", "streams") == []
