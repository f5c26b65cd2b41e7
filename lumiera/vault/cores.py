"""How many cores this process may use.

Its own module, importing nothing of lumiera's: the command line's local farm
(imported whenever ``lumiera`` builds its argument parser) needs it, and
:mod:`lumiera.vault.streamspec` would bring the timeline's records with it
(about 17 ms at every command).
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on: its affinity, which a container's cpuset
    narrows, not every core of the host (never empty)."""
    return len(os.sched_getaffinity(0))
