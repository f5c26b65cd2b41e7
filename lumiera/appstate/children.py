"""Subsystem processes as the supervisor sees them: spawn, watch, read, kill.

A spawned child runs ``python -m lumiera.actors NAME DIR INSTANCE`` in its own
process group (the terminal's Ctrl-C reaches only the supervisor, which stops
everything in order), with stdout and stderr on pipes that the supervisor
polls beside its sockets. Its exit is seen through a pidfd in the same poll,
so detection is event-driven (about a millisecond), with no periodic polling.
Signals go through the pidfd too, so a recycled pid is never hit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from lumiera.appstate.actions import ExitStatus
from lumiera.appstate.output import Output
from lumiera.appstate.zygote import MALLOC_ENV, THREADS_ENV, ForkedChild, Zygote, ZygoteError
from lumiera.runtime_dir import ENV_SUPERVISOR_PID, RuntimeDir, remove_service_socket

log = logging.getLogger("lumiera.appstate")
MAX_LINE = 16 * 1024  # longer output lines are cut (a process printing binary junk)
KILL_WAIT_S = 2.0  # at the supervisor's end: how long a SIGKILLed child may take to go


@dataclass
class Proc:
    """A subsystem process the supervisor watches (spawned, or attached by ``lumiera run``)."""

    name: str
    pid: int
    pidfd: int
    popen: subprocess.Popen[bytes] | ForkedChild | None = None  # None: attached by `run`
    partial: dict[int, bytearray] = field(default_factory=dict)  # pipe fd -> unfinished line

    @property
    def pipes(self) -> dict[int, str]:
        """Open output pipe fds -> stream name."""
        if self.popen is None:
            return {}
        out = {}
        for stream, name in ((self.popen.stdout, "stdout"), (self.popen.stderr, "stderr")):
            if stream is not None and not stream.closed:
                out[stream.fileno()] = name
        return out

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, OSError):
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def reap(self) -> ExitStatus:
        """The exit status, once the pidfd said the process is gone (never blocks long)."""
        if self.popen is None:
            return ExitStatus(code=None)  # not our child: its status is not ours to read
        try:
            rc = self.popen.wait(timeout=1.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - pidfd said it exited
            return ExitStatus(code=None)
        return ExitStatus.from_returncode(rc)

    def read(self, fd: int) -> list[str] | None:
        """Complete lines available on pipe ``fd``; None at end of file (then closed)."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        buf = self.partial.setdefault(fd, bytearray())
        if not data:
            lines = [buf.decode(errors="replace")] if buf else []
            self._close_pipe(fd)
            return lines or None
        buf += data
        *complete, rest = bytes(buf).split(b"\n")
        if len(rest) > MAX_LINE:
            complete.append(rest[:MAX_LINE] + b" [cut]")
            rest = b""
        self.partial[fd] = bytearray(rest)
        return [_cut(line).decode(errors="replace") for line in complete]

    def _close_pipe(self, fd: int) -> None:
        assert self.popen is not None
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None and not stream.closed and stream.fileno() == fd:
                stream.close()
        self.partial.pop(fd, None)

    def close(self) -> None:
        """Release the pidfd and pipes (after the exit was seen)."""
        with contextlib.suppress(OSError):
            os.close(self.pidfd)
        if self.popen is not None:
            for stream in (self.popen.stdout, self.popen.stderr):
                if stream is not None:
                    stream.close()


def _cut(line: bytes) -> bytes:
    return line if len(line) <= MAX_LINE else line[:MAX_LINE] + b" [cut]"


