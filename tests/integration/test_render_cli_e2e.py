"""``lumiera render``, ``lumiera up --script`` and the script API, with real processes and media.

Each ``lumiera render`` brings up an instance of its own (``render-<pid>``); it
is run here with a runtime directory under the suite's base, and its instance
name is handed to the suite's leak check, so its sockets and shm segments are
checked like those of any Instance.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from lumiera import api, testing
from lumiera.bus.timeline import Timeline
from lumiera.errors import LumieraError, MediaError
from lumiera.testing import Instance, run_cli, unique_runtime_dir, wait_for
from lumiera.vault.media import MediaPool
from lumiera.vault.render import render_frame
from tests.support import CUT_AND_OVERLAY, build, one_clip, render_cli, stop
from tests.unit.vault.mediakit import read_code, write_video

pytestmark = pytest.mark.integration

W, H = 64, 48
RATE = 25
EXIT_USAGE = 64

Array = np.ndarray[Any, np.dtype[np.uint8]]
Planes = tuple[Array, ...]
Edit = tuple[Path, Timeline]


# -- helpers ------------------------------------------------------------------------------


render = render_cli


def decode(path: Path) -> tuple[list[av.VideoFrame], Fraction, str]:
    """The frames of ``path``'s video, the container's duration (s) and its codec's name."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert container.duration is not None
        return frames, Fraction(container.duration, av.time_base), stream.codec_context.name


def yuv_planes(frame: av.VideoFrame) -> Planes:
    assert frame.format.name == "yuv420p"
    out = []
    for plane in frame.planes:
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        out.append(rows[: plane.height, : plane.width].copy())
    return tuple(out)


def expected(timeline: Timeline, n: int, pool: MediaPool) -> Planes:
    buffers = (
        np.empty((H, W), np.uint8),
        np.empty((H // 2, W // 2), np.uint8),
        np.empty((H // 2, W // 2), np.uint8),
    )
    return render_frame(timeline, n, pool, buffers, fmt="yuv420p")


def ended_in_order(output: str) -> list[str]:
    """The subsystems whose end the supervisor logged, in that order."""
    return re.findall(r"appstate\| INFO (\w+) ended: exit code 0", output)


@pytest.fixture(scope="module")
def edit(tmp_path_factory: pytest.TempPathFactory) -> Edit:
    """A session file: two tracks, a cut at frame 10, b at opacity 0.4 over frames 5..14."""
    base = tmp_path_factory.mktemp("edit")
    a = write_video(base / "a.mkv", 20, "ffv1", first=0)
    b = write_video(base / "b.mkv", 20, "ffv1", first=100)
    session = base / "edit.lum"
    clips = CUT_AND_OVERLAY
    with Instance(["--headless", str(session)]) as inst:
        inst.wait_running()
        timeline = build(inst, [a, b], clips, tracks=2)
        stop(inst)
    return session, timeline


# -- lumiera render ---------------------------------------------------------------------


def test_render_a_range_to_ffv1_writes_exactly_those_frames_and_says_so(edit, tmp_path):
    session, timeline = edit
    out = tmp_path / "range.mkv"
    result = render(str(session), "-o", str(out), "--codec", "ffv1", "--range", "5:15")
    assert result.returncode == 0, result.stderr
    summary = re.fullmatch(
        rf"rendered 10 frames to {re.escape(str(out))} in (\d+\.\d\d) s "
        r"\((\d+\.\d) fps overall, (\d+\.\d) fps rendering\)\n",
        result.stdout,
    )
    assert summary is not None, result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["range.mkv"]  # no partial file left

    frames, duration, codec = decode(out)
    assert codec == "ffv1" and len(frames) == 10
    assert duration == Fraction(10, RATE)
    pool = MediaPool()
    try:
        for k, frame in enumerate(frames):  # frames 5..14 of the timeline, exactly
            got, want = yuv_planes(frame), expected(timeline, 5 + k, pool)
            assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True)), 5 + k
    finally:
        pool.close()


def test_render_to_h264_by_default_writes_a_playable_mp4_of_the_whole_timeline(edit, tmp_path):
    session, _timeline = edit
    out = tmp_path / "film.mp4"
    result = render(str(session), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"rendered 20 frames to {out} in ")
    frames, duration, codec = decode(out)
    assert codec == "h264" and len(frames) == 20
    assert abs(duration - Fraction(20, RATE)) <= Fraction(1, 2 * RATE)
    codes = [read_code(frame.to_ndarray(format="gray")) for frame in frames]
    assert codes[:5] == [0, 1, 2, 3, 4]  # lossy, but the frame numbers survive
    assert codes[15:] == [107, 108, 109, 110, 111]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}", "-o", "{out}"], "no such file"),
        (["{session}", "-o", "{out}", "--range", "5"], "--range 5: expected A:B"),
        (["{session}", "-o", "{out}", "--range", "9:3"], "--range 9:3: expected A:B"),
        (["{session}", "-o", "{out}", "--range", "a:b"], "--range a:b: expected A:B"),
        (["{session}", "-o", "{out}", "--codec", "nope"], "--codec nope: one of"),
        (["{session}", "-o", "{nodir}"], "no directory"),
    ],
    ids=["no-session", "range-no-colon", "range-backwards", "range-not-numbers", "codec", "dir"],
)
def test_render_usage_errors_exit_64_before_anything_starts(tmp_path, args, message):
    session = tmp_path / "edit.lum"
    session.write_bytes(b"")  # only its being there is checked before the start
    names = {
        "missing": str(tmp_path / "missing.lum"),
        "session": str(session),
        "out": str(tmp_path / "out.mkv"),
        "nodir": str(tmp_path / "no" / "out.mkv"),
    }
    result = render(*(a.format(**names) for a in args), timeout=30)
    assert result.returncode == EXIT_USAGE, (result.stdout, result.stderr)
    assert message in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edit.lum"]


