"""The web UI for real: ``lumiera up SESSION`` with its GUI, and its page in Chromium.

Each test edits through the page as a user does (clicks, drags, keys) and
checks what the session holds over the bus (``session describe``), or makes
something happen outside the page (``lumiera send gui notify``, a SIGKILL) and
checks what the page shows. The media are real (PyAV, frame numbers coded in
the picture).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from typing import Any

import pytest

from lumiera.exits import EXIT_EMERGENCY, EXIT_EMERGENCY_FAILED
from lumiera.testing import Instance, wait_for
from tests.browser.conftest import CONNECTED, START_TIMEOUT_S, URL_RE

pytestmark = [pytest.mark.browser, pytest.mark.integration]

WAIT_S = 10.0  # a change to reach the session or the page


def build(gui: Any, clips: list[tuple[int, str]]) -> None:
    """The media, track t1 (and t2), and clips of the whole media at (position, track)."""
    gui.request("session", "add_media", {"path": str(gui.media)})
    gui.request("session", "add_track", {"name": "V1"})
    gui.request("session", "add_track", {"name": "V2"})
    for position, track in clips:
        gui.request("session", "add_clip", {"media": "m1", "track": track, "position": position})


def drag(page: Any, selector: str, dx: float, dy: float = 0.0, at: str = "center") -> None:
    """Press on ``selector`` (its center, or a point ``at`` its left/right), move, release."""
    box = page.locator(selector).bounding_box()
    x = box["x"] + {"center": box["width"] / 2, "left": 2, "right": box["width"] - 2}[at]
    y = box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=8)
    page.mouse.up()


def pixels_per_frame(page: Any, cid: str, frames: int) -> float:
    width: float = page.locator(f".clip[data-id={cid}]").bounding_box()["width"]
    return width / frames


def test_without_the_token_403_with_it_the_dashboard_shows_the_subsystems_running(
    browser, gui, shoot
):
    context = browser.new_context()
    page = context.new_page()
    try:
        refused = page.goto(gui.base + "/")
        assert refused is not None and refused.status == 403
        assert page.goto(gui.base + "/app.js").status == 403
        page.goto(gui.url)
        assert "token=" not in page.url  # the cookie carries it from here on
        for name in ("engine", "session", "player", "gui"):
            row = f"#subsystems tr[data-subsystem={name}]"
            page.wait_for_selector(f"{row} .badge.running", timeout=WAIT_S * 1000)
            pid = int(page.inner_text(f"{row} .pid"))
            assert pid == gui.inst.pid_of(name)
        page.wait_for_selector("#phase.running")
        page.wait_for_function(
            "document.querySelector('#subsystems tr[data-subsystem=engine] .memory')"
            ".textContent.includes('MiB')"
        )
        shoot(page, "dashboard")
    finally:
        context.close()


def test_a_track_and_a_clip_added_in_the_timeline_are_in_the_session(page, gui, shoot):
    page.click("[data-tab=edit]")
    page.fill(".tl-media-path", str(gui.media))
    page.click(".tl-add-media")
    page.wait_for_selector(".tl-media li.media[data-id=m1]")
    page.fill(".tl-track-name", "Overlay")
    page.click(".tl-add-track")
    page.wait_for_selector(".tl-head[data-id=t1] >> text=Overlay")
    page.click(".tl-media li.media[data-id=m1] .tl-add-clip")
    page.wait_for_selector(".clip[data-id=c1][data-track=t1]")
    page.click(".tl-media li.media[data-id=m1] .tl-add-clip")  # after the first
    page.wait_for_selector(".clip[data-id=c2][data-position='50']")
    page.click(".tl-add-track")  # V2, on top
    page.wait_for_selector(".tl-lane[data-track=t2]")
    ppf = pixels_per_frame(page, "c1", 50)
    page.drag_and_drop(  # the media onto V2, at frame 20
        ".tl-media li.media[data-id=m1]",
        ".tl-lane[data-track=t2]",
        target_position={"x": 20 * ppf + ppf / 2, "y": 20},
    )
    page.wait_for_selector(".clip[data-id=c3][data-track=t2][data-position='20']")
    session = gui.timeline()
    assert [m["path"] for m in session["media"]] == [str(gui.media)]
    assert session["tracks"] == [
        {"id": "t1", "name": "Overlay", "kind": "video"},
        {"id": "t2", "name": "V2", "kind": "video"},
    ]
    assert [(c["id"], c["track"], c["position"], c["source_out"]) for c in session["clips"]] == [
        ("c1", "t1", 0, 50),
        ("c2", "t1", 50, 50),
        ("c3", "t2", 20, 50),
    ]
    shoot(page, "timeline")
    page.click(".clip[data-id=c2] .clip-label")  # select it, then the Delete key
    page.wait_for_selector(".clip[data-id=c2].selected")
    page.keyboard.press("Delete")
    page.wait_for_selector(".clip[data-id=c2]", state="detached")
    assert [c["id"] for c in gui.timeline()["clips"]] == ["c1", "c3"]


def test_dragging_a_clip_moves_it_in_the_session_and_ctrl_z_undoes_the_move(page, gui, shoot):
    build(gui, [(0, "t1")])
    page.click("[data-tab=edit]")
    page.wait_for_selector(".clip[data-id=c1]")
    ppf = pixels_per_frame(page, "c1", 50)
    drag(page, ".clip[data-id=c1]", 40 * ppf, dy=-44)  # 40 frames on, one track up
    page.wait_for_selector(".clip[data-id=c1][data-position='40'][data-track=t2]")
    assert (gui.clip("c1")["position"], gui.clip("c1")["track"]) == (40, "t2")
    assert gui.request("session", "history")["done"][-1]["command"] == "move_clip"
    shoot(page, "moved")
    page.keyboard.press("Control+z")
    page.wait_for_selector(".clip[data-id=c1][data-position='0'][data-track=t1]")
    assert (gui.clip("c1")["position"], gui.clip("c1")["track"]) == (0, "t1")
    page.keyboard.press("Control+Shift+z")
    page.wait_for_selector(".clip[data-id=c1][data-position='40']")


def test_dragging_a_clips_edges_trims_it(page, gui, shoot):
    build(gui, [(10, "t1")])
    page.click("[data-tab=edit]")
    page.wait_for_selector(".clip[data-id=c1]")
    ppf = pixels_per_frame(page, "c1", 50)
    drag(page, ".clip[data-id=c1] .handle.out", -20 * ppf, at="right")
    page.wait_for_selector(".clip[data-id=c1][data-out='30']")
    assert gui.clip("c1")["source_out"] == 30
    drag(page, ".clip[data-id=c1] .handle.in", 5 * ppf, at="left")  # later in time and media
    page.wait_for_selector(".clip[data-id=c1][data-in='5'][data-position='15']")
    clip = gui.clip("c1")
    assert (clip["source_in"], clip["position"], clip["source_out"]) == (5, 15, 30)
    done = gui.request("session", "history")["done"]
    assert done[-1] == {
        "command": "trim_clip",
        "args": {"id": "c1", "source_in": 5, "source_out": 30, "position": 15},
    }
    shoot(page, "trimmed")
    page.keyboard.press("Control+z")  # the left-edge trim was one command: one undo step
    page.wait_for_selector(".clip[data-id=c1][data-in='0'][data-position='10']")
    clip = gui.clip("c1")
    assert (clip["source_in"], clip["position"], clip["source_out"]) == (0, 10, 30)
    assert len(gui.request("session", "history")["done"]) == len(done) - 1


def test_the_opacity_slider_changes_the_clips_opacity_and_ctrl_z_restores_it(page, gui, shoot):
    build(gui, [(0, "t1"), (10, "t2")])
    page.click("[data-tab=edit]")
    page.click(".clip[data-id=c2] .clip-label")
    slider = page.locator(".tl-inspector input[type=range]")
    assert slider.is_enabled() and slider.input_value() == "100"
    slider.fill("30")  # a release of the slider at 30 %
    wait_for(lambda: gui.clip("c2")["opacity"] == 0.3, WAIT_S, "c2 at opacity 0.3")
    described = json.loads(gui.cli("send", "session", "describe"))  # `lumiera send` says it too
    clips = described["result"]["session"]["clips"]
    assert [(c["id"], c["opacity"]) for c in clips] == [("c1", 1.0), ("c2", 0.3)]
    page.wait_for_selector(".clip[data-id=c2] .clip-opacity >> text=30 %")
    assert page.locator(".tl-inspector input[type=range]").input_value() == "30"
    assert gui.request("session", "history")["done"][-1] == {
        "command": "set_opacity",
        "args": {"id": "c2", "opacity": 0.3},
    }
    shot = shoot(page, "opacity")
    page.locator(".tl-side").screenshot(path=str(shot.with_name("inspector.png")))
    page.focus(".tl-inspector input[type=range]")  # a slider's keys: Ctrl+Z is still the page's
    page.keyboard.press("Control+z")
    wait_for(lambda: gui.clip("c2")["opacity"] == 1.0, WAIT_S, "c2 back at opacity 1.0")
    page.wait_for_selector(".clip[data-id=c2] .clip-opacity", state="detached")
    assert page.locator(".tl-inspector input[type=range]").input_value() == "100"


def test_a_bad_edit_shows_the_error_and_changes_nothing(page, gui, shoot):
    build(gui, [(0, "t1"), (100, "t1")])
    page.click("[data-tab=edit]")
    page.wait_for_selector(".clip[data-id=c2]")
    before = gui.timeline()
    ppf = pixels_per_frame(page, "c2", 50)
    drag(page, ".clip[data-id=c2]", -70 * ppf)  # onto c1: they would overlap
    error = page.locator(".tl-error")
    error.wait_for()
    assert "move_clip failed: conflict" in error.inner_text()
    page.wait_for_selector(".clip[data-id=c2][data-position='100']:not(.dragging)")
    shoot(page, "conflict")
    page.fill(".tl-media-path", "/no/such/file.mp4")
    page.click(".tl-add-media")
    page.wait_for_selector(".tl-error >> text=add_media failed: media")
    assert gui.timeline() == before
    assert page.locator(".tl-media li.media").count() == 1


def test_gui_notify_and_mark_from_the_command_line_show_on_the_page(page, gui, shoot):
    build(gui, [(0, "t1")])
    gui.cli("send", "gui", "notify", json.dumps({"level": "error", "text": "disk almost full"}))
    page.wait_for_selector(".note.error >> text=disk almost full")
    gui.cli("send", "gui", "notify", json.dumps({"level": "info", "text": "render done"}))
    page.wait_for_selector(".note.info >> text=render done")
    gui.cli("send", "gui", "mark", json.dumps({"id": "c1", "mark": "warning"}))
    page.click("[data-tab=edit]")
    page.wait_for_selector(".clip[data-id=c1].mark-warning")
    shoot(page, "notes-and-marks")


def test_a_click_on_the_ruler_plays_from_that_frame(page, gui, shoot):
    build(gui, [(0, "t1"), (50, "t1"), (100, "t1")])
    page.click("[data-tab=edit]")
    page.wait_for_selector(".clip[data-id=c3]")
    ppf = pixels_per_frame(page, "c1", 50)
    ruler = page.locator(".tl-ruler").bounding_box()
    page.mouse.click(ruler["x"] + 60 * ppf + ppf / 2, ruler["y"] + ruler["height"] / 2)

    def playing() -> dict[str, Any] | None:
        streams = gui.request("player", "streams")
        return next((s for s in streams if s["mode"] == "playback"), None)

    stream = wait_for(playing, WAIT_S, "a playback stream")
    assert stream["first"] == 60
    page.wait_for_selector(".tl-playhead:not([hidden])")
    page.click("[data-tab=dashboard]")  # the viewer ring, from stats.<ring>
    ring = "#rings tr[data-ring^=viewer]"
    page.wait_for_function(f"Number(document.querySelector('{ring} .frames')?.textContent) > 0")
    shoot(page, "dashboard-playing")


def test_quit_ends_the_application_in_order(page, gui, shoot):
    page.wait_for_selector("#quit:not([disabled])")
    page.click("#quit")
    assert gui.inst.wait(20) == 0, gui.inst.output()
    page.wait_for_selector("#connection.closed")
    assert "Lumiera has ended" in page.inner_text("#emergency")
    shoot(page, "ended")


def test_killing_the_engine_shows_the_emergency_reason_on_the_page(page, gui, shoot):
    status = json.loads(gui.cli("status", "--json"))
    (engine,) = [s for s in status["subsystems"] if s["name"] == "engine"]
    os.kill(engine["pid"], signal.SIGKILL)
    banner = page.locator("#emergency:not(.ended)")
    banner.wait_for()
    text = banner.inner_text()
    assert "engine" in text and "SIGKILL" in text, text
    assert gui.inst.wait(20) in (EXIT_EMERGENCY, EXIT_EMERGENCY_FAILED)
    page.wait_for_selector("#connection.closed")
    assert page.locator("#emergency").is_visible()  # still said once the connection is gone
    shoot(page, "emergency")


def test_a_page_left_open_reconnects_when_the_gui_comes_back(browser, tmp_path, shoot):
    """Under ``up --debug gui`` the gui is ``lumiera run gui``: stopped and run again."""
    session = tmp_path / "edit.lumiera"
    defs = ["gui.open_browser=no", "gui.port=0"]
    with Instance([str(session), "--debug", "gui"], defs=defs) as inst:
        inst.wait_up(START_TIMEOUT_S)
        where = ["--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)]
        command = [sys.executable, "-m", "lumiera", "run", "gui", *where]
        runs: list[subprocess.Popen[bytes]] = []

        def run_gui(n: int) -> re.Match[str]:
            log = tmp_path / f"run-gui-{n}.out"
            with log.open("w") as out:
                runs.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT))
            found: re.Match[str] = wait_for(
                lambda: URL_RE.search(log.read_text()), START_TIMEOUT_S, "lumiera run gui's URL"
            )
            return found

        context = browser.new_context()
        try:
            first = run_gui(1)
            page = context.new_page()
            page.goto(first[1])
            page.wait_for_function(CONNECTED)
            runs[0].terminate()
            runs[0].wait(WAIT_S)
            page.wait_for_selector("#connection.closed")
            shoot(page, "gui-gone")
            assert run_gui(2)[1] == first[1]  # the same address: the page's cookie still holds
            page.wait_for_selector("#connection.open", timeout=15_000)
            page.click("[data-tab=edit]")
            page.click(".tl-add-track")  # and it edits again
            page.wait_for_selector(".tl-head[data-id=t1]")
            shoot(page, "gui-back")
        finally:
            context.close()
            for run in runs:
                run.terminate()
                run.wait(WAIT_S)
