"""A ``lumiera up`` subprocess on a private runtime directory, and the CLI run to completion."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from lumiera import runtime_dir, shm
from lumiera.bus.client import ControlClient
from lumiera.runtime_dir import RuntimeDir
from lumiera.testing.leaks import instance_pids, leftovers
from lumiera.testing.wait import wait_for

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


def as_from_a_terminal() -> None:  # pragma: no cover - runs in the child before exec
    """SIGINT and SIGHUP as a terminal leaves them, however the tests were started (a
    suite under ``nohup … &`` would hand its instances both ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


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
        # A test never opens the user's browser (auto would where a display is); defs may.
        cmd += ["--def", "gui.open_browser=no"]
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
                preexec_fn=as_from_a_terminal,  # noqa: PLW1509 - signal dispositions only
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


@contextlib.contextmanager
def instance(*args: str, defs: Sequence[str] = ()) -> Iterator[Instance]:
    """``with instance("--headless") as inst:`` an Instance, started."""
    with Instance(args or ("--headless",), defs=defs) as inst:
        yield inst
