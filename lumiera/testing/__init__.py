"""Helpers for tests and tools that drive a real instance.

Every wait here has a bound and raises :class:`TimeoutError` saying what it
waited for. Runtime directories and instance names are unique per call, so
tests can run in parallel. (What only the benchmarks need lives beside them,
in ``tools/harness.py``: the runtime package ships none of it.)
"""

from __future__ import annotations

from lumiera.runtime_dir import RuntimeDir
from lumiera.testing.instance import (
    CREATED_INSTANCES,
    Instance,
    as_from_a_terminal,
    instance,
    run_cli,
    unique_runtime_dir,
)
from lumiera.testing.leaks import instance_pids, leftovers, lumiera_processes
from lumiera.testing.tap import Tap, synced_tap
from lumiera.testing.wait import wait_for

__all__ = [
    "CREATED_INSTANCES",
    "Instance",
    "RuntimeDir",
    "Tap",
    "as_from_a_terminal",
    "instance",
    "instance_pids",
    "leftovers",
    "lumiera_processes",
    "run_cli",
    "synced_tap",
    "unique_runtime_dir",
    "wait_for",
]
