"""Helpers for tests, benchmarks and tools that drive a real instance.

Every wait here has a bound and raises :class:`TimeoutError` saying what it
waited for. Runtime directories and instance names are unique per call, so
tests can run in parallel.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import zmq

from lumiera import runtime_dir, shm
from lumiera.bus.client import ControlClient
from lumiera.bus.codec import pack, unpack
from lumiera.runtime_dir import TEMP_DIR, RuntimeDir

__all__ = [
    "Instance",
    "RuntimeDir",
    "Tap",
    "leftovers",
    "median",
    "pct",
    "run_cli",
    "table",
    "unique_runtime_dir",
    "wait_for",
]


# Instance names handed out in this process, so a leak check can find their segments.
CREATED_INSTANCES: list[str] = []


def unique_runtime_dir(base: str | None = None) -> RuntimeDir:
    """A fresh, short, private runtime directory and instance name.

    ``base`` defaults to ``$LUMIERA_TEST_BASE`` (the test suite gives each
    worker its own), else /tmp.
    """
    base = base or os.environ.get("LUMIERA_TEST_BASE") or "/tmp"
    Path(base).mkdir(mode=0o700, parents=True, exist_ok=True)
    instance = f"t{uuid.uuid4().hex[:10]}"
    CREATED_INSTANCES.append(instance)
    path = Path(tempfile.mkdtemp(prefix="lum-", dir=base))
    return RuntimeDir(path, instance, default_location=False)


def run_cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m lumiera ARGS`` to completion (bounded), capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "lumiera", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def median(data: Sequence[float]) -> float:
    """The median, or NaN for no data (benchmarks print it as such)."""
    return statistics.median(data) if data else float("nan")


def pct(data: Sequence[float], p: int) -> float:
    """The p-th percentile (inclusive method: within the observed range); NaN for no data."""
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    return statistics.quantiles(data, n=100, method="inclusive")[p - 1]


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """A benchmark's table: the first row is the header, the first column left-aligned,
    the middle ones right-aligned, the last (free text) as it is."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for j, r in enumerate(rows):
        cells = [
            r[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(r[1:-1], widths[1:-1], strict=True)),
        ]
        out.append("  ".join([*cells, r[-1]]).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.01) -> Any:
    """Poll ``predicate`` until it returns something truthy, else TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class Tap:
    """A SUB socket on an instance's ``events``, collecting (topic, body) pairs."""

    def __init__(self, rd: RuntimeDir, prefixes: Sequence[str] = ("",)) -> None:
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.sock = self._ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        for p in prefixes:
            self.sock.setsockopt(zmq.SUBSCRIBE, p.encode())
        self.sock.connect(rd.endpoint("events"))
        self.events: list[tuple[str, dict[str, Any]]] = []

    def poll(self, timeout: float = 0.0) -> list[tuple[str, dict[str, Any]]]:
        """Receive what has arrived (waiting up to ``timeout`` for the first one)."""
        got = []
        wait_ms = int(timeout * 1000)
        while self.sock.poll(wait_ms):
            topic, body = self.sock.recv_multipart()
            got.append((topic.decode(), unpack(body)))
            wait_ms = 0
        self.events.extend(got)
        return got

    def wait_topic(self, topic: str, timeout: float) -> dict[str, Any]:
        """Wait for the first event (already seen or new) with exactly ``topic``."""
        deadline = time.monotonic() + timeout
        while True:
            for t, body in self.events:
                if t == topic:
                    return body
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [t for t, _ in self.events]
                raise TimeoutError(f"no {topic} within {timeout} s (saw {seen})")
            self.poll(min(left, 0.1))

    def topics(self, prefix: str = "") -> list[str]:
        return [t for t, _ in self.events if t.startswith(prefix)]

    def close(self) -> None:
        self.sock.close(linger=0)


