"""The web UI's server against a real ``lumiera up`` (with the gui), driven by aiohttp's client.

No browser here: what a page would get and send, frame by frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lumiera.stage.gui import uibus
from lumiera.testing import Instance, run_cli, wait_for

pytestmark = pytest.mark.integration

WAIT_S = 10.0  # one message on the websocket


@contextlib.contextmanager
def gui_up(tmp_path: Path, *defs: str) -> Iterator[tuple[Instance, str]]:
    """A running instance with the web UI (no browser opened), and the UI's address."""
    args = [str(tmp_path / "edit.lumiera")]
    with Instance(args, defs=["gui.open_browser=no", *defs]) as inst:
        inst.wait_running(30)
        yield inst, inst.request("gui", "describe")["url"]


def base_of(url: str) -> str:
    return url.split("/?", 1)[0]


def cli(inst: Instance, *args: str) -> Any:
    done = run_cli(*args, "--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path))
    assert done.returncode == 0, done.stderr
    return done.stdout


def session_of(inst: Instance) -> dict[str, Any]:
    described: dict[str, Any] = inst.request("session", "describe")
    described.pop("uptime_s")
    return described


def logged_in() -> aiohttp.ClientSession:
    # unsafe: aiohttp keeps no cookie of an IP address host otherwise
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The next message of ``kind`` (others, like the status every second, passed over)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            frame = await ws.receive()
            assert frame.type is aiohttp.WSMsgType.TEXT, frame
            message: dict[str, Any] = json.loads(frame.data)
            uibus.decode(frame.data, up=False)  # every frame down is a declared kind
            if message["type"] == kind:
                return message


async def command(ws: aiohttp.ClientWebSocketResponse, ref: int, to: str, what: str, **args: Any):
    await ws.send_str(json.dumps({"type": "command", "ref": ref, "to": to, "command": what,
                                  "args": args}))  # fmt: skip
    reply = await next_of(ws, "reply")
    assert reply["ref"] == ref, reply
    return reply


def test_the_ui_refuses_everything_without_the_token_and_logs_a_page_in_with_it(tmp_path):
    with gui_up(tmp_path) as (inst, url):
        base = base_of(url)

        async def visit() -> None:
            async with aiohttp.ClientSession() as anonymous:
                for path in ("/", "/uibus.json", "/app.js", "/ws", "/?token=wrong"):
                    async with anonymous.get(base + path) as r:
                        assert r.status == 403, path
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await anonymous.ws_connect(base + "/ws", origin=base)
                assert refused.value.status == 403
            async with logged_in() as browser:
                async with browser.get(url) as page:
                    assert page.status == 200 and str(page.url) == base + "/"
                    (login,) = page.history
                    assert login.status == 302 and login.headers["Location"] == "/"
                    cookie = login.headers["Set-Cookie"]
                    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
                    assert "<script" in await page.text()
                async with browser.get(base + "/uibus.json") as schema:
                    assert schema.status == 200 and await schema.json() == uibus.schema()
                async with browser.get(base + "/app.js") as module:
                    assert module.status == 200
                    assert module.headers["Content-Type"].startswith("text/javascript")
                    assert module.headers["Cache-Control"] == "no-cache"
                async with browser.get(base + "/../setup.ini") as escape:
                    assert escape.status in (403, 404)
                with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
                    await browser.ws_connect(base + "/ws", origin="http://evil.example")
                assert foreign.value.status == 403

        asyncio.run(visit())
        assert f"gui     | open {url}" in inst.output()
        assert json.loads(cli(inst, "status", "--json"))["gui"]["url"] == url
        assert f"gui {url}" in cli(inst, "status")


def test_a_page_gets_the_session_edits_it_sees_notes_and_marks_and_quits(tmp_path):
    with gui_up(tmp_path) as (inst, url):
        base = base_of(url)

        async def page() -> None:
            async with logged_in() as browser:
                await browser.get(url)
                async with browser.ws_connect(base + "/ws", origin=base) as ws:
                    hello = await next_of(ws, "hello")
                    assert hello["instance"] == inst.rd.instance and hello["server_ms"] > 0
                    assert hello["allowed"]["session"] == sorted(uibus.ALLOWED["session"])
                    status = await next_of(ws, "status")
                    assert status["status"]["phase"] == "running"
                    session = await next_of(ws, "session")
                    base_rev = session["timeline"]["revision"]
                    await edit(ws, base_rev)
                    await facade(ws)
                    await command(ws, 9, "session", "undo")  # any command goes on after those
                    await ws.send_str(json.dumps({"type": "quit", "ref": 10}))
                    assert (await next_of(ws, "reply"))["ok"] is True
                    closing = await ws.receive(timeout=WAIT_S)
                    while closing.type is aiohttp.WSMsgType.TEXT:  # what was still queued
                        closing = await ws.receive(timeout=WAIT_S)
                    assert closing.type is aiohttp.WSMsgType.CLOSE

        async def edit(ws: aiohttp.ClientWebSocketResponse, base_rev: int) -> None:
            added = await command(ws, 1, "session", "add_track", name="V9")
            assert added["ok"] is True, added
            change = await next_of(ws, "diff")
            assert change["base"] == base_rev and change["command"] == "add_track"
            assert [t["name"] for t in change["tracks"]] == ["V9"]
            before = session_of(inst)
            bad = await command(ws, 2, "session", "move_clip", id="c404", position=5)
            assert bad["ok"] is False and bad["code"] == "not_found", bad
            assert session_of(inst) == before
            await ws.send_str('{"type": "command", "ref": 3, "to": "engine", "command": "fault"}')
            refused = await next_of(ws, "reply")
            assert (refused["ref"], refused["code"]) == (3, "bad_message")
            assert "engine fault is not a command a page may send" in refused["message"]
            await ws.send_str("{not json")
            assert (await next_of(ws, "reply"))["ref"] == 0
            await ws.send_str('{"type": "clock", "ref": 4, "page_ms": 1.0}')
            assert (await next_of(ws, "reply"))["result"]["server_ms"] > 0

        async def facade(ws: aiohttp.ClientWebSocketResponse) -> None:
            await asyncio.to_thread(
                cli, inst, "send", "gui", "notify", '{"level": "error", "text": "x"}'
            )
            note = await next_of(ws, "note")
            assert (note["level"], note["text"]) == ("error", "x")
            await asyncio.to_thread(cli, inst, "send", "gui", "mark", '{"id": "t1"}')
            assert await next_of(ws, "mark") == {"type": "mark", "id": "t1", "mark": "error"}

        asyncio.run(page())
        assert inst.wait(20) == 0, inst.output()


def test_an_emergency_reaches_the_page_with_its_reason_before_the_connection_drops(tmp_path):
    with gui_up(tmp_path) as (inst, url):
        base = base_of(url)
        engine = inst.pid_of("engine")

        async def page() -> dict[str, Any]:
            async with logged_in() as browser:
                await browser.get(url)
                async with browser.ws_connect(base + "/ws", origin=base) as ws:
                    await next_of(ws, "session")
                    os.kill(engine, signal.SIGKILL)
                    return await next_of(ws, "emergency")

        emergency = asyncio.run(page())
        assert emergency["subsystem"] == "engine"
        assert "signal 9" in emergency["reason"] or "SIGKILL" in emergency["reason"], emergency
        assert inst.wait(20) == 2, inst.output()


def run_attached(inst: Instance, name: str) -> subprocess.Popen[bytes]:
    where = ["--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)]
    return subprocess.Popen(
        [sys.executable, "-m", "lumiera", "run", name, *where],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_gui_started_again_serves_the_same_address_so_an_open_page_reconnects(tmp_path):
    args = [str(tmp_path / "edit.lumiera"), "--debug", "gui"]
    with Instance(args, defs=["gui.open_browser=no"]) as inst:
        inst.wait_up(30)

        def gui_running() -> bool:
            return any(
                s["name"] == "gui" and s["state"] == "running" for s in inst.status()["subsystems"]
            )

        attached = [run_attached(inst, "gui")]
        try:

            async def page() -> None:
                await asyncio.to_thread(wait_for, gui_running, 30, "gui attached")
                url = inst.request("gui", "describe")["url"]
                async with logged_in() as browser:
                    await browser.get(url)
                    for _ in range(2):
                        async with browser.ws_connect(
                            base_of(url) + "/ws", origin=base_of(url)
                        ) as ws:
                            assert (await next_of(ws, "hello"))["instance"] == inst.rd.instance
                        attached[-1].send_signal(signal.SIGINT)  # the developer ends it
                        assert await asyncio.to_thread(attached[-1].wait, 10) == 0
                        attached.append(run_attached(inst, "gui"))  # and starts it again
                        await asyncio.to_thread(wait_for, gui_running, 30, "gui attached again")
                        assert inst.request("gui", "describe")["url"] == url

            asyncio.run(page())
        finally:
            for p in attached:
                if p.poll() is None:
                    p.kill()
                    p.wait()


def test_a_port_that_is_taken_fails_the_start_clearly_and_everything_ends_in_order(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [str(tmp_path / "edit.lumiera")]
        with Instance(args, defs=[f"gui.port={port}"]) as inst:
            code = inst.wait(30)
            out = inst.output()
    assert code == 1, out
    assert f"the web UI cannot start: cannot listen on 127.0.0.1:{port}" in out
