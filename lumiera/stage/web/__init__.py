"""The web UI: lumiera's own front-end, a local web application (``[gui] ui = web``).

The gui subsystem loads it as a plug-in (:mod:`lumiera.stage.gui.plugin`). It
runs one asyncio loop in a thread of its own in the gui process, holding the
aiohttp server (:mod:`.server`, on 127.0.0.1 only, guarded by a token as
Jupyter does: :mod:`.auth`) and the UI's bus sockets (zmq.asyncio: an
:class:`~lumiera.bus.client.AsyncControlClient` for the pages' commands and an
:class:`~lumiera.bus.events.AsyncSubscriber` for ``session.changed``, the
emergency and what pages subscribe to). The UI-Bus's rules live in
:mod:`.hub`, a page's outbox in :mod:`.pages`, the viewer's pictures in
:mod:`.viewer` (when installed). The pages themselves are ``static/``.

The address (with the token) is printed once on stdout (``lumiera up`` shows
it with the ``gui`` prefix), answered by ``gui describe`` (so ``lumiera
status`` shows it) and opened in a browser when ``[gui] open_browser`` says
so. The token and port are kept in the instance's temp area, so a gui started
again (``lumiera run gui``) serves the same address and an open page
reconnects.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import threading
import webbrowser
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lumiera.config import Config
from lumiera.errors import Unavailable
from lumiera.runtime_dir import RuntimeDir
from lumiera.stage.gui.plugin import GuiHost, UserInterface
from lumiera.stage.gui.uibus import Mark, Note, UiMessage
from lumiera.stage.web.auth import HOST, Auth
from lumiera.stage.web.service import Service, ViewerFeedPort

log = logging.getLogger("lumiera.gui.web")

START_TIMEOUT_S = 5.0  # the server listening and the bus sockets made
# The whole stop, pages told included. Under the supervisor's grace_period (3 s),
# and the heartbeat's watchdog (2 s): stop() holds the gui's main thread.
STOP_TIMEOUT_S = 2.0
VIEWER_MODULE = "lumiera.stage.web.viewer"


class WebUI(UserInterface):
    """The web front-end (see the module docstring). Its public methods run in the main thread."""

    def __init__(self, host: GuiHost) -> None:
        super().__init__(host)
        ctx = host.ctx
        if ctx.runtime_dir is None:
            raise Unavailable("the web UI needs the instance's runtime directory")
        self.rd = RuntimeDir(Path(ctx.runtime_dir), ctx.instance, False)
        self.port_setting = ctx.config.get_int("gui.port")
        self.open_browser = ctx.config.get_str("gui.open_browser")
        self.auth: Auth | None = None  # once it listens
        self._service: Service | None = None  # the loop thread's service, once it listens
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen and connect the bus (bounded); Unavailable saying why it cannot."""
        port, token = self._remembered()
        service = Service(
            self.host,
            self.rd,
            port,
            token,
            any_port=self.port_setting == 0,
            viewer=viewer_factory(),
        )
        thread = threading.Thread(target=service.run, name="web-ui", daemon=True)
        self._thread = thread
        thread.start()
        if not service.started.wait(START_TIMEOUT_S):
            service.request_stop()  # should it come up after all (the process ends anyway)
            raise Unavailable(f"the web UI did not start within {START_TIMEOUT_S:g} s")
        if service.failure is not None:
            thread.join(STOP_TIMEOUT_S)
            raise Unavailable(f"the web UI cannot start: {service.failure}") from service.failure
        self._service = service
        self.auth = service.auth
        assert self.auth is not None
        self._remember(self.auth)
        print(f"open {self.auth.url}", flush=True)
        if should_open_browser(self.open_browser, os.environ):
            threading.Thread(
                target=webbrowser.open, args=(self.auth.url,), name="browser", daemon=True
            ).start()

    def stop(self) -> None:
        """Tell the pages, close them, stop the server and the loop (bounded; never raises)."""
        if self._service is not None:
            self._service.request_stop()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive():
                log.error("the web UI did not stop within %g s", STOP_TIMEOUT_S)

    def notify(self, note: Note) -> None:
        self._broadcast(note)

    def mark(self, mark: Mark) -> None:
        self._broadcast(mark)

    def describe(self) -> dict[str, Any]:
        if self.auth is None or self._service is None:
            return {"url": None, "port": None, "pages": 0}
        return {
            "url": self.auth.url,
            "port": self.auth.port,
            "pages": self._service.pages(),
            "viewer": self._service.viewer is not None,
        }

    def _broadcast(self, message: UiMessage) -> None:
        if self._service is None or not self._service.call(message):
            raise Unavailable("the web UI is not running")

    # -- the address kept for a gui started again -------------------------------------

    @property
    def _state_file(self) -> Path:
        return self.rd.temp_dir / "gui-address"

    def _remembered(self) -> tuple[int, str | None]:
        """The port to listen on, and the token of an earlier gui of this instance."""
        try:
            port_text, token = self._state_file.read_text().split()
            port = int(port_text)
        except (OSError, ValueError):
            return self.port_setting, None
        if self.port_setting not in (0, port):
            return self.port_setting, token  # the setting changed: it wins
        return port, token

    def _remember(self, auth: Auth) -> None:
        try:
            fd = os.open(self._state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"{auth.port} {auth.token}\n")
        except OSError as e:  # a page then cannot reconnect to a later gui: no more
            log.warning("cannot keep the web UI's address in %s: %s", self._state_file, e)


def should_open_browser(setting: str, environ: Mapping[str, str]) -> bool:
    """``[gui] open_browser``: ``yes``, ``no``, or ``auto``: only where a display is.

    Without a display, ``webbrowser`` would pick a text browser that takes over
    the terminal ``lumiera up`` runs in.
    """
    if setting == "auto":
        return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    return setting == "yes"


def viewer_factory() -> Callable[[RuntimeDir, Config], ViewerFeedPort] | None:
    """The viewer feed's class, or None while :mod:`.viewer` is not installed."""
    if importlib.util.find_spec(VIEWER_MODULE) is None:
        return None
    feed: Callable[[RuntimeDir, Config], ViewerFeedPort] = importlib.import_module(
        VIEWER_MODULE
    ).ViewerFeed
    return feed


__all__ = ["HOST", "WebUI"]
