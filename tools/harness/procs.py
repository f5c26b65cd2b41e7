"""CPU, page faults and resident memory of processes and process trees, from /proc."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (field 3, the state, first)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()


def minor_faults(pid: int) -> int:
    """Minor page faults of a process so far (all its threads)."""
    return int(_stat(pid)[7])


def cpu_s(pid: int, *, reaped: bool = False) -> float:
    """CPU seconds of a process so far, all threads (``reaped``: and its waited-for children)."""
    f = _stat(pid)
    return (int(f[11]) + int(f[12]) + (int(f[13]) + int(f[14]) if reaped else 0)) / TICKS


def tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (zombies left out), parents first; [] once it is gone."""
    children: dict[int, list[int]] = {}
    live = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                f = _stat(int(entry.name))
                if f[0] != "Z":
                    live.add(int(entry.name))
                    children.setdefault(int(f[1]), []).append(int(entry.name))
    out = [pid] if pid in live else []
    for p in out:  # grows as it goes: breadth first
        out += children.get(p, [])
    return out


def tree_rss(pid: int) -> int:
    """Resident bytes of a process tree now: the sum over its processes (so pages they
    share, such as a shm ring or the interpreter's libraries, count once per process)."""
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError, IndexError):
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
    return total


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process tree so far: its live processes and all they have reaped."""
    total = 0.0
    for p in tree(pid):
        with contextlib.suppress(OSError, IndexError):
            total += cpu_s(p, reaped=True)
    return total


class PeakRss:
    """The most resident memory a process tree had, sampled every ``every`` s in a thread.

    ``with PeakRss(pid) as peak: ...`` then ``peak.bytes``: a lower bound (a
    spike between two samples is missed).
    """

    def __init__(self, pid: int, every: float = 0.01) -> None:
        self.pid, self.every, self.bytes, self.samples = pid, every, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def _run(self) -> None:
        while True:
            self.bytes = max(self.bytes, tree_rss(self.pid))
            self.samples += 1
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass(frozen=True)
class Usage:
    """CPU seconds and minor page faults of one process."""

    cpu_s: float
    faults: int

    @classmethod
    def of(cls, pid: int) -> Usage:
        return cls(cpu_s(pid), minor_faults(pid))

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.cpu_s - other.cpu_s, self.faults - other.faults)


@dataclass(frozen=True)
class Span:
    """What was used between two :class:`Cpu` readings."""

    wall: float
    own: Usage  # this process, its threads and its reaped children
    pids: dict[int, Usage]
    others: float  # cores every other process of the machine used, on average

    def cores(self, pid: int) -> float:
        return self.pids[pid].cpu_s / self.wall


@dataclass(frozen=True)
class Cpu:
    """CPU used so far: by the machine (steal time included), this process, given processes."""

    wall: float
    machine: float
    own: Usage
    pids: dict[int, Usage]

    @classmethod
    def now(cls, pids: Sequence[int] = ()) -> Cpu:
        with open("/proc/stat") as f:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (
                int(x) for x in f.readline().split()[1:9]
            )
        t = os.times()
        own_s = t.user + t.system + t.children_user + t.children_system
        own = Usage(own_s, minor_faults(os.getpid()))
        busy = (user + nice + system + irq + softirq + steal) / TICKS
        return cls(time.monotonic(), busy, own, {pid: Usage.of(pid) for pid in pids})

    def since(self, before: Cpu) -> Span:
        wall = max(self.wall - before.wall, 1e-9)
        pids = {p: u - before.pids[p] for p, u in self.pids.items()}
        own = self.own - before.own
        used = own.cpu_s + sum(u.cpu_s for u in pids.values())
        return Span(wall, own, pids, max(0.0, ((self.machine - before.machine) - used) / wall))
