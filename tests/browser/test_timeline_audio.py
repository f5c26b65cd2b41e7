"""Sound and crossfades in the web UI, for real: ``lumiera up`` with its GUI, the page in Chromium.

A session with a video track (clips of a video with sound), an audio track (a
clip of a WAV), a gain and a crossfade: the page draws the audio track as such,
its gain slider reaches the session (``set_gain``), a crossfade made on the page
reaches it (``add_transition``) and is drawn over the overlap, and undo takes it
off the page again. The media are real (PyAV: H.264 with AAC, PCM in WAV).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lumiera.testing import wait_for
from tests.browser.test_web_ui import WAIT_S, pixels_per_frame

pytestmark = [pytest.mark.browser, pytest.mark.integration]

RATE = 48000
MINUS_12_DB = "\u221212 dB"  # as the page writes it: a minus sign, not a hyphen


def tone(seconds: float, channels: int, hz: float = 440.0) -> Any:
    import numpy as np

    t = np.arange(int(seconds * RATE)) / RATE
    wave = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16)
    return np.repeat(wave[None, :], channels, axis=0)


def write_video_with_sound(path: Path, frames: int = 100) -> Path:
    """``frames`` frames at 25 fps (64x48, H.264) with as long an AAC stereo tone."""
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=RATE, layout="stereo")
        for i in range(frames):
            pixels = np.full((48, 64, 3), (i * 9) % 256, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        samples = tone(frames / 25, 2)
        frame = av.AudioFrame.from_ndarray(samples.T.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = RATE
        for packet in audio.encode(frame):
            out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                out.mux(packet)
    return path


def write_wav(path: Path, seconds: float = 4.0) -> Path:
    """A mono tone in a WAV file: media with sound and no pictures."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone(seconds, 1, 220.0), format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def build(gui: Any, tmp_path: Path) -> None:
    """m1 video with sound, m2 a WAV; V1 (t1) with c1 0..50 | c2 50..90, A1 (t2) with c3."""
    video = write_video_with_sound(tmp_path / "shot.mp4")
    sound = write_wav(tmp_path / "music.wav")
    for command, args in [
        ("add_media", {"path": str(video)}),
        ("add_media", {"path": str(sound)}),
        ("add_track", {"name": "V1"}),
        ("add_track", {"name": "A1", "kind": "audio"}),
        ("add_clip", {"media": "m1", "track": "t1", "position": 0, "source_out": 50}),
        # c2 starts 60 frames into its media: room for a crossfade before its cut
        ("add_clip", {"media": "m1", "track": "t1", "position": 50, "source_in": 60}),
        ("add_clip", {"media": "m2", "track": "t2", "position": 0}),
    ]:
        gui.request("session", command, args)


def shoot_editor(page: Any, tmp_path: Path, name: str) -> Path:
    """The timeline's part of the page (media, inspector, tracks) as ``screens/NAME.png``."""
    path = tmp_path / "screens" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    page.locator(".tl-body").screenshot(path=str(path))
    return path


def timeline(gui: Any) -> dict[str, Any]:
    result: dict[str, Any] = gui.request("session", "timeline")
    return result


def clip(gui: Any, cid: str) -> dict[str, Any]:
    return next(c for c in timeline(gui)["clips"] if c["id"] == cid)


def test_an_audio_track_is_drawn_as_one_and_the_gain_slider_sets_the_clips_gain(
    page, gui, tmp_path, shoot
):
    build(gui, tmp_path)
    page.click("[data-tab=edit]")
    page.wait_for_selector(".tl-head.audio[data-id=t2] >> text=A1")
    audio = page.locator(".tl-lane.audio[data-track=t2]").bounding_box()
    video = page.locator(".tl-lane[data-track=t1]").bounding_box()
    assert audio["height"] < video["height"]
    assert audio["y"] < video["y"]  # A1 is the top track: drawn above V1
    page.wait_for_selector(".clip.sound[data-id=c3]")  # the WAV: drawn as sound
    assert page.locator(".clip[data-id=c1] .clip-sound").count() == 1  # a video with sound
    assert page.locator(".clip[data-id=c3] .clip-sound").count() == 0
    page.click(".clip[data-id=c3] .clip-label")
    slider = page.locator(".tl-inspector input.tl-gain")
    assert slider.input_value() == "0"
    assert page.locator(".tl-inspector input.tl-opacity").count() == 0  # no picture: no opacity
    slider.fill("-12")  # a release of the slider at -12 dB
    wait_for(lambda: clip(gui, "c3")["gain_db"] == -12.0, WAIT_S, "c3 at -12 dB")
    assert gui.request("session", "history")["done"][-1] == {
        "command": "set_gain",
        "args": {"id": "c3", "gain_db": -12.0},
    }
    page.wait_for_selector(f".clip[data-id=c3] .clip-gain >> text={MINUS_12_DB}")
    assert page.locator(".tl-inspector input.tl-gain").input_value() == "-12"
    shoot(page, "gain")
    shoot_editor(page, tmp_path, "gain-editor")
    page.locator(".tl-inspector input.tl-gain").fill("-61")  # the slider's left end: mute
    wait_for(lambda: clip(gui, "c3")["gain_db"] == -96.0, WAIT_S, "c3 muted")
    page.wait_for_selector(".clip[data-id=c3] .clip-gain.muted >> text=mute")
    page.keyboard.press("Control+z")
    page.wait_for_selector(f".clip[data-id=c3] .clip-gain >> text={MINUS_12_DB}")
    page.click(".tl-add-audio-track")
    page.wait_for_selector(".tl-head.audio[data-id=t3] >> text=A2")
    assert timeline(gui)["tracks"][-1] == {"id": "t3", "name": "A2", "kind": "audio"}


