"""Browser tests: the web UI's pages in a real Chromium (Debian's), driven by Playwright.

Never ``playwright install`` (it downloads a browser): the tests launch the
system's ``/usr/bin/chromium`` and are skipped, saying so, when it or the
``playwright`` package is missing (``.ci/run`` installs chromium).

Two kinds of page: :func:`page` is the real thing, a ``lumiera up`` instance
with its GUI (:func:`gui`); :func:`fake_page` is the page's files with a UI-Bus
played by the test (:class:`FakeGui`, through Playwright's websocket routing),
for what a real instance cannot be made to do on cue (an invalid message, a
dropped connection at a chosen moment).

Everything is per test: the browser, the instance, the page (the suite's leak
check wants every process gone after each test; a Chromium launch costs about
0.2 s here). Each page is saved as PNGs under the test's tmp dir
(:func:`shoot`, and ``final.png`` at the end), to be looked at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from lumiera.stage.gui import uibus
from lumiera.testing import Instance, run_cli, wait_for
from tests.unit.vault.mediakit import write_video

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route, WebSocketRoute

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu"]  # root needs --no-sandbox; no GPU here
VIEWPORT = {"width": 1280, "height": 860}
PAGE_TIMEOUT_MS = 10_000  # any one wait of a page
START_TIMEOUT_S = 30.0  # lumiera up to running, under a loaded test run
URL_RE = re.compile(r"open (http://127\.0\.0\.1:(\d+)/\?token=[\w-]+)")
STATIC = Path(uibus.__file__).parents[1] / "web" / "static"
FAKE_ORIGIN = "http://lumiera.test"
CONNECTED = "() => window.lumiera && window.lumiera.bus.connected"


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (skipped when it or playwright is missing)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
    )
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does, as root)")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def shoot(tmp_path: Path) -> Callable[[Page, str], Path]:
    """``shoot(page, "dashboard")``: the page as ``<tmp>/screens/dashboard.png``."""
    (tmp_path / "screens").mkdir(exist_ok=True)

    def save(page: Page, name: str) -> Path:
        path = tmp_path / "screens" / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return save


def _watch(page: Page, errors: list[str]) -> None:
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))


# -- the real thing: lumiera up with its GUI ----------------------------------------------


@dataclass
class Gui:
    """A running instance with its web UI, and what the tests need of it."""

    inst: Instance
    url: str  # with the token
    base: str  # http://127.0.0.1:PORT
    session: Path
    media: Path

    def request(self, to: str, command: str, args: dict[str, Any] | None = None) -> Any:
        return self.inst.request(to, command, args)

    def cli(self, *args: str) -> str:
        """``lumiera ARGS --instance ... --runtime-dir ...``, its stdout (it must succeed)."""
        where = ["--instance", self.inst.rd.instance, "--runtime-dir", str(self.inst.rd.path)]
        done = run_cli(*args, *where, timeout=20)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def timeline(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("session", "describe")["session"]
        return result

    def clip(self, cid: str) -> dict[str, Any]:
        return next(c for c in self.timeline()["clips"] if c["id"] == cid)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """Two seconds of coded frames (25 fps, 64x48, H.264): frame numbers in the picture."""
    return write_video(tmp_path / "clip.mp4", 50)


def gui_address(inst: Instance, timeout: float = 10.0) -> re.Match[str]:
    """The address ``lumiera up`` printed for the GUI."""
    found: re.Match[str] = wait_for(
        lambda: URL_RE.search(inst.output()), timeout, "the GUI's address on lumiera up's output"
    )
    return found


@pytest.fixture
def gui(tmp_path: Path, media: Path) -> Iterator[Gui]:
    """``lumiera up SESSION`` (not headless: the GUI runs) on a fresh session file."""
    session = tmp_path / "edit.lumiera"
    defs = ["gui.open_browser=no", "gui.port=0"]
    with Instance([str(session)], defs=defs) as inst:
        inst.wait_running(START_TIMEOUT_S)
        found = gui_address(inst)
        yield Gui(inst, found[1], f"http://127.0.0.1:{found[2]}", session, media)


@pytest.fixture
def page(browser: Browser, gui: Gui, tmp_path: Path) -> Iterator[Page]:
    """The GUI's page, opened with the token and connected; uncaught JS errors fail the test."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    opened = context.new_page()
    errors: list[str] = []
    _watch(opened, errors)
    opened.goto(gui.url)
    opened.wait_for_function(CONNECTED)
    try:
        yield opened
        assert not errors, errors
    finally:
        opened.screenshot(path=str(tmp_path / "final.png"))
        context.close()


# -- the page with a UI-Bus played by the test -------------------------------------------


@dataclass
class FakeGui:
    """The server's end of the page's websocket, played by the test."""

    up: list[dict[str, Any]] = field(default_factory=list)  # what the page sent, in order
    sockets: list[WebSocketRoute] = field(default_factory=list)  # every connection made
    # The reply to a message with a ref ({"ok": ..., "result"|"code"+"message": ...}), or None.
    answer: Callable[[dict[str, Any]], dict[str, Any] | None] = lambda _m: None

    @property
    def ws(self) -> WebSocketRoute:
        return self.sockets[-1]

    def accept(self, ws: WebSocketRoute) -> None:
        self.sockets.append(ws)
        ws.on_message(self._received)
        self.send("hello", instance="fake", server_ms=1000.0)

    def send(self, kind: str, **fields: Any) -> None:
        self.ws.send(json.dumps({"type": kind, **fields}))

    def sent(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.up if m["type"] == kind]

    def _received(self, text: str | bytes) -> None:
        message = json.loads(text)
        self.up.append(message)
        if message["type"] == "clock":  # the viewer's clock sync
            self.send("reply", ref=message["ref"], ok=True, result={"server_ms": 1000.0})
            return
        reply = self.answer(message)
        if reply is not None:
            self.send("reply", ref=message["ref"], **reply)


def _serve_static(route: Route) -> None:
    path = route.request.url.removeprefix(FAKE_ORIGIN).split("?")[0]
    if path == "/uibus.json":
        route.fulfill(json=uibus.schema())
        return
    file = STATIC / (path.lstrip("/") or "index.html")
    if not file.is_file() or not file.resolve().is_relative_to(STATIC.resolve()):
        route.fulfill(status=404, body="not found")
        return
    types = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
    route.fulfill(body=file.read_bytes(), content_type=types.get(file.suffix, "text/plain"))


@pytest.fixture
def fake() -> FakeGui:
    return FakeGui()


@pytest.fixture
def fake_page(browser: Browser, fake: FakeGui, tmp_path: Path) -> Iterator[Page]:
    """The page's own files, its UI-Bus played by ``fake``; connected when it is yielded."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    opened = context.new_page()
    errors: list[str] = []
    _watch(opened, errors)
    opened.route(f"{FAKE_ORIGIN}/**", _serve_static)
    opened.route_web_socket(f"{FAKE_ORIGIN.replace('http', 'ws')}/ws", fake.accept)
    opened.goto(f"{FAKE_ORIGIN}/")
    opened.wait_for_function(CONNECTED)
    try:
        yield opened
        assert not errors, errors
    finally:
        opened.screenshot(path=str(tmp_path / "final.png"))
        context.close()
