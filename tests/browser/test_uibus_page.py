"""The page's UI-Bus client (uibus.js) and what the page does with each kind, on cue.

The page's own files in Chromium, with the test playing the GUI's end of the
websocket (conftest.FakeGui): no instance, so each case says exactly what
arrives and when the connection drops.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lumiera.errors import BadMessage
from lumiera.stage.gui import uibus

pytestmark = pytest.mark.browser

TIMELINE: dict[str, Any] = {
    "revision": 3,
    "output": {"width": 640, "height": 360, "rate": "25"},
    "media": [
        {
            "id": "m1",
            "path": "/media/a.mp4",
            "frames": 100,
            "rate": "25",
            "width": 64,
            "height": 48,
            "pix_fmt": "yuv420p",
            "size": 1000,
            "mtime_ns": 1,
            "inode": 2,
        }
    ],
    "tracks": [{"id": "t1", "name": "V1"}, {"id": "t2", "name": "V2"}],
    "clips": [
        {"id": "c1", "media": "m1", "track": "t1", "position": 0, "source_in": 0,
         "source_out": 50, "opacity": 1.0},
        {"id": "c2", "media": "m1", "track": "t2", "position": 25, "source_in": 10,
         "source_out": 60, "opacity": 0.5},
    ],
}  # fmt: skip

# (message, sent by the page?): both checkers must agree on each.
CASES: list[tuple[Any, bool]] = [
    ({"type": "note", "level": "info", "text": "hi"}, False),
    ({"type": "note", "level": "info"}, False),  # a required field missing
    ({"type": "note", "level": "info", "text": 3}, False),  # a wrong JSON type
    ({"type": "note", "level": "info", "text": "x", "extra": 1}, False),  # an unknown field
    ({"type": "command", "ref": 1, "to": "session", "command": "undo"}, True),
    ({"type": "command", "ref": 1, "to": "session", "command": "undo"}, False),  # goes up
    ({"type": "command", "ref": 1, "to": "session", "command": "fault"}, True),  # not ALLOWED
    ({"type": "command", "ref": 1, "to": "engine", "command": "ping"}, True),
    ({"type": "note", "level": "info", "text": "hi"}, True),  # goes down
    ({"type": "bogus"}, False),
    ({"level": "info"}, False),  # no type
    ([1, 2], False),  # not an object
    ({"type": "reply", "ref": 1, "ok": True, "code": None}, False),
    ({"type": "reply", "ref": 1, "ok": "yes"}, False),
    ({"type": "quit", "ref": True}, True),  # a bool is not a number
    ({"type": "subscribe", "prefixes": "stats."}, True),
    ({"type": "subscribe", "prefixes": ["stats."]}, True),
    ({"type": "diff", "base": 1, "revision": 2, "tracks": None, "removed_clips": ["c1"]}, False),
    ({"type": "emergency", "reason": "x", "subsystem": None}, False),
    ({"type": "hello", "instance": "x", "server_ms": 1.5}, False),
    ({"type": "event", "topic": "stats.engine", "sender": "engine", "ts": 1.0, "body": []}, False),
]

CHECK = """async (cases) => {
  const { invalid } = await import("/uibus.js");
  const schema = await (await fetch("/uibus.json")).json();
  return cases.map(([message, up]) => invalid(schema, message, up));
}"""


def python_refuses(message: Any, up: bool) -> bool:
    try:
        uibus.decode(json.dumps(message), up=up)
    except BadMessage:
        return True
    return False


def test_the_pages_checker_refuses_exactly_what_the_python_decoder_refuses(fake_page):
    verdicts = fake_page.evaluate(CHECK, CASES)
    for (message, up), verdict in zip(CASES, verdicts, strict=True):
        assert (verdict is not None) == python_refuses(message, up), (message, up, verdict)
    assert verdicts[1] == "note: missing field 'text'"
    assert verdicts[3] == "note: unknown field(s) extra"


def test_an_invalid_message_from_the_gui_is_logged_and_dropped(fake_page, fake, shoot):
    fake.send("note", level="error")  # no text
    fake.send("note", level="warning", text="still connected")
    fake_page.wait_for_selector(".note.warning >> text=still connected")
    assert fake_page.locator(".note").count() == 1
    assert fake_page.evaluate("window.lumiera.bus.invalidCount") == 1
    fake_page.click("[data-tab=log]")
    problem = fake_page.locator(".log-entries li.page-problem").first
    assert "dropped an invalid message: note: missing field 'text'" in problem.inner_text()
    shoot(fake_page, "log-with-a-dropped-message")


def test_a_request_resolves_with_its_reply_and_an_error_reply_is_shown(fake_page, fake):
    def answer(m: dict[str, Any]) -> dict[str, Any] | None:
        if m.get("command") == "status":
            return {"ok": True, "result": {"phase": "running"}}
        if m.get("command") == "undo":
            return {"ok": False, "code": "nothing_to_undo", "message": "nothing to undo"}
        return None

    fake.answer = answer
    result = fake_page.evaluate("window.lumiera.bus.request('appstate', 'status', {})")
    assert result == {"phase": "running"}
    fake_page.click("[data-tab=edit]")
    fake_page.click(".tl-undo")
    error = fake_page.locator(".tl-error")
    error.wait_for()
    assert "undo failed: nothing_to_undo: nothing to undo" in error.inner_text()
    (undo,) = [m for m in fake.sent("command") if m["command"] == "undo"]
    assert undo["to"] == "session" and isinstance(undo["ref"], int)
    refused = fake_page.evaluate(
        "window.lumiera.bus.request('session', 'fault', {}).catch((e) => e)"
    )
    assert refused["code"] == "bad_message"  # not a command a page may send: never sent
    assert not [m for m in fake.sent("command") if m["command"] == "fault"]


def test_after_a_dropped_connection_the_page_reconnects_and_subscribes_again(fake_page, fake):
    first = fake.sent("subscribe")[-1]["prefixes"]
    assert {"stats.", "subsystem.", "stats.player"} <= set(first)
    fake.ws.close()
    fake_page.wait_for_selector("#connection.closed")
    fake_page.wait_for_function("window.lumiera.bus.connected", timeout=5_000)
    assert len(fake.sockets) == 2
    assert fake.sent("subscribe")[-1]["prefixes"] == first
    assert fake_page.inner_text("#connection") == "connected"


def test_the_emergency_reason_is_shown_prominently_when_the_connection_drops(fake_page, fake):
    fake.send("emergency", reason="engine (pid 42) killed by SIGKILL", subsystem="engine")
    fake.ws.close()
    fake_page.wait_for_selector("#connection.closed")
    banner = fake_page.locator("#emergency")
    assert banner.is_visible()
    assert "Emergency: engine failed" in banner.inner_text()
    assert "killed by SIGKILL" in banner.inner_text()


def test_marks_stay_on_their_element_when_the_timeline_is_drawn_again(fake_page, fake, shoot):
    fake_page.click("[data-tab=edit]")
    fake.send("session", timeline=TIMELINE)
    fake_page.wait_for_selector(".clip[data-id=c2]")
    fake.send("mark", id="c2", mark="error")
    fake.send("mark", id="t1", mark="warning")
    fake_page.wait_for_selector(".clip[data-id=c2].mark-error")
    assert fake_page.locator(".tl-head[data-id=t1].mark-warning").count() == 1
    moved = dict(TIMELINE["clips"][1], position=60)
    fake.send("diff", base=3, revision=4, command="move_clip", clips=[moved])
    fake_page.wait_for_selector(".clip[data-id=c2][data-position='60'].mark-error")
    shoot(fake_page, "marks")
    fake.send("mark", id="c2", mark="none")
    fake_page.wait_for_selector(".clip[data-id=c2]:not(.mark-error)")


def test_a_diff_that_does_not_follow_asks_for_the_whole_timeline(fake_page, fake):
    fake.answer = lambda m: (
        {"ok": True, "result": dict(TIMELINE, revision=9)}
        if m.get("command") == "timeline"
        else None
    )
    fake_page.click("[data-tab=edit]")
    fake.send("session", timeline=TIMELINE)
    fake_page.wait_for_selector(".tl-revision >> text=revision 3")
    fake.send("diff", base=7, revision=8, removed_clips=["c1"])
    fake_page.wait_for_selector(".tl-revision >> text=revision 9")
    assert fake_page.locator(".clip[data-id=c1]").count() == 1  # the whole, not the diff


def test_the_opacity_slider_sends_set_opacity_and_a_refusal_puts_it_back(fake_page, fake, shoot):
    refuse = {"ok": False, "code": "bad_args", "message": "opacity 0.2 is not within 0..1"}
    answers = [{"ok": True, "result": {"applied": {"id": "c2", "opacity": 0.8}}}, refuse]
    fake.answer = lambda m: answers.pop(0) if m.get("command") == "set_opacity" else None
    fake_page.click("[data-tab=edit]")
    fake.send("session", timeline=TIMELINE)
    fake_page.click(".clip[data-id=c2] .clip-label")
    inspector = fake_page.locator(".tl-inspector")
    inspector.locator("text=50 %").wait_for()
    slider = inspector.locator("input[type=range]")
    assert slider.is_enabled() and slider.input_value() == "50"
    assert "cannot" not in inspector.inner_text()
    assert "drag the slider to change it" in inspector.inner_text()

    slider.fill("80")  # as a release of the slider at 80: input, then change
    changed = dict(TIMELINE["clips"][1], opacity=0.8)
    fake.send("diff", base=3, revision=4, command="set_opacity", clips=[changed])
    inspector.locator("text=80 %").wait_for()
    assert fake_page.locator(".clip[data-id=c2] .clip-opacity").inner_text() == "80 %"
    shoot(fake_page, "inspector")

    inspector.locator("input[type=range]").fill("20")  # refused: back to the session's 80
    error = fake_page.locator(".tl-error")
    error.wait_for()
    assert "set_opacity failed: bad_args: opacity 0.2 is not within 0..1" in error.inner_text()
    fake_page.wait_for_function(
        "document.querySelector('.tl-inspector input[type=range]').value === '80'"
    )
    assert "80 %" in inspector.inner_text()
    sent = [(m["command"], m["args"]) for m in fake.sent("command") if m["to"] == "session"]
    assert sent == [
        ("set_opacity", {"id": "c2", "opacity": 0.8}),
        ("set_opacity", {"id": "c2", "opacity": 0.2}),
    ]
    shoot(fake_page, "inspector-refused")


def test_the_event_log_shows_what_its_filter_asks_for_newest_first_and_bounded(
    fake_page, fake, shoot
):
    fake_page.click("[data-tab=log]")

    def event(topic: str, ts: float, **body: Any) -> None:
        fake.send("event", topic=topic, sender="appstate", ts=ts, body=body)

    event("stats.engine", 1.0, workers=2)  # not asked for at first: the stats are noise
    event("subsystem.engine.running", 2.0, name="engine", state="running", pid=7)
    event("lifecycle.ON_SESSION_READY", 3.0, event="ON_SESSION_READY")
    shown = ".log-entries li.event:not([hidden])"
    fake_page.wait_for_selector(f"{shown}[data-topic='lifecycle.ON_SESSION_READY']")
    topics = fake_page.eval_on_selector_all(shown, "items => items.map(i => i.dataset.topic)")
    assert topics == ["lifecycle.ON_SESSION_READY", "subsystem.engine.running"]

    fake_page.fill(".log-filter", "stats. ext.")
    fake_page.press(".log-filter", "Enter")
    fake_page.wait_for_function(
        "document.querySelectorAll('.log-entries li.event:not([hidden])').length === 0"
    )
    prefixes = fake.sent("subscribe")[-1]["prefixes"]
    assert "ext." in prefixes and "lifecycle." not in prefixes
    for n in range(510):
        event("ext.tick", 10.0 + n, n=n)
    fake_page.wait_for_selector('.log-entries li.event >> text="n":509')
    assert fake_page.locator(".log-entries li").count() == 500  # LOG_LIMIT, newest kept
    assert '"n":509' in fake_page.inner_text(".log-entries li >> nth=0")
    shoot(fake_page, "log")


def test_an_in_edge_trim_is_one_command_and_its_refusal_puts_the_clip_back(fake_page, fake):
    """The in edge moves source_in and position in one trim_clip: nothing to undo halfway."""

    def answer(m: dict[str, Any]) -> dict[str, Any] | None:
        if m.get("command") == "trim_clip":
            return {"ok": False, "code": "conflict", "message": "clip would overlap c9"}
        return None

    fake.answer = answer
    fake_page.click("[data-tab=edit]")
    fake.send("session", timeline=TIMELINE)
    clip = fake_page.locator(".clip[data-id=c1]")
    box = clip.bounding_box()
    ppf = box["width"] / 50
    fake_page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
    fake_page.mouse.down()
    fake_page.mouse.move(box["x"] + 2 + 5 * ppf, box["y"] + box["height"] / 2, steps=5)
    fake_page.mouse.up()
    error = fake_page.locator(".tl-error")
    error.wait_for()
    assert error.inner_text().startswith("trim_clip failed: conflict: clip would overlap c9")
    sent = [(m["command"], m["args"]) for m in fake.sent("command") if m["to"] == "session"]
    assert sent == [("trim_clip", {"id": "c1", "source_in": 5, "position": 5})]
    fake_page.wait_for_selector(".clip[data-id=c1][data-position='0'][data-in='0']")
