"""What asks the supervisor from outside its loop to stop in order, and wakes the loop.

Two sources: SIGINT, SIGTERM and SIGHUP (a terminal's Ctrl-C, ``kill``; not a
SIGHUP that nohup asked to be ignored), and another thread of the supervisor's
own process (:meth:`Stops.request`: ``lumiera render``'s and ``lumiera replay``'s
driver, :mod:`lumiera.cli.hosted`). Both write into one pipe the loop polls
(the signals through :func:`signal.set_wakeup_fd`); the loop then :meth:`takes
<Stops.take>` them. A request after :meth:`uninstall` is refused, never written
into a closed (or reused) descriptor.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any

from lumiera.exits import stop_signals


class Stops:
    def __init__(self) -> None:
        self._signals: list[int] = []  # appended by the handlers
        self._requests: list[str] = []
        self._lock = threading.Lock()
        self._r = self._w = -1
        self._old: dict[int, Any] = {}

    def install(self) -> int:
        """The handlers and the pipe (main thread only); its read end, for the poller."""
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with self._lock:  # kept at once: uninstall() undoes a partial install too
            self._r, self._w = r, w
        for sig in stop_signals():  # SIGHUP: the terminal closed (unless under nohup)
            self._old[sig] = signal.signal(sig, lambda s, _f: self._signals.append(s))
        self._old[-1] = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        return r

    def request(self, reason: str) -> bool:
        """A stop asked by another thread; False when the loop no longer takes any."""
        with self._lock:
            if self._w < 0:
                return False
            self._requests.append(reason)
            with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
                os.write(self._w, b"\0")
        return True

    def take(self) -> tuple[list[signal.Signals], list[str]]:
        """The signals and requests that came since the last call (the pipe drained)."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._r, 512)
        sigs: list[signal.Signals] = []
        while self._signals:
            sigs.append(signal.Signals(self._signals.pop(0)))
        with self._lock:
            requests, self._requests = self._requests, []
        return sigs, requests

    def uninstall(self) -> None:
        """The former handlers back; the pipe closed (requests refused from now on)."""
        if -1 in self._old:
            signal.set_wakeup_fd(self._old.pop(-1))
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old.clear()
        with self._lock:
            for fd in (self._r, self._w):
                if fd >= 0:
                    os.close(fd)
            self._r = self._w = -1
