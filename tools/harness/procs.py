"""CPU, page faults and resident memory of processes and process trees, from /proc."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
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


def command_name(argv: Sequence[str]) -> str:
    """A short name of a process from its command line: ``python -m lumiera.actors engine
    ...`` -> ``lumiera.actors engine``, ``python tools/x.py`` -> ``x.py``, else argv[0]'s name."""
    if not argv:
        return "?"
    if "-m" in argv[:-1]:
        at = argv.index("-m")
        words = argv[at + 1 : at + 3]
        if len(words) == 2 and (words[1].startswith(("-", "/")) or "." in words[1]):
            words = words[:1]
        return " ".join(words)
    if Path(argv[0]).name.startswith("python") and len(argv) > 1 and argv[1][:1] != "-":
        return Path(argv[1]).name
    return Path(argv[0]).name


def _kib(text: str, key: str) -> int:
    """The ``KEY:  N kB`` field of a /proc status or smaps_rollup text, in bytes (0 if absent)."""
    at = text.find(f"\n{key}:")
    if at < 0 and not text.startswith(f"{key}:"):
        return 0
    return int(text[text.index(":", at + 1) + 1 :].split(None, 1)[0]) * 1024


@dataclass
class Proc:
    """One process of a sampled tree: its name, the CPU seconds last seen (its own threads),
    the most resident memory seen (RSS, PSS) and its high-water mark (VmHWM: exact, as the
    kernel kept it until the last sample)."""

    pid: int
    name: str
    cpu_s: float = 0.0
    rss: int = 0
    pss: int = 0
    hwm: int = 0


class TreeSampler:
    """A process tree sampled every ``every`` s in a thread, from /proc, while it runs.

    At each sample, for every live process of the tree: its CPU time so far
    (/proc/PID/stat), its RSS and PSS (/proc/PID/smaps_rollup; PSS splits each
    shared page among the processes that map it, so that the tree's sum counts
    a library or a shm ring once) and its VmHWM. The tree's sums at one sample,
    and their most over the samples: ``peak_rss`` (sum of RSS: a shared page
    counts once per process) and ``peak_pss``. Lower bounds: a spike between
    two samples, and the last moments of a process, are missed (but not by
    ``hwm``, which is the kernel's own peak of the process).
    ``name(argv)`` names a process from its command line (read once).
    """

    def __init__(
        self,
        pid: int,
        every: float = 0.05,
        name: Callable[[Sequence[str]], str] = command_name,
    ) -> None:
        self.pid, self.every, self.name = pid, every, name
        self.procs: dict[int, Proc] = {}
        self.peak_rss = self.peak_pss = self.samples = 0
        self.cpu_s = 0.0  # the sampler thread's own CPU time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)

    def sample(self) -> None:
        rss = pss = 0
        for p in tree(self.pid):
            try:
                f = _stat(p)
                status = Path(f"/proc/{p}/status").read_text()
                try:
                    rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
                    r, s = _kib(rollup, "Rss"), _kib(rollup, "Pss")
                except OSError:  # no smaps_rollup (kernel < 4.14): RSS stands in for PSS
                    r = s = _kib(status, "VmRSS")
                proc = self.procs.get(p)
                if proc is None:
                    argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
                    words = [w.decode(errors="replace") for w in argv if w]
                    if len(words) == 1:  # a title set in place (a zygote-forked subsystem)
                        words = words[0].split()
                    proc = self.procs[p] = Proc(p, self.name(words))
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            proc.cpu_s = (int(f[11]) + int(f[12])) / TICKS
            proc.rss, proc.pss = max(proc.rss, r), max(proc.pss, s)
            proc.hwm = max(proc.hwm, _kib(status, "VmHWM"), r)
            rss, pss = rss + r, pss + s
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        self.samples += 1

    def _run(self) -> None:
        t0 = time.thread_time()
        while True:
            self.sample()
            self.cpu_s = time.thread_time() - t0
            if self._stop.wait(self.every):
                return

    def by_name(self) -> dict[str, Proc]:
        """The processes summed by name (CPU, RSS, PSS; the largest VmHWM), most CPU first."""
        out: dict[str, Proc] = {}
        for p in self.procs.values():
            q = out.setdefault(p.name, Proc(p.pid, p.name))
            q.cpu_s += p.cpu_s
            q.rss, q.pss, q.hwm = q.rss + p.rss, q.pss + p.pss, max(q.hwm, p.hwm)
        return dict(sorted(out.items(), key=lambda kv: -kv[1].cpu_s))

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> TreeSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