def test_a_crossfade_made_on_the_page_is_in_the_session_drawn_and_undone(
    page, gui, tmp_path, shoot
):
    build(gui, tmp_path)
    gui.request("session", "set_gain", {"id": "c3", "gain_db": -6.0})
    page.click("[data-tab=edit]")
    page.wait_for_selector(".clip[data-id=c2]")
    ppf = pixels_per_frame(page, "c1", 50)
    page.click(".clip[data-id=c1] .clip-label")  # c1 ends where c2 starts: a cut
    row = page.locator(".tl-inspector .crossfade[data-a=c1][data-b=c2]")
    row.locator("input.tl-xfade-frames").fill("10")
    row.locator("select.tl-xfade-curve").select_option("equal_power")
    row.locator("button.tl-add-transition >> text=Crossfade 10 frames").click()
    page.wait_for_selector(".transition[data-id=x1][data-curve=equal_power][data-length='10']")
    session = timeline(gui)
    assert session["transitions"] == [{"id": "x1", "a": "c1", "b": "c2", "curve": "equal_power"}]
    c2 = clip(gui, "c2")
    assert (c2["position"], c2["source_in"]) == (40, 50)  # extended over c1's end
    page.wait_for_selector(".clip[data-id=c2][data-position='40']")
    drawn = page.locator(".transition[data-id=x1]")
    box = drawn.bounding_box()
    lane = page.locator(".tl-lane[data-track=t1]").bounding_box()
    assert abs(box["x"] - lane["x"] - 40 * ppf) <= 1.5 and abs(box["width"] - 10 * ppf) <= 1.5
    title = drawn.get_attribute("title") or ""
    assert "c1 → c2, equal power, 10 frames" in title, title
    drawn.click()
    page.wait_for_selector(".transition[data-id=x1].selected")
    inspector = page.locator(".tl-inspector")
    assert "equal power" in inspector.inner_text()
    assert inspector.locator(".tl-remove-transition").is_visible()
    shoot(page, "crossfade")
    shoot_editor(page, tmp_path, "crossfade-editor")

    page.keyboard.press("Control+z")  # undo: the crossfade leaves the page, c2 at the cut
    page.wait_for_selector(".transition", state="detached")
    page.wait_for_selector(".clip[data-id=c2][data-position='50']")
    assert timeline(gui)["transitions"] == []
    page.keyboard.press("Control+Shift+z")
    page.wait_for_selector(".transition[data-id=x1]")
    page.click(".transition[data-id=x1]")
    page.click(".tl-inspector .tl-remove-transition")
    page.wait_for_selector(".transition", state="detached")
    assert timeline(gui)["transitions"] == []
    assert gui.request("session", "history")["done"][-1]["command"] == "remove_transition"
    page.keyboard.press("Control+z")  # back again, and closer: the fade's shape
    page.wait_for_selector(".transition[data-id=x1]")
    for _ in range(3):
        page.click(".tl-zoom-in")
    page.wait_for_selector(".transition[data-id=x1]")
    page.eval_on_selector(".tl-scroll", "(e) => (e.scrollLeft = 30 * e.scrollWidth / 1000)")
    page.locator(".transition[data-id=x1]").scroll_into_view_if_needed()
    shoot_editor(page, tmp_path, "crossfade-zoomed")


def test_a_cut_selected_offers_a_crossfade_and_a_refusal_is_shown(page, gui, tmp_path, shoot):
    build(gui, tmp_path)
    page.click("[data-tab=edit]")
    page.wait_for_selector(".clip[data-id=c2]")
    page.click(".clip[data-id=c1] .clip-label")
    page.click(".clip[data-id=c2] .clip-label", modifiers=["Shift"])  # both: their cut
    page.wait_for_selector(".tl-inspector-title >> text=Cut")
    assert page.locator(".clip.selected").count() == 2
    page.click(".tl-cut[data-a=c1][data-b=c2]")  # the cut's marker selects it too
    row = page.locator(".tl-inspector .crossfade[data-a=c1][data-b=c2]")
    row.locator("input.tl-xfade-frames").fill("45")  # more than c2's 40 frames
    row.locator("button.tl-add-transition").click()
    error = page.locator(".tl-error")
    error.wait_for()
    assert "add_transition failed: bad_args" in error.inner_text()
    assert timeline(gui)["transitions"] == []
    page.wait_for_selector(".clip[data-id=c2][data-position='50']")
    shoot(page, "refused")
    shoot_editor(page, tmp_path, "refused-editor")
