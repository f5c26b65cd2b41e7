"""Suite-wide fixtures: isolation per worker, and a check that nothing leaks.

Every test is checked after it ran: no process it started (directly or
through a supervisor) may still run, no socket file may be left in a runtime
directory it created, and no shared-memory segment of an instance it created
may remain. A leak fails the test (and is cleaned up, so the next one starts
clean). The pytest process makes itself a child subreaper, so even the
children of a SIGKILLed supervisor are re-parented to it and cannot escape
the check.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lumiera import shm, testing
from lumiera.runtime_dir import LOCK_FILE, TEMP_DIR

PR_SET_CHILD_SUBREAPER = 36
LEAK_GRACE_S = 5.0


def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _descendants() -> dict[int, str]:
    """pid -> state of every live process below us (zombies reaped first)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] != 0:
            pass
    parent: dict[int, int] = {}
    state: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parent[int(entry.name)] = int(fields[1])
        state[int(entry.name)] = fields[0]
    me = os.getpid()
    out = {}
    for pid in parent:
        p = pid
        while p in parent and p not in (0, 1, me):
            p = parent[p]
        if p == me and pid != me and state[pid] != "Z":
            out[pid] = state[pid]
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


@pytest.fixture(scope="session", autouse=True)
def _isolation() -> Iterator[Path]:
    """A base directory of this worker's own for runtime and log directories."""
    _become_subreaper()
    base = Path(tempfile.mkdtemp(prefix="lumt-", dir="/tmp"))
    os.environ["LUMIERA_TEST_BASE"] = str(base)
    os.environ["XDG_STATE_HOME"] = str(base / "state")  # subsystem log files
    os.environ["XDG_CACHE_HOME"] = str(base / "cache")  # render nodes' shipped media
    os.environ.pop("LUMIERA_RUNTIME_DIR", None)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_leaks(_isolation: Path) -> Iterator[None]:
    """Fail the test if it leaves a process, a socket file or a shm segment behind."""
    first_instance = len(testing.CREATED_INSTANCES)
    yield
    problems = []
    deadline = time.monotonic() + LEAK_GRACE_S
    while (procs := _descendants()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in procs:
        problems.append(f"process {pid} still running: {_cmdline(pid)}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for sock in _isolation.rglob("*"):
        if sock.is_socket():
            problems.append(f"socket file left: {sock}")
            sock.unlink()
    for temp in _isolation.rglob(TEMP_DIR):
        if temp.is_dir() and (temp.parent / LOCK_FILE).exists():
            problems.append(f"temp area left: {temp}")
            shutil.rmtree(temp, ignore_errors=True)
    for instance in testing.CREATED_INSTANCES[first_instance:]:
        for seg in shm.list_segments(instance):
            problems.append(f"shm segment left: /dev/shm/{seg}")
        shm.sweep(instance)
    _descendants()  # reap what we killed
    if problems:
        pytest.fail("the test leaked:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def rd() -> testing.RuntimeDir:
    """A unique runtime directory (not created by the supervisor) and instance name."""
    return testing.unique_runtime_dir()
