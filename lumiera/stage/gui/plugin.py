"""The UI as a plug-in: what the gui subsystem loads, and how it finds it.

As Lumiera loads its GUI as a plug-in, the gui subsystem loads the front-end
named by ``[gui] ui`` in setup.ini through the entry point group
``lumiera.ui``: a package adds a front-end (a desktop window, a TUI) by
declaring ``NAME = "package.module:Class"`` there, with no change to the
kernel. lumiera's own is ``web`` (:mod:`lumiera.stage.web`).

A front-end is a :class:`UserInterface`. The gui subsystem's actor drives it
from the process's main thread: :meth:`~UserInterface.start` once the
subsystems below are running, :meth:`~UserInterface.stop` at the end. The GUI
Notification facade (``gui notify``, ``gui mark`` on the bus) arrives as
:meth:`~UserInterface.notify` and :meth:`~UserInterface.mark`, from the main
thread; a front-end hands them to its own thread or loop.
"""

from __future__ import annotations

import abc
import importlib.metadata
from dataclasses import dataclass
from typing import Any

from lumiera.actors import ActorContext
from lumiera.errors import ConfigError
from lumiera.stage.gui.uibus import Mark, Note

ENTRY_POINT_GROUP = "lumiera.ui"


@dataclass
class GuiHost:
    """What a front-end gets from the gui subsystem: its context and the application's end."""

    ctx: ActorContext

    def quit(self) -> None:
        """End the application in order (the main window closed): ``lumiera up`` exits 0."""
        self.ctx.end(None)


class UserInterface(abc.ABC):
    """A front-end of the gui subsystem (see the module docstring)."""

    def __init__(self, host: GuiHost) -> None:
        self.host = host

    @abc.abstractmethod
    def start(self) -> None:
        """Start serving; return once it serves (bounded). Main thread; raising fails the start."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop serving, within a bounded time (pages are told first). Main thread; never raises."""

    @abc.abstractmethod
    def notify(self, note: Note) -> None:
        """Show a note to the user. Main thread; must not block."""

    @abc.abstractmethod
    def mark(self, mark: Mark) -> None:
        """Mark the element ``mark.id`` (``none`` clears it). Main thread; must not block."""

    def describe(self) -> dict[str, Any]:
        """What ``gui describe`` and ``lumiera status`` show of it (e.g. ``url``)."""
        return {}


def names() -> list[str]:
    """The front-ends installed (their entry point names)."""
    return sorted(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def load(name: str) -> type[UserInterface]:
    """The front-end class named ``name``; ConfigError naming the installed ones if none is."""
    found = [
        ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name
    ]
    if not found:
        known = ", ".join(names()) or "none installed"
        raise ConfigError(f"[gui] ui = {name}: no such user interface (installed: {known})")
    entry = next(iter(found))
    cls = entry.load()
    if not (isinstance(cls, type) and issubclass(cls, UserInterface)):
        raise ConfigError(f"[gui] ui = {name}: {entry.value} is not a UserInterface")
    return cls
