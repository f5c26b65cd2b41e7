"""Lifecycle events and the in-process hook registry.

Across processes an event is a barrier (the supervisor waits for every live
subsystem's ``ack``); within one process, :class:`Hooks` runs the hooks
registered for an event in registration order, ignoring duplicates, and a hook
added for ON_BASIC_INIT after it fired runs at once (as Lumiera's LifecycleHook).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

Hook = Callable[[], None]


class Lifecycle(enum.StrEnum):
    """The lifecycle events, in the order an orderly run sees them."""

    ON_BASIC_INIT = "ON_BASIC_INIT"
    ON_GLOBAL_INIT = "ON_GLOBAL_INIT"
    ON_SESSION_START = "ON_SESSION_START"
    ON_SESSION_INIT = "ON_SESSION_INIT"
    ON_SESSION_READY = "ON_SESSION_READY"
    ON_SESSION_CLOSE = "ON_SESSION_CLOSE"
    ON_SESSION_END = "ON_SESSION_END"
    ON_GLOBAL_SHUTDOWN = "ON_GLOBAL_SHUTDOWN"
    ON_EMERGENCY_EXIT = "ON_EMERGENCY_EXIT"


# Events the supervisor drives as barriers over running subsystems, in order.
SESSION_OPENING = (
    Lifecycle.ON_SESSION_START,
    Lifecycle.ON_SESSION_INIT,
    Lifecycle.ON_SESSION_READY,
)
SESSION_CLOSING = (Lifecycle.ON_SESSION_CLOSE, Lifecycle.ON_SESSION_END)


class Hooks:
    """Hooks of one process, per event. Not thread-safe: use from the main thread."""

    def __init__(self) -> None:
        self._hooks: dict[Lifecycle, list[Hook]] = {}
        self._fired: set[Lifecycle] = set()

    def add(self, event: Lifecycle, hook: Hook) -> None:
        """Register ``hook`` for ``event``; a duplicate is ignored.

        A hook for ON_BASIC_INIT added after that event fired runs at once,
        in the caller's thread; its exception propagates to the caller.
        """
        hooks = self._hooks.setdefault(event, [])
        if hook in hooks:
            return
        hooks.append(hook)
        if event is Lifecycle.ON_BASIC_INIT and event in self._fired:
            hook()

    def fire(self, event: Lifecycle) -> None:
        """Run the hooks of ``event`` in registration order.

        An exception from a hook propagates (the remaining hooks do not run):
        the subsystem runtime turns it into a problem report and a crash exit.
        """
        self._fired.add(event)
        for hook in list(self._hooks.get(event, ())):
            hook()

    def fired(self, event: Lifecycle) -> bool:
        return event in self._fired