def _env(base: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    env[ENV_SUPERVISOR_PID] = str(os.getpid())
    env["PYTHONUNBUFFERED"] = "1"  # output reaches the terminal line by line
    for key, value in (*MALLOC_ENV.items(), *THREADS_ENV.items()):
        env.setdefault(key, value)
    return env


def spawn_forked(name: str, rd: RuntimeDir, zygote: Zygote) -> Proc:
    """Start subsystem ``name``'s process by the zygote. Raises ZygoteError, OSError.

    It gets what an exec'd one would get beyond this process's environment, which the
    zygote has: never over a value the user set.
    """
    env = {k: v for k, v in _env(dict(os.environ)).items() if os.environ.get(k) != v}
    return _proc(name, zygote.spawn(name, str(rd.path), rd.instance, env))


def spawn(name: str, rd: RuntimeDir) -> Proc:
    """Start subsystem ``name``'s process (exec). Raises OSError if it cannot be started."""
    env = _env(dict(os.environ))
    popen = subprocess.Popen(
        [sys.executable, "-m", "lumiera.actors", name, str(rd.path), rd.instance],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        process_group=0,
        close_fds=True,
    )
    return _proc(name, popen)


def _proc(name: str, child: subprocess.Popen[bytes] | ForkedChild) -> Proc:
    """A started process watched: its pidfd, its output pipes non-blocking."""
    try:
        pidfd = os.pidfd_open(child.pid)
    except OSError:
        child.kill()
        child.wait()
        raise
    for stream in (child.stdout, child.stderr):
        assert stream is not None
        os.set_blocking(stream.fileno(), False)
    return Proc(name, child.pid, pidfd, child)


def attach(name: str, pid: int) -> Proc:
    """Watch a process started by ``lumiera run``. Raises ProcessLookupError if it is gone."""
    return Proc(name, pid, os.pidfd_open(pid))


def proc_usage(pid: int) -> dict[str, float | int | None]:
    """CPU seconds and resident memory of ``pid`` from /proc (None where unreadable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu_s = (int(fields[11]) + int(fields[12])) / ticks
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return {"cpu_s": None, "rss_bytes": None}
    return {"cpu_s": round(cpu_s, 2), "rss_bytes": rss}


class Children:
    """The subsystem processes of one supervisor, each watched in its poll loop.

    Runs in the supervisor's thread. Every process is registered in ``poller``
    (its pidfd, and its output pipes when it is our child); what it prints goes
    to ``output`` line by line, the last lines before its exit is reported.
    """

    def __init__(
        self, rd: RuntimeDir, poller: zmq.Poller, output: Output, zygote: Zygote | None = None
    ) -> None:
        self.rd = rd
        self.poller = poller
        self.output = output
        self.zygote = zygote  # forks subsystems; None, or broken: exec
        self.procs: dict[str, Proc] = {}

    def get(self, name: str) -> Proc | None:
        return self.procs.get(name)

    def spawn(self, name: str) -> Proc:
        """Start ``name``'s process and watch it. Raises OSError if it cannot be started.

        Forked by the zygote where there is one, else (or if it fails) exec'd.
        """
        if self.zygote is not None and self.zygote.broken is None:
            try:
                return self._watch(spawn_forked(name, self.rd, self.zygote))
            except (ZygoteError, OSError) as e:
                log.warning("%s: started with exec instead (%s)", name, e)
        return self._watch(spawn(name, self.rd))

    def attach(self, name: str, pid: int) -> Proc:
        """Watch ``pid``, started by ``lumiera run``. Raises OSError if it cannot be watched."""
        return self._watch(attach(name, pid))

    def _watch(self, proc: Proc) -> Proc:
        self.procs[proc.name] = proc
        self.poller.register(proc.pidfd, zmq.POLLIN)
        for fd in proc.pipes:
            self.poller.register(fd, zmq.POLLIN)
        return proc

    def alive(self, name: str) -> bool:
        """Whether ``name``'s process exists (one attached by ``lumiera run``: until seen gone)."""
        proc = self.procs.get(name)
        if proc is None:
            return False
        return proc.popen is None or proc.popen.poll() is None

    def kill(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None:
            log.warning("killing %s (pid %d)", name, proc.pid)
            proc.kill()

    def on_fd(self, fd: int) -> Proc | None:
        """Show a process's output that ``fd`` has; the process, when ``fd`` says it exited."""
        for proc in list(self.procs.values()):
            if fd == proc.pidfd:
                return proc
            stream = proc.pipes.get(fd)
            if stream is not None:
                lines = proc.read(fd)
                if lines is None:
                    self.poller.unregister(fd)
                for line in lines or ():
                    self.output.line(proc.name, stream, line)
                return None
        return None

    def reap(self, proc: Proc) -> ExitStatus:
        """``proc`` exited: show what it printed last, forget it, return how it ended."""
        status = proc.reap()
        # Its service socket goes with it (a crashed or killed one could not remove it),
        # so a direct client finds no file and is routed, or sees it vanish (unreachable).
        if remove_service_socket(self.rd, proc.name):
            log.info("removed the service socket %s left", proc.name)
        for fd in list(proc.pipes):  # what it printed last is shown before its end
            while (lines := proc.read(fd)) is not None:
                for line in lines:
                    self.output.line(proc.name, proc.pipes.get(fd, "stderr"), line)
                if not lines:
                    break
            with contextlib.suppress(KeyError):
                self.poller.unregister(fd)
        self.poller.unregister(proc.pidfd)
        proc.close()
        del self.procs[proc.name]
        self.reap_strays()
        if proc.popen is None:
            log.info("%s (pid %d, attached by lumiera run) detached", proc.name, proc.pid)
        else:
            level = logging.INFO if status.ok else logging.ERROR
            log.log(level, "%s ended: %s", proc.name, status.describe())
        return status

    def kill_all(self) -> None:
        """SIGKILL every child and wait for it, bounded: nothing may outlive the supervisor."""
        for proc in list(self.procs.values()):
            if proc.popen is not None:
                proc.kill()
                try:
                    proc.popen.wait(timeout=KILL_WAIT_S)
                except subprocess.TimeoutExpired:
                    log.error(
                        "%s (pid %d) not gone %g s after SIGKILL", proc.name, proc.pid, KILL_WAIT_S
                    )
            proc.close()
        self.procs.clear()
        self.reap_strays()

    def reap_strays(self) -> None:
        """Reap descendants re-parented to us (a subreaper for the zygote's children) that
        are not ours to watch: the orphans of a subsystem that died. Never a watched one,
        nor the zygote (their statuses are read where they are handled)."""
        known = {p.pid for p in self.procs.values()}
        if self.zygote is not None:
            known.add(self.zygote.pid)
        while True:
            try:
                found = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if found is None:
                return
            if found.si_pid in known:
                if self.zygote is None or found.si_pid != self.zygote.pid:
                    return  # a watched one: its status is read where it is handled
                # The zygote died (killed): reaped here, so it never hides a stray from
                # waitid again; spawns then exec (it says why: broken).
                self.zygote.close()
                self.zygote.broken = f"the zygote (pid {found.si_pid}) ended"
                known.discard(found.si_pid)
                continue
            with contextlib.suppress(ChildProcessError):
                os.waitpid(found.si_pid, 0)
            log.info("reaped an orphaned descendant (pid %d)", found.si_pid)
