"""The viewer's sound in a real browser: the page gets each frame's sound beside its picture.

The media beep and flash together (:mod:`tests.integration.test_audio_render_e2e`).
Played from the page with the sound on, the page must receive a sound message
for every frame it drew a picture of (sound is never latest-wins: pictures may
be skipped, sound is not), in order, and schedule them with WebAudio. The
instance, Chromium and the page are tests/browser/conftest.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Gui
from tests.integration.test_audio_render_e2e import FLASH, FRAMES, write_beeps
from tests.support import build

pytestmark = [pytest.mark.integration, pytest.mark.browser]

W, H = 64, 48


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """The beep-and-flash media (40 frames at 25 fps, 64x48, stereo 48 kHz)."""
    return write_beeps(tmp_path / "beeps.mkv")


def test_the_page_gets_each_frames_sound_in_order_beside_its_picture(
    gui: Gui, page: Any, shoot: Any
):
    build(gui.inst, [gui.media], [{"media": "m1", "track": "t1", "position": 0}], size=(W, H))
    page.click('[data-tab="edit"]')  # the viewer is on while its tab shows
    page.wait_for_function("window.lumieraViewer.clock.offsetMs !== null")
    page.click(".lv-sound")  # sound on (a click: the browser allows the AudioContext)
    assert page.evaluate("window.lumieraViewer.sound.muted") is False
    assert page.text_content(".lv-sound") == "Sound on"

    page.click(".lv-play")
    page.wait_for_function(
        f"window.lumieraViewer.sound.frames.includes({FRAMES - 1})", timeout=20_000
    )
    page.wait_for_timeout(300)  # the last pictures, on their way
    got = page.evaluate(
        "({pictures: window.lumieraViewer.frames, sound: window.lumieraViewer.sound})"
    )
    shoot(page, "viewer-sound")
    (stream,) = gui.request("player", "streams")
    engine = [s for s in gui.request("engine", "streams") if s["id"] == stream["engine_stream"]]

    heard, pictures = got["sound"]["frames"], got["pictures"]
    assert heard == sorted(set(heard)) and heard[-1] == FRAMES - 1, heard
    assert got["sound"]["dues"] == sorted(got["sound"]["dues"])  # due one after the other
    # Every picture drawn has its sound (but what the engine could not mix in time).
    missing = sorted(set(pictures) - set(heard))
    assert len(missing) <= engine[0]["sound_dropped"], (missing, engine)
    assert len(heard) + engine[0]["sound_dropped"] >= FRAMES - heard[0], heard
    assert set(FLASH) <= set(heard)  # the beeps came
    sound = got["sound"]
    assert sound["played"] + sound["late"] <= sound["received"]
    assert sound["played"] > 0, sound  # scheduled on the AudioContext's clock