def test_a_render_of_missing_media_fails_before_any_frame_in_the_player_and_the_cli(tmp_path):
    video = write_video(tmp_path / "v.mkv", 10, "ffv1")
    session = tmp_path / "edit.lum"
    out = tmp_path / "out.mkv"
    with Instance(["--headless", str(session)]) as inst:
        inst.wait_running()
        build(inst, [video], [{"media": "m1", "track": "t1", "position": 0}])
        video.unlink()
        with pytest.raises(MediaError) as caught:
            inst.request("player", "render", {"output": str(out), "codec": "ffv1"})
        assert caught.value.code == "media"
        assert str(caught.value) == f"media m1: {video} is missing"
        assert inst.request("engine", "streams") == []  # no frame was asked for
        assert inst.request("player", "streams") == []
        stop(inst)
    assert not out.exists() and not (tmp_path / ".out.mkv.partial").exists()

    result = render(str(session), "-o", str(out), "--codec", "ffv1")
    assert result.returncode == 1, result.stderr
    assert f"MediaError: media m1: {video} is missing" in result.stderr
    assert f"lumiera render: failed (exit 1); {out} was not written" in result.stderr
    assert result.stdout == ""
    assert not out.exists() and not (tmp_path / ".out.mkv.partial").exists()


# -- lumiera up --script and the script API -------------------------------------------------


