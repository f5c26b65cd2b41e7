"""A child process that the kernel signals when its parent dies (Linux ``PR_SET_PDEATHSIG``).

For processes a command starts and must never outlive it: the instance of a
``lumiera render`` and the nodes of a local farm. Passed as ``preexec_fn`` to
:class:`subprocess.Popen` it runs in the child between fork and exec; the
signal is sent when the *thread* that forked dies, so fork from the main
thread. Not Linux: a no-op.
"""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def prctl(option: int, value: int) -> bool:
    """``prctl(option, value)`` (Linux); whether it took. Elsewhere: False, nothing done."""
    try:
        return int(ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def signal_on_parent_death(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` that asks for ``sig`` when the parent dies."""

    def arm() -> None:  # pragma: no cover - runs in the child, before exec
        prctl(PR_SET_PDEATHSIG, sig)

    return arm
