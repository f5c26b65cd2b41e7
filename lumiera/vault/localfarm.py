"""A render farm on one machine: a Dask scheduler and N render nodes, each a lumiera instance.

``lumiera render --jobs N`` makes one for the length of a render, ``lumiera farm
up --workers N`` for as long as it is left up (:mod:`lumiera.cli.farm`). The
scheduler runs in this process (``distributed.LocalCluster`` without workers
of its own, its loop in a thread); each node is a child process ``lumiera up
--headless --port 0 --join ADDRESS`` with a runtime directory of its own under
the farm's directory, and its output in a log file beside it. A node is a
whole supervised instance (session, player, engine, netnode): a crash in it
is that node's emergency, the scheduler sees a lost worker and gives its task
to another node.

The nodes get a parent-death signal (SIGTERM): a farm whose process is
killed does not leave nodes behind; they stop in order. :meth:`LocalFarm.stop`
stops every node in order (SIGTERM to its supervisor, SIGKILL after the
grace period), then the scheduler.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lumiera.errors import Unavailable
from lumiera.parentdeath import signal_on_parent_death
from lumiera.vault.cores import usable_cores

log = logging.getLogger("lumiera.farm")

STOP_GRACE_S = 30.0  # a node's orderly stop, then SIGKILL
LOG_TAIL_LINES = 20


@dataclass
class Node:
    """One render node of the farm: a lumiera instance, the farm's child process."""

    index: int
    instance: str
    runtime_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)  # monotonic times it was started

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "runtime_dir": str(self.runtime_dir),
            "pid": self.pid,
            "running": self.running(),
            "starts": len(self.starts),
        }


class LocalFarm:
    """A scheduler and ``workers`` render nodes on this machine (see the module docstring).

    ``directory`` holds the nodes' runtime directories and logs (created
    private; the caller removes it). ``node_args`` are added to every node's
    ``lumiera up`` (``--config FILE``, ``--def KEY=VALUE``). ``security``: a
    ``distributed.Security`` for a TLS scheduler (the nodes must be given the
    same ``[farm] tls_*`` keys through ``node_args``).
    """

    def __init__(
        self,
        workers: int,
        directory: Path,
        *,
        name: str = "farm",
        host: str = "127.0.0.1",
        port: int = 0,
        security: Any = None,
        node_args: Sequence[str] = (),
    ) -> None:
        if workers < 0:
            raise ValueError("workers cannot be negative")
        self.name = name
        self.directory = directory
        self.host, self.port, self.security = host, port, security
        # The usable cores shared among the nodes (each engine would take them
        # all: N nodes would oversubscribe them N times); node_args come after: a
        # user's --def engine.workers=K wins.
        share = max(1, usable_cores() // max(1, workers))
        self.node_args = ["--def", f"engine.workers={share}", *node_args]
        self.nodes = [
            Node(k, f"{name}-node{k}", directory / f"node{k}", directory / f"node{k}.log")
            for k in range(1, workers + 1)
        ]
        self.cluster: Any = None
        self.address = ""

    # -- start --------------------------------------------------------------------------

    def start(self, timeout: float) -> str:
        """Start the scheduler and every node; return once all joined (Unavailable if not)."""
        from distributed import LocalCluster

        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        logging.getLogger("distributed").setLevel(logging.WARNING)  # no start banners
        try:
            self.cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=0,
                processes=False,
                protocol="tls" if self.security is not None else "tcp",
                host=self.host,
                scheduler_port=self.port,
                # Dask's HTTP server (health, metrics; the dashboard where bokeh is
                # installed) on loopback only, on a free port: not 8787 for all farms.
                dashboard_address="127.0.0.1:0",
                security=self.security,
            )
        except (OSError, RuntimeError) as e:  # the port is taken, or the host is not ours
            raise Unavailable(
                f"cannot start a scheduler on {self.host}:{self.port}: {_cause(e)}"
            ) from None
        self.address = str(self.cluster.scheduler_address)
        for node in self.nodes:
            self.spawn(node)
        self.wait_joined(len(self.nodes), timeout)
        return self.address

    def spawn(self, node: Node) -> None:
        """Start (or start again) one node's instance, its output into its log file."""
        cmd = [sys.executable, "-m", "lumiera", "up", "--headless", "--port", "0"]
        cmd += ["--join", self.address, "--instance", node.instance]
        cmd += ["--runtime-dir", str(node.runtime_dir), "--def", f"netnode.name={node.instance}"]
        cmd += self.node_args
        with open(node.log_path, "ab") as out:
            node.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=signal_on_parent_death(signal.SIGTERM),  # noqa: PLW1509 - only prctl, before exec
            )
        node.starts.append(time.monotonic())

    def joined(self) -> int:
        """How many workers the scheduler has now."""
        if self.cluster is None:
            return 0
        return len(self.cluster.scheduler.workers)

    def wait_joined(self, count: int, timeout: float) -> None:
        """Until ``count`` workers joined; Unavailable naming a node that ended or the wait."""
        deadline = time.monotonic() + timeout
        while self.joined() < count:
            for node in self.nodes:
                if node.proc is not None and node.proc.poll() is not None:
                    raise Unavailable(
                        f"render node {node.instance} ended (exit {node.proc.returncode}) "
                        f"before joining:\n{node.log_tail()}"
                    )
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"{self.joined()} of {count} render nodes joined the scheduler at "
                    f"{self.address} within {timeout:g} s"
                )
            time.sleep(0.05)

    # -- run ----------------------------------------------------------------------------

    def ended(self) -> list[Node]:
        """The nodes whose instance has ended (by a crash, or stopped from outside)."""
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is not None]

    def restart_ended(self, max_starts: int, window_s: float) -> list[Node]:
        """Start again each ended node started fewer than ``max_starts`` times in ``window_s``.

        Returns the nodes left down (they failed too often: their log says why).
        """
        now, down = time.monotonic(), []
        for node in self.ended():
            recent = [t for t in node.starts if now - t < window_s]
            if len(recent) >= max_starts:
                down.append(node)
                continue
            assert node.proc is not None
            log.warning(
                "render node %s ended (exit %s); starting it again",
                node.instance,
                node.proc.returncode,
            )
            self.spawn(node)
        return down

    # -- stop ---------------------------------------------------------------------------

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Stop every node in order (SIGKILL after ``grace``), then the scheduler. Idempotent."""
        running = [n for n in self.nodes if n.running()]
        for node in running:
            assert node.proc is not None
            with contextlib.suppress(ProcessLookupError):
                node.proc.send_signal(signal.SIGTERM)  # the supervisor stops in order
        deadline = time.monotonic() + grace
        for node in running:
            assert node.proc is not None
            try:
                node.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("render node %s did not stop in %g s: killed", node.instance, grace)
                node.proc.kill()  # its subsystems die with it (their parent-death signal)
                node.proc.wait()
        if self.cluster is not None:
            cluster, self.cluster = self.cluster, None
            with contextlib.suppress(Exception):  # its loop may be gone with a failed start
                cluster.close(timeout=10)

    def __enter__(self) -> LocalFarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cause(exc: BaseException) -> str:
    """The innermost reason of an exception chain (Dask wraps a scheduler's start failure)."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def node_args(config_file: str | None, defs: Sequence[str]) -> list[str]:
    """The ``--config``/``--def`` options a farm gives each of its nodes."""
    args = [] if config_file is None else ["--config", str(Path(config_file).absolute())]
    for d in defs:
        args += ["--def", d]
    return args


def write_atomically(path: Path, text: str) -> None:
    """``text`` into ``path`` by rename: a reader sees the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
