"""What an instance may leave behind: processes, socket files, shm segments."""

from __future__ import annotations

import os
from pathlib import Path

from lumiera import shm
from lumiera.runtime_dir import TEMP_DIR, RuntimeDir


def instance_pids(instance: str) -> list[int]:
    """Live processes whose command line names ``instance`` (supervisor and subsystems)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and instance.encode() in cmd and any(b"lumiera" in a for a in cmd):
            found.append(int(entry.name))
    return found


def lumiera_processes() -> dict[int, str]:
    """pid -> command line of every process running lumiera code (for leak checks)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "-m lumiera" in cmd or "bin/lumiera " in cmd:
            found[int(entry.name)] = cmd.strip()
    found.pop(os.getpid(), None)
    return found


def leftovers(rd: RuntimeDir) -> list[str]:
    """Socket files, the pid file, the temp area and shm segments an instance left behind."""
    left = []
    if rd.path.exists():
        left += [
            p.name
            for p in rd.path.iterdir()
            if p.is_socket() or p.name in ("appstate.pid", TEMP_DIR)
        ]
    left += shm.list_segments(rd.instance)
    return left