class Instance:
    """A ``lumiera up`` subprocess on a unique runtime directory.

    Use as a context manager: on exit, whatever is still running is stopped
    (SIGTERM, then SIGKILL of the supervisor after a bound) and waited for.
    """

    def __init__(
        self,
        args: Sequence[str] = ("--headless",),
        rd: RuntimeDir | None = None,
        defs: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.rd = rd or unique_runtime_dir()
        self.args = list(args)
        self.defs = list(defs)
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.started_at = 0.0
        # Beside the runtime directory, not in it: output and logs outlive the instance.
        self.out_path = self.rd.path.with_name(self.rd.path.name + ".out")
        self.log_dir = self.rd.path.with_name(self.rd.path.name + ".logs")

    @property
    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "lumiera", "up", *self.args]
        cmd += ["--instance", self.rd.instance, "--runtime-dir", str(self.rd.path)]
        cmd += ["--def", f"log.dir={self.log_dir}"]
        for d in self.defs:
            cmd += ["--def", d]
        return cmd

    def start(self) -> Instance:
        self.started_at = time.monotonic()
        env = dict(os.environ, **(self.env or {}))
        # A file, not a pipe: nobody reads a pipe while the instance runs, and a
        # full one would block the supervisor's writes.
        with self.out_path.open("w") as out:
            self.proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
        return self

    def client(self, timeout: float = 5.0) -> ControlClient:
        return ControlClient(self.rd, timeout=timeout)

    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        with self.client(timeout) as c:
            result: dict[str, Any] = c.request("appstate", "status")
            return result

    def request(self, to: str, command: str, args: dict[str, Any] | None = None) -> Any:
        with self.client() as c:
            return c.request(to, command, args)

    def wait_up(self, timeout: float = 20.0) -> dict[str, Any]:
        """Wait until the supervisor answers (any phase); returns its status."""
        return self._wait_status(lambda st: True, timeout, "up")

    def wait_running(self, timeout: float = 20.0) -> dict[str, Any]:
        """Wait until the phase is ``running``; returns that status."""
        return self._wait_status(lambda st: st["phase"] == "running", timeout, "running")

    def _wait_status(
        self, accept: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        def running() -> dict[str, Any] | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"lumiera up exited {self.proc.returncode}:\n{self.output()}")
            if not self.rd.socket("control").exists() or not runtime_dir.is_locked(self.rd):
                return None
            try:
                st = self.status(timeout=1.0)
            except Exception:  # noqa: BLE001 - not up yet
                return None
            return st if accept(st) else None

        result: dict[str, Any] = wait_for(
            running, timeout, f"{self.rd.instance} {what}", every=0.02
        )
        return result

    def pid_of(self, name: str) -> int:
        for s in self.status()["subsystems"]:
            if s["name"] == name and s["pid"]:
                return int(s["pid"])
        raise LookupError(f"{name} has no process")

    def wait(self, timeout: float = 20.0) -> int:
        """Wait for ``lumiera up`` to exit; returns its exit code."""
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        """Everything ``up`` printed so far."""
        try:
            return self.out_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Instance:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close_and_check(self) -> list[str]:
        """:meth:`close`, then make sure nothing of the instance is left.

        Returns what was left (processes, socket files, shm segments), having
        removed it: benchmarks report it as a problem.
        """
        problems: list[str] = []
        try:
            self.close()
        finally:
            survivors = instance_pids(self.rd.instance)
            if survivors:
                problems.append(f"{self.rd.instance}: processes left after stop: {survivors}")
                for pid in survivors:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            left = (
                leftovers(self.rd) if self.rd.path.exists() else shm.list_segments(self.rd.instance)
            )
            if left:
                problems.append(f"{self.rd.instance}: left behind: {', '.join(left)}")
            shm.sweep(self.rd.instance)
            shutil.rmtree(self.rd.path, ignore_errors=True)
        return problems

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        with contextlib.suppress(OSError):
            self.rd.path.rmdir()
        self.out_path.unlink(missing_ok=True)
        shutil.rmtree(self.log_dir, ignore_errors=True)


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


@contextlib.contextmanager
def instance(*args: str, defs: Sequence[str] = ()) -> Iterator[Instance]:
    """``with instance("--headless") as inst:`` an Instance, started."""
    with Instance(args or ("--headless",), defs=defs) as inst:
        yield inst


# -- what the benchmarks (tools/bench_*.py) share ------------------------------------------


def say(text: str) -> None:
    """Progress of a benchmark: to stderr, so stdout holds only the report."""
    print(text, file=sys.stderr, flush=True)


def raise_interrupt(signum: int, _frame: Any) -> None:
    """A signal handler: SIGTERM as KeyboardInterrupt, so ``finally`` blocks clean up."""
    raise KeyboardInterrupt(f"signal {signum}")


@dataclass
class BenchContext:
    """A benchmark's temporary directory, the environment of its instances, its problems."""

    base: Path
    env: dict[str, str]
    problems: list[str] = field(default_factory=list)

    def runtime_dir(self) -> RuntimeDir:
        return unique_runtime_dir(str(self.base))


@contextlib.contextmanager
def bench_context(prefix: str) -> Iterator[BenchContext]:
    """A short temp dir under /tmp (ipc paths must stay within 107 bytes), removed at the end.

    SIGTERM is turned into KeyboardInterrupt meanwhile, and the subsystems' log
    files go into the directory too (``XDG_STATE_HOME``).
    """
    old = signal.signal(signal.SIGTERM, raise_interrupt)
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield BenchContext(base, {"XDG_STATE_HOME": str(base / "state")})
    finally:
        zmq.Context.instance().destroy(linger=0)
        shutil.rmtree(base, ignore_errors=True)
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def bench_instance(
    ctx: BenchContext, args: Sequence[str], defs: Sequence[str] = (), timeout: float = 30.0
) -> Iterator[Instance]:
    """``lumiera up ARGS`` running; stopped and checked for leftovers in any case."""
    inst = Instance(list(args), rd=ctx.runtime_dir(), defs=defs, env=ctx.env)
    try:
        inst.start()
        inst.wait_running(timeout=timeout)
        yield inst
    finally:
        ctx.problems.extend(inst.close_and_check())


def minor_faults(pid: int) -> int:
    """Minor page faults of a process so far (all its threads), from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[7])


def problem_lines(problems: Sequence[str]) -> list[str]:
    """The end of a benchmark's report: what went wrong, if anything."""
    return ["", "PROBLEMS:", *(f"  - {p}" for p in problems)] if problems else []


def bench_main(main: Callable[[], int]) -> None:
    """Run a benchmark's ``main`` as the script; Ctrl-C or SIGTERM exit 130 after cleaning up."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("interrupted; everything started was stopped and removed")
        sys.exit(130)


def synced_tap(rd: RuntimeDir, prefixes: Sequence[str], timeout: float = 10.0) -> Tap:
    """A Tap on ``prefixes`` whose subscription is known to be in place.

    A probe event is published into the bus until the Tap receives it, so no event
    published afterwards can be missed by a subscription still on its way.
    """
    tap = Tap(rd, [*prefixes, "tapcheck."])
    pub: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(rd.endpoint("publish"))
    probe = pack({"sender": "test", "ts": time.time()})
    try:

        def seen() -> bool:
            pub.send_multipart([b"tapcheck.probe", probe])
            tap.poll(0.05)
            return bool(tap.topics("tapcheck."))

        wait_for(seen, timeout, "the tap's subscription")
    except BaseException:
        tap.close()
        raise
    finally:
        pub.close()
    return tap
