"""The UI-Bus hub without sockets: a fake bus, pages whose outbox is a list."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from lumiera.bus.events import EmergencyExit, Event, SessionChanged, StatsPlayer
from lumiera.bus.timeline import Output, Timeline, Track
from lumiera.errors import NotFound
from lumiera.stage.gui import uibus
from lumiera.stage.web import pages as pages_module
from lumiera.stage.web.hub import Hub
from lumiera.stage.web.pages import Outbox, Page, PageGone

EMPTY = Timeline(output=Output(), revision=0)
ONE_TRACK = Timeline(output=Output(), tracks=(Track(id="t1", name="V1"),), revision=1)


class FakeBus:
    """Answers like the instance would; ``fail`` maps a command to the error it raises."""

    def __init__(self) -> None:
        self.timeline = EMPTY
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.fail: dict[str, Exception] = {}

    async def request(
        self,
        to: str,
        command: str,
        args: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        self.sent.append((to, command, args or {}))
        if command in self.fail:
            raise self.fail[command]
        if (to, command) == ("session", "timeline"):
            return self.timeline.to_wire()
        if (to, command) == ("appstate", "status"):
            return {"phase": "running"}
        return {"done": command}


def page_of(written: list[dict[str, Any]]) -> Page:
    async def text(frame: str) -> None:
        written.append(json.loads(frame))

    async def binary(frame: bytes) -> None:
        written.append({"type": "<picture>", "bytes": len(frame)})

    return Page(Outbox(text, binary))


def run(body: Callable[[Hub, FakeBus, list[str]], Awaitable[None]]) -> None:
    async def main() -> None:
        bus = FakeBus()
        quits: list[str] = []
        hub = Hub("i1", bus, lambda: quits.append("quit"))
        await body(hub, bus, quits)

    asyncio.run(main())


async def connected(hub: Hub) -> tuple[Page, list[dict[str, Any]], asyncio.Task[None]]:
    written: list[dict[str, Any]] = []
    page = page_of(written)
    writer = asyncio.get_running_loop().create_task(page.outbox.drain())
    await hub.connect(page)
    await settle()
    return page, written, writer


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def kinds(written: list[dict[str, Any]]) -> list[str]:
    return [w["type"] for w in written]


def event(topic: str, body: Any) -> Event:
    return Event(topic=topic, sender="x", ts=time.time(), body=body)


def test_a_page_gets_hello_then_status_then_the_session():
    async def body(hub: Hub, bus: FakeBus, quits: list[str]) -> None:
        _page, written, _ = await connected(hub)
        assert kinds(written) == ["hello", "status", "session"]
        assert written[0]["instance"] == "i1" and "session" in written[0]["allowed"]
        assert Timeline.from_wire(written[2]["timeline"]) == EMPTY

    run(body)


def test_a_command_is_answered_with_its_result_or_its_error_code():
    async def body(hub: Hub, bus: FakeBus, quits: list[str]) -> None:
        page, written, _ = await connected(hub)
        bus.fail["move_clip"] = NotFound("no clip c9")
        hub.receive(page, '{"type":"command","ref":1,"to":"session","command":"add_track"}')
        hub.receive(page, '{"type":"command","ref":2,"to":"session","command":"move_clip"}')
        await settle()
        assert written[-2:] == [
            {"type": "reply", "ref": 1, "ok": True, "result": {"done": "add_track"}},
            {"type": "reply", "ref": 2, "ok": False, "code": "not_found", "message": "no clip c9"},
        ]

    run(body)


def test_a_malformed_message_is_answered_bad_message_with_its_ref_when_readable():
    async def body(hub: Hub, bus: FakeBus, quits: list[str]) -> None:
        page, written, _ = await connected(hub)
        hub.receive(page, '{"type":"command","ref":7,"to":"engine","command":"fault"}')
        hub.receive(page, "{broken")
        hub.receive(page, b"\x00binary")
        await settle()
        replies = written[-3:]
        assert [(r["ref"], r["ok"], r["code"]) for r in replies] == [
            (7, False, "bad_message"),
            (0, False, "bad_message"),
            (0, False, "bad_message"),
        ]
        assert all(cmd != "fault" for _to, cmd, _a in bus.sent)

    run(body)


def test_a_session_change_sends_each_page_a_diff_against_what_it_holds():
    async def body(hub: Hub, bus: FakeBus, quits: list[str]) -> None:
        runner = asyncio.get_running_loop().create_task(hub.run_session_updates())
        _page, written, _ = await connected(hub)
        bus.timeline = ONE_TRACK
        hub.on_event(
            event("session.changed", SessionChanged(command="add_track", id="a", revision=1))
        )
        await settle()
        change = written[-1]
        assert (change["type"], change["base"], change["revision"]) == ("diff", 0, 1)
        assert change["command"] == "add_track" and change["tracks"] == [
            {"id": "t1", "name": "V1", "kind": "video"}
        ]
        _later, later_written, _ = await connected(hub)  # connects after it: gets it whole
        assert kinds(later_written) == ["hello", "status", "session"]
        runner.cancel()

    run(body)


def test_an_emergency_goes_to_every_page_and_to_one_that_connects_after():
    async def body(hub: Hub, bus: FakeBus, quits: list[str]) -> None:
        _a, first, _ = await connected(hub)
        hub.on_event(
            event(
                "lifecycle.ON_EMERGENCY_EXIT",
                EmergencyExit(
                    event="ON_EMERGENCY_EXIT",
                    subsystem="engine",
                    exit_code=None,
                    signal=9,
                    reason="killed by signal 9",
                ),
            )
        )
        await settle()
        assert first[-1] == {
            "type": "emergency",
            "reason": "killed by signal 9",
            "subsystem": "engine",
        }
        _b, second, _ = await connected(hub)
        assert kinds(second)[:2] == ["hello", "emergency"]

    run(body)


def test_a_page_gets_only_the_events_it_subscribed_to():
    async def body(hub: Hub, bus: FakeBus, quits: list[str]) -> None:
        page, written, _ = await connected(hub)
        subscribed: list[tuple[str, ...]] = []
        hub.subscribe = subscribed.append
        hub.receive(page, '{"type":"subscribe","prefixes":["stats."]}')
        await settle()
        assert subscribed == [("stats.",)]
        stats = StatsPlayer(streams=[])
        hub.on_event(event("stats.player", stats))
        hub.on_event(event("session.changed", SessionChanged(command="x", id="y", revision=5)))
        await settle()
        forwarded = [w for w in written if w["type"] == "event"]
        assert [f["topic"] for f in forwarded] == ["stats.player"]

    run(body)


def test_quit_is_answered_then_ends_the_application_and_clock_answers_the_server_time():
    async def body(hub: Hub, bus: FakeBus, quits: list[str]) -> None:
        page, written, _ = await connected(hub)
        hub.receive(page, '{"type":"clock","ref":3,"page_ms":5.0}')
        hub.receive(page, '{"type":"quit","ref":4}')
        await settle()
        assert written[-2]["ref"] == 3 and written[-2]["result"]["server_ms"] > 0
        assert written[-1] == {"type": "reply", "ref": 4, "ok": True, "result": {"quitting": True}}
        assert quits == ["quit"]

    run(body)


def test_without_a_viewer_a_viewer_ack_is_answered_unavailable():
    async def body(hub: Hub, bus: FakeBus, quits: list[str]) -> None:
        page, written, _ = await connected(hub)
        hub.receive(page, '{"type":"viewer_ack","on":true}')
        await settle()
        assert (written[-1]["ref"], written[-1]["code"]) == (0, "unavailable")

    run(body)


def test_an_outbox_drops_events_past_its_limit_and_closes_a_page_that_stopped_reading():
    async def body(hub: Hub, bus: FakeBus, quits: list[str]) -> None:
        outbox = Outbox(_never, _never)  # nobody drains it: a page that stopped reading
        tick = uibus.BusEvent(topic="stats.player", sender="p", ts=0.0)
        for _ in range(pages_module.MAX_EVENTS_QUEUED + 10):
            outbox.put(tick)
        assert outbox.events_dropped == 10
        note = uibus.Note(level="info", text="x")
        try:
            for _ in range(pages_module.MAX_QUEUED):
                outbox.put(note)
        except PageGone:
            pass
        assert outbox.closed

    run(body)


async def _never(_frame: Any) -> None:
    raise AssertionError("nothing is written")


class FakeViewer:
    def __init__(self) -> None:
        self.ring: str | None = "viewer-960x540"
        self.sends: dict[int, Callable[[bytes], Awaitable[None]]] = {}
        self.acks: list[tuple[int, bool, int | None]] = []

    def add_page(self, page_id: int, send: Callable[[bytes], Awaitable[None]]) -> None:
        self.sends[page_id] = send

    def ack(self, page_id: int, on: bool, frame: int | None) -> None:
        self.acks.append((page_id, on, frame))

    def remove_page(self, page_id: int) -> None:
        del self.sends[page_id]

    def counts(self, page_id: int) -> tuple[int, int, int | None]:
        return (3, 1, 41)


def test_the_viewer_feed_gets_each_page_its_acks_and_its_end_and_pages_get_its_counts(
    monkeypatch,
):
    async def body(hub: Hub, bus: FakeBus, quits: list[str]) -> None:
        viewer = hub.viewer = FakeViewer()
        page, written, _ = await connected(hub)
        await viewer.sends[page.id](b"\x01" * 20)  # a picture: written as a binary frame
        hub.receive(page, '{"type":"viewer_ack","on":true,"frame":40}')
        await settle()
        assert viewer.acks == [(page.id, True, 40)]
        assert {"type": "<picture>", "bytes": 20} in written
        monkeypatch.setattr("lumiera.stage.web.hub.STATUS_INTERVAL_S", 0.0)
        ticker = asyncio.get_running_loop().create_task(hub.run_status_updates())
        await settle()
        ticker.cancel()
        counts = next(w for w in written if w["type"] == "viewer")
        assert counts == {
            "type": "viewer", "sent": 3, "dropped": 1, "frame": 41, "ring": "viewer-960x540"
        }  # fmt: skip
        hub.disconnect(page)
        assert viewer.sends == {}

    run(body)
