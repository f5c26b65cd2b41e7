"""The GUI subsystem (Stage): the UI backbone and the GUI notification facade.

NOT BUILT YET: there is no window. This actor is the real process with
lifecycle, heartbeats and ``ping``/``describe``, so the default ``lumiera up``
(which starts the GUI and so everything below it) runs the whole kernel; it
runs until ``lumiera stop`` or Ctrl-C, as closing a GUI would end it.
"""

from __future__ import annotations

from typing import Any

from lumiera.actors import Actor, command


class GuiActor(Actor):
    name = "gui"
    summary = "UI backbone (no window yet)"

    def describe_state(self) -> dict[str, Any]:
        return {"built": False, "window": None, "note": "the GUI comes in a later issue"}

    @command
    def on_close(self) -> dict[str, Any]:
        """Close the GUI: a regular end, so the whole application shuts down in order."""
        self.ctx.end(None)
        return {"closing": True}


ACTOR = GuiActor
