"""The GUI subsystem (Stage): the UI backbone and the GUI Notification facade.

It loads the front-end named by ``[gui] ui`` (a plug-in: :mod:`.plugin`;
lumiera's own is the web UI, :mod:`lumiera.stage.web`), starts it once the
session and the player run, and answers the facade's commands, which any
subsystem or tool may send: ``notify`` (a note for the user) and ``mark`` (an
element of the UI marked by its id). Closing the main window (``close``, or
the front-end's own quit) is the regular end of the application.
"""

from __future__ import annotations

from typing import Any

from lumiera.actors import Actor, ActorContext, command
from lumiera.errors import Unavailable
from lumiera.stage.gui.plugin import GuiHost, UserInterface, load
from lumiera.stage.gui.uibus import Mark, Note


class GuiActor(Actor):
    name = "gui"
    summary = "UI backbone and the GUI Notification facade (notify, mark)"

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__(ctx)
        self.ui_name = ctx.config.get_str("gui.ui")
        self.ui: UserInterface | None = None  # from on_start on

    def on_start(self) -> None:
        """Load the front-end and start it (ConfigError for an unknown ``[gui] ui``)."""
        self.ui = load(self.ui_name)(GuiHost(self.ctx))
        self.ui.start()

    def on_stop(self) -> None:
        if self.ui is not None:
            self.ui.stop()

    def describe_state(self) -> dict[str, Any]:
        return {
            "built": True,
            "ui": self.ui_name,
            **(self.ui.describe() if self.ui is not None else {}),
        }

    @command
    def on_notify(self, *, level: str = "info", text: str) -> dict[str, Any]:
        """Show a note to the user: level info, warning or error."""
        note = Note.from_wire({"level": level, "text": text}, "notify")
        self._ui().notify(note)
        return {"shown": True}

    @command
    def on_mark(self, *, id: str, mark: str = "error") -> dict[str, Any]:
        """Mark UI element ``id`` (a clip, track, media): error, warning, info, selected, none."""
        marked = Mark.from_wire({"id": id, "mark": mark}, "mark")
        self._ui().mark(marked)
        return {"marked": True}

    @command
    def on_close(self) -> dict[str, Any]:
        """Close the GUI: a regular end, so the whole application shuts down in order."""
        self.ctx.end(None)
        return {"closing": True}

    def _ui(self) -> UserInterface:
        if self.ui is None:
            raise Unavailable("the GUI has not started")
        return self.ui


ACTOR = GuiActor
