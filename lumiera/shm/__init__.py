"""Shared memory owned by an instance: segment naming and the stale-segment sweep.

The frame rings themselves come with the ring issue; what is here already is
the part the supervisor needs from its first day: every segment an instance
creates is named ``lumiera-<uid>-<instance>:<name>`` (":" cannot occur in an instance name,
so instance ``a`` never sweeps the segments of instance ``a-b``), so one left behind by a
SIGKILLed instance (Python's resource tracker dies with it and cannot unlink)
is found by prefix and removed at the next ``up``, after the lock is taken.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

SHM_DIR = Path("/dev/shm")


def segment_prefix(instance: str, uid: int | None = None) -> str:
    """The name prefix of every shm segment of ``instance``."""
    return f"lumiera-{os.getuid() if uid is None else uid}-{instance}:"


def segment_name(instance: str, name: str) -> str:
    return segment_prefix(instance) + name


def list_segments(instance: str) -> list[str]:
    """Names of this user's segments of ``instance`` present in /dev/shm."""
    prefix = segment_prefix(instance)
    try:
        return sorted(p.name for p in SHM_DIR.iterdir() if p.name.startswith(prefix))
    except FileNotFoundError:
        return []


def sweep(instance: str) -> list[str]:
    """Unlink every segment of ``instance``. Only its lock holder may call this."""
    removed = []
    for name in list_segments(instance):
        with contextlib.suppress(FileNotFoundError):
            (SHM_DIR / name).unlink()
            removed.append(name)
    return removed
