"""The live viewer in a real browser: play, see the frames advance, pause, see them stop.

The media carry their frame number in their pixels (:mod:`tests.unit.vault.mediakit`),
so what the page's canvas shows is checked against the number the page says it
shows, both read in one step. Headless Debian Chromium, driven by Playwright
(never ``playwright install``); a screenshot of the page is saved in the
test's tmp dir.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lumiera.testing import Instance
from tests.support import build, stop
from tests.unit.vault.mediakit import read_code, write_video

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
W, H = 320, 240
FRAMES = 250  # 10 s at 25 fps: playing for the whole test
WAIT_MS = 15_000  # the longest any wait in the page may take

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
def browser_page() -> Iterator[Any]:
    """A page of headless Chromium; closed (and its processes gone) after the test."""
    if not CHROMIUM.exists():
        pytest.skip("no Debian chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            browser.close()


def shown(page: Any) -> tuple[int, int]:
    """(the frame number the page says it shows, the number coded in the canvas's pixels)."""
    got = page.evaluate(SHOWN)
    assert got["text"] == f"frame {got['frame']}"
    pixels = np.array(got["red"], np.uint8).reshape(got["height"], got["width"])
    return got["frame"], read_code(pixels)


def test_play_shows_the_frames_advancing_and_pause_stops_them(tmp_path, browser_page):
    page = browser_page
    video = write_video(tmp_path / "v.mkv", FRAMES, "ffv1", width=W, height=H)
    with Instance([str(tmp_path / "edit.lum")], defs=["gui.open_browser=no"]) as inst:
        inst.wait_running(30)
        build(inst, [video], [{"media": "m1", "track": "t1", "position": 0}], size=(W, H))
        url = inst.request("gui", "describe")["url"]
        page.goto(f"{url}#edit")
        page.wait_for_function("window.lumiera && window.lumiera.bus.connected")

        page.keyboard.press("Space")  # play
        page.wait_for_function("window.lumieraViewer.drawn >= 5")
        seen = []
        for _ in range(5):
            frame, code = shown(page)
            assert code == frame, f"the canvas shows frame {code}, the page says {frame}"
            seen.append(frame)
            time.sleep(0.2)
        assert seen == sorted(seen) and seen[-1] - seen[0] >= 10, seen  # 0.8 s at 25 fps
        page.screenshot(path=str(tmp_path / "viewer-playing.png"))

        page.click(".lv-play")  # pause
        page.wait_for_function("!window.lumieraViewer.playing")
        (stream,) = inst.request("player", "streams")
        assert stream["state"] == "paused"
        time.sleep(0.3)  # what was in the ring, or on its way, as the pause came
        paused, code = shown(page)
        assert code == paused and abs(paused - stream["frame"]) <= 2, (paused, stream)
        time.sleep(1.0)
        assert shown(page) == (paused, paused)  # nothing moves while paused
        page.screenshot(path=str(tmp_path / "viewer-paused.png"))

        page.keyboard.press("Space")  # resume: from where it paused
        page.wait_for_function(f"window.lumieraViewer.frame >= {paused + 10}")
        frame, code = shown(page)
        assert code == frame > paused
        state = page.evaluate("window.lumieraViewer")
        assert state["decodeErrors"] == 0
        assert all(ms is not None and 0 < ms < 1000 for ms in state["latencies"]), state[
            "latencies"
        ][:20]
        stop(inst)
