"""The live viewer in a real browser: play, see the frames advance, pause, see them stop.

The media carry their frame number in their pixels (:mod:`tests.unit.vault.mediakit`),
so what the page's canvas shows is checked against the number the page says it
shows, both read in one step. The instance, Chromium and the page are
tests/browser/conftest.py's; screenshots are saved under the test's tmp dir.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.browser.conftest import Gui
from tests.support import build, stop
from tests.unit.vault.mediakit import read_code, write_video

pytestmark = [pytest.mark.integration, pytest.mark.browser]

W, H = 320, 240
FRAMES = 250  # 10 s at 25 fps: playing for the whole test

# The canvas's pixels (gray: the red channel) and the frame number the page shows,
# read in one task of the page, so they belong to the same picture.
SHOWN = """() => {
  const canvas = document.querySelector(".lv-canvas");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const red = [];
  for (let i = 0; i < data.length; i += 4) red.push(data[i]);
  return {
    text: document.querySelector(".lv-frame").textContent,
    frame: window.lumieraViewer.frame,
    width: canvas.width,
    height: canvas.height,
    red,
  };
}"""


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """Ten seconds of coded frames (25 fps, 320x240, FFV1): frame numbers in the picture."""
    return write_video(tmp_path / "v.mkv", FRAMES, "ffv1", width=W, height=H)


def shown(page: Any) -> tuple[int, int]:
    """(the frame number the page says it shows, the number coded in the canvas's pixels)."""
    got = page.evaluate(SHOWN)
    assert got["text"] == f"frame {got['frame']}"
    pixels = np.array(got["red"], np.uint8).reshape(got["height"], got["width"])
    return got["frame"], read_code(pixels)


def test_play_shows_the_frames_advancing_and_pause_stops_them(gui: Gui, page: Any, shoot: Any):
    build(gui.inst, [gui.media], [{"media": "m1", "track": "t1", "position": 0}], size=(W, H))
    page.click('[data-tab="edit"]')  # the viewer is on while its tab shows
    page.wait_for_function("window.lumieraViewer.clock.offsetMs !== null")

    page.keyboard.press("Space")  # play
    page.wait_for_function("window.lumieraViewer.drawn >= 5")
    seen = []
    for _ in range(5):
        frame, code = shown(page)
        assert code == frame, f"the canvas shows frame {code}, the page says {frame}"
        seen.append(frame)
        time.sleep(0.2)
    assert seen == sorted(seen) and seen[-1] - seen[0] >= 10, seen  # 0.8 s at 25 fps
    shoot(page, "viewer-playing")

    page.click(".lv-play")  # pause
    page.wait_for_function("!window.lumieraViewer.playing")
    (stream,) = gui.request("player", "streams")
    assert stream["state"] == "paused"
    time.sleep(0.3)  # what was in the ring, or on its way, as the pause came
    paused, code = shown(page)
    assert code == paused and abs(paused - stream["frame"]) <= 2, (paused, stream)
    time.sleep(1.0)
    assert shown(page) == (paused, paused)  # nothing moves while paused
    shoot(page, "viewer-paused")

    page.keyboard.press("Space")  # resume: from where it paused
    page.wait_for_function(f"window.lumieraViewer.frame >= {paused + 10}")
    frame, code = shown(page)
    assert code == frame > paused
    state = page.evaluate("window.lumieraViewer")
    assert state["decodeErrors"] == 0
    latencies = state["latencies"]
    assert all(ms is not None and 0 < ms < 1000 for ms in latencies), latencies[:20]
    stop(gui.inst)