def test_a_script_that_raises_ends_the_application_in_order_with_exit_1(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("def edit():\n    raise RuntimeError('the script went wrong')\n\nedit()\n")
    with Instance(["--headless", "--script", str(script)]) as inst:
        assert inst.wait(30) == 1
        out = inst.output()
    assert "Traceback (most recent call last)" in out
    assert f'File "{script}", line 2, in edit' in out
    assert "RuntimeError: the script went wrong" in out
    assert f"script {script} raised RuntimeError: the script went wrong" in out
    # An error, not an emergency: the others are stopped in order, each ending cleanly.
    assert ended_in_order(out) == ["script", "player", "session", "engine"], out
    assert "emergency" not in out.lower() and "SIGKILL" not in out


def test_a_script_builds_a_session_through_the_api_and_renders_it(tmp_path):
    a = write_video(tmp_path / "a.mkv", 8, "ffv1", first=0)
    b = write_video(tmp_path / "b.mkv", 8, "ffv1", first=200)
    out = tmp_path / "cut.mkv"
    report = tmp_path / "report.json"
    script = tmp_path / "edit.py"
    script.write_text(
        f"""
import json
from lumiera import api

app = api.app()
s = app.session
ids = [s.add_media({str(a)!r}), s.add_media({str(b)!r}), s.add_track("V1")]
s.set_output(width={W}, height={H}, rate="{RATE}")
ids.append(s.add_clip(ids[0], ids[2], 0, source_out=6))
ids.append(s.add_clip(ids[1], ids[2], 6, source_in=2, source_out=6))
timeline = s.timeline()
ends = [(c.id, c.end) for c in timeline.clips]
done = app.render({str(out)!r}, codec="ffv1")
app.close()
with open({str(report)!r}, "w") as f:
    json.dump({{"ids": ids, "done": done, "length": timeline.length, "ends": ends}}, f)
"""
    )
    session = tmp_path / "edit.lum"
    with Instance(["--headless", str(session), "--script", str(script)]) as inst:
        assert inst.wait(30) == 0, inst.output()
        assert ended_in_order(inst.output()) == ["script", "player", "session", "engine"]
    result = json.loads(report.read_text())
    assert result["ids"] == ["m1", "m2", "t1", "c1", "c2"]
    assert result["length"] == 10 and result["ends"] == [["c1", 6], ["c2", 10]]
    done = result["done"]
    assert done["state"] == "done" and done["mode"] == "render"
    assert done["frames"] == 10 and done["output"] == str(out)
    frames, duration, codec = decode(out)
    assert codec == "ffv1" and duration == Fraction(10, RATE)
    codes = [read_code(yuv_planes(frame)[0]) for frame in frames]
    assert codes == [0, 1, 2, 3, 4, 5, 202, 203, 204, 205]  # a's 0..5, the cut, b's 2..5


def test_the_api_plays_from_frame_0_when_asked_to_while_paused(tmp_path):
    video = write_video(tmp_path / "v.mkv", 100, "ffv1")
    with one_clip(video) as inst:
        try:
            with api.connect(inst.rd.instance, str(inst.rd.path)) as app:
                app.play()
                time.sleep(0.6)  # the preroll, then some frames
                paused = app.pause()
                if not (paused["state"] == "paused" and paused["frame"] > 0):
                    pytest.fail(f"the playback should be paused past frame 0: {paused}")
                again = app.play(first=0)
                app.stop()
        finally:
            stop(inst)
    assert (again["state"], again["first"], again["frame"]) == ("running", 0, 0), again


def test_the_demo_renders_its_generated_session_with_sound_to_an_mp4_and_says_how_fast(
    tmp_path,
):
    rd = unique_runtime_dir()  # registered: the leak check covers the demo's instance
    result = run_cli(
        "demo",
        "--dir",
        str(tmp_path / "demo"),
        "--instance",
        rd.instance,
        "--runtime-dir",
        str(rd.path),
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "demo: rendered 120 frames (640x360, H.264)" in out and " fps" in out
    assert "1 crossfade" in out
    with av.open(str(tmp_path / "demo" / "demo.mp4")) as c:
        sound = c.streams.audio[0]
        assert (sound.codec_context.name, sound.rate, sound.channels) == ("aac", 48000, 2)
        assert sum(1 for _ in c.decode(video=0)) == 120
        c.seek(0)
        samples = sum(f.samples for f in c.decode(audio=0))
        assert abs(samples - 120 * 1920) < 1024  # as long as the pictures (AAC frames)
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [
        "a.mp4",
        "b.mp4",
        "demo.lumiera",
        "demo.mp4",
        "music.wav",
    ]


def test_ctrl_c_during_a_render_ends_it_in_order_with_no_file_and_nothing_left(tmp_path):
    # 64x48 media scaled up to 1280x720 and written as FFV1: a render of seconds.
    video = write_video(tmp_path / "v.mkv", 150, "ffv1")
    session = tmp_path / "big.lum"
    with Instance(["--headless", str(session)]) as inst:
        inst.wait_running()
        build(inst, [video], [{"media": "m1", "track": "t1", "position": 0}], size=(1280, 720))
        stop(inst)
    out = tmp_path / "out.mkv"
    partial = tmp_path / ".out.mkv.partial"
    rd = unique_runtime_dir()
    cmd = [sys.executable, "-m", "lumiera", "render", str(session), "-o", str(out)]
    cmd += ["--codec", "ffv1", "--runtime-dir", str(rd.path)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        testing.CREATED_INSTANCES.append(f"render-{proc.pid}")
        try:
            testing.wait_for(partial.exists, 30, "the render to be under way")
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
            _out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted; no file written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.lum", "v.mkv"]
    with contextlib.suppress(OSError):
        rd.path.rmdir()


def test_api_render_that_misses_the_end_event_learns_the_end_from_the_player(tmp_path, monkeypatch):
    video = write_video(tmp_path / "v.mkv", 10, "ffv1")
    with one_clip(video) as inst:
        monkeypatch.setattr(api, "CHECK_EVERY_S", 0.3)
        with api.connect(inst.rd.instance, str(inst.rd.path)) as app:
            deaf = app.wait_event

            def no_end_events(prefix: Any, timeout: float, *rest: Any) -> Any:
                return deaf("stats.player", timeout, *rest)  # player.render.* never seen

            monkeypatch.setattr(app, "wait_event", no_end_events)
            done = app.render(tmp_path / "out.mkv", codec="ffv1", timeout=30)
            assert done["state"] == "done" and done["frames"] == 10
            inst.request("session", "remove_clip", {"id": "c1"})
            with pytest.raises(LumieraError, match="nothing to render"):
                app.render(tmp_path / "empty.mkv", codec="ffv1", timeout=30)
        stop(inst)
    assert (tmp_path / "out.mkv").exists() and not (tmp_path / "empty.mkv").exists()


def test_api_render_of_a_given_timeline_leaves_the_session_alone_and_one_given_up_on_is_stopped(
    tmp_path,
):
    video = write_video(tmp_path / "v.mkv", 1000, "ffv1")
    with one_clip(video) as inst:
        contract = Timeline.from_wire(inst.request("session", "timeline"))
        inst.request("session", "remove_clip", {"id": "c1"})  # the session now shows nothing
        with api.connect(inst.rd.instance, str(inst.rd.path)) as app:
            done = app.render(tmp_path / "given.mkv", count=5, codec="ffv1", timeline=contract)
            assert done["frames"] == 5 and app.session.timeline().clips == ()
            with pytest.raises(TimeoutError):  # gives up long before 1000 frames are done
                app.render(tmp_path / "late.mkv", codec="ffv1", timeline=contract, timeout=0.01)
            wait_for(
                lambda: [s["state"] for s in app.request("player", "streams")][-1] == "stopped",
                10,
                "the abandoned render stopped",
            )
        stop(inst)
    assert (tmp_path / "given.mkv").exists() and not (tmp_path / "late.mkv").exists()
