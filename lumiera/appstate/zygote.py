"""The subsystems' fork server (»zygote«): one process that has imported what the
subsystems need, and forks each new subsystem process from itself.

Why: a subsystem started with exec pays for a fresh interpreter and its own
imports (the bus, its actor, numpy and PyAV: 100-250 ms of CPU each, all at
once when an instance starts). The zygote pays them once, while the supervisor
sets up, and a fork then starts a subsystem in a few milliseconds, sharing the
imported modules' pages with its siblings (copy on write).

Safety (FINDINGS.md: never fork after a ZeroMQ context exists): the zygote is
forked by ``lumiera up`` before the supervisor makes its context, its lock or
any thread, and it never makes one itself. It checks that importing left it
with one thread, else it forks nothing (the supervisor then execs).

A subsystem is the supervisor's own child, as with exec: the zygote forks an
intermediate that forks the subsystem and exits at once; the supervisor is a
child subreaper (``PR_SET_CHILD_SUBREAPER``), so the kernel re-parents the
subsystem to it. The zygote answers only once the intermediate is reaped, so
the pid it gives is already the supervisor's child: the supervisor waits for
it (its exit status is the supervisor's to read), and the subsystem arms its
parent-death signal against the supervisor (:func:`lumiera.actors.process.
die_with_parent`) once it sees the re-parenting. Its title (``ps``,
``/proc/PID/cmdline``) is the command line exec would have given it.

Requests travel over a ``SOCK_SEQPACKET`` socket pair: a JSON object
``{"name", "path", "instance", "env"}`` with two file descriptors (the write
ends of the new process's stdout and stderr pipes); the answer is
``{"pid": N}`` or ``{"error": "..."}``. The zygote ends when the supervisor
closes its end, and dies with it (parent-death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import io
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

from lumiera.exits import stop_signals
from lumiera.parentdeath import PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG, prctl
from lumiera.subsystems import SUBSYSTEMS, Options, start_order

log = logging.getLogger("lumiera.appstate")

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt
ANSWER_WAIT_S = 10.0  # a spawn's answer (the zygote may still be importing)
REPARENT_WAIT_S = 5.0  # the new process's wait to become the supervisor's child
EXIT_SETUP_FAILED = 70  # the forked process could not become a subsystem
MAX_REQUEST = 64 * 1024


# Frame-sized buffers stay on glibc's heap, not an mmap each (engine page faults per
# frame in tools/bench_render.py: 700-2,000 with an mmap per buffer, 20-150 with this);
# numpy's OpenBLAS starts no thread pool (0.1 s of CPU spinning; no linear algebra
# here). For exec'd and forked subsystems (children._env, _malloc_settings); a user's wins.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}
THREADS_ENV = {"OPENBLAS_NUM_THREADS": "1"}

# Subsystems whose modules the zygote does not import ahead: Dask's may start threads.
NOT_PRELOADED = ("netnode",)


def preload(options: Options) -> list[str]:
    """The modules the zygote imports ahead: the process entry, then each subsystem's that
    this command line starts (not one left to ``lumiera run``)."""
    names = [n for n in start_order(options) if n != options.debug and n not in NOT_PRELOADED]
    return ["lumiera.actors.__main__", *(SUBSYSTEMS[n].module for n in names)]


class ZygoteError(Exception):
    """The zygote cannot start a subsystem (the supervisor execs it instead)."""


def become_subreaper() -> None:
    """Have orphaned descendants re-parented to this process (Linux). Raises OSError."""
    if not prctl(PR_SET_CHILD_SUBREAPER, 1):
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


class ForkedChild:
    """A subsystem process the zygote forked: the part of ``subprocess.Popen`` the
    supervisor uses (its pid, output pipes, poll and wait)."""

    def __init__(self, pid: int, stdout_fd: int, stderr_fd: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdout: io.FileIO | None = io.FileIO(stdout_fd, "r")
        self.stderr: io.FileIO | None = io.FileIO(stderr_fd, "r")

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # not ours to wait for (should not happen): gone
                self.returncode = -signal.SIGKILL
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            time.sleep(0.002)
        return code


class Zygote:
    """The supervisor's end of the zygote: :meth:`spawn` a subsystem, :meth:`close`."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock
        self.broken: str | None = None  # why it can no longer spawn
        self.reaped = False  # by close(): from then on its pid may be another process's

    @classmethod
    def start(cls, modules: Sequence[str]) -> Zygote:
        """Fork the zygote, which imports ``modules``; makes this process a subreaper.

        Call before this process has a ZeroMQ context or a thread. Raises OSError.
        """
        become_subreaper()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            prctl(PR_SET_CHILD_SUBREAPER, 0)
            raise
        if pid == 0:  # pragma: no cover - the zygote (its own process, measured by e2e tests)
            ours.close()
            code = 0
            try:
                _serve(theirs, modules, parent)
            except BaseException:  # noqa: BLE001 - whatever happened, never return into `up`
                traceback.print_exc()
                code = EXIT_SETUP_FAILED
            os._exit(code)
        theirs.close()
        return cls(pid, ours)

    def spawn(self, name: str, path: str, instance: str, env: Mapping[str, str]) -> ForkedChild:
        """Fork subsystem ``name``; its stdout and stderr on new pipes. Raises ZygoteError."""
        if self.broken is not None:
            raise ZygoteError(self.broken)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            request = {"name": name, "path": path, "instance": instance, "env": dict(env)}
            try:
                socket.send_fds(self.sock, [json.dumps(request).encode()], [out_w, err_w])
                answer = self._answer()
            except (OSError, ValueError) as e:
                self.broken = f"the zygote (pid {self.pid}) does not answer: {e}"
                self.close()  # never a late fork of a request given up on
                raise ZygoteError(self.broken) from None
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        if "pid" not in answer:
            os.close(out_r)
            os.close(err_r)
            self.broken = str(answer.get("error", "no pid in its answer"))
            raise ZygoteError(self.broken)
        return ForkedChild(int(str(answer["pid"])), out_r, err_r)

    def _answer(self) -> dict[str, object]:
        ready = select.select([self.sock], [], [], ANSWER_WAIT_S)[0]
        if not ready:
            raise OSError(f"no answer within {ANSWER_WAIT_S:g} s")
        data = self.sock.recv(MAX_REQUEST)
        if not data:
            raise OSError("it closed the connection")
        answer = json.loads(data)
        if not isinstance(answer, dict):
            raise ValueError("not a JSON object")
        return answer

    def close(self) -> None:
        """End the zygote (SIGKILL) and reap it; a second call does nothing.

        It holds nothing to save and forks only while a :meth:`spawn` waits for its
        answer (a kill never cuts a fork in two), nor need it finish its imports.
        """
        if self.reaped:
            return
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self.reaped = True


# -- a zygote started before its supervisor ---------------------------------------------

_prestarted: Zygote | None = None


def prestart(options: Options) -> None:
    """Fork a zygote for ``options`` first thing in a command (``lumiera render``), before
    the command imports its own modules: the subsystems' imports (numpy, PyAV, the bus:
    about 0.2 s) overlap the command's start instead of following it. The command takes
    it (:func:`take_prestarted`) or discards it (:func:`discard_prestarted`)."""
    global _prestarted
    with contextlib.suppress(OSError):  # then the command starts one itself, or execs
        _prestarted = Zygote.start(preload(options))


def take_prestarted() -> Zygote | None:
    global _prestarted
    zygote, _prestarted = _prestarted, None
    return zygote


def discard_prestarted() -> None:
    zygote = take_prestarted()
    if zygote is not None:
        zygote.close()
        prctl(PR_SET_CHILD_SUBREAPER, 0)  # this process supervises nothing after all


# -- the zygote's side ----------------------------------------------------------------


def _title(text: str) -> None:
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - a dependency; ps shows `lumiera up` then
        return
    setproctitle.setproctitle(text)


def _serve(sock: socket.socket, modules: Sequence[str], supervisor: int) -> None:
    """The zygote's life: import ``modules``, then fork a subsystem per request."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != supervisor:
        return  # it died before the signal was armed
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the supervisor's
    for sig in stop_signals(signal.SIGTERM, signal.SIGHUP):  # not a command line's handlers:
        signal.signal(sig, signal.SIG_DFL)  # it just ends (a SIGHUP nohup ignores stays so)
    gc.disable()  # while it imports (below)
    _title(f"lumiera zygote (supervisor {supervisor})")
    _malloc_settings()
    for key, value in THREADS_ENV.items():  # before numpy's import
        os.environ.setdefault(key, value)
    problem = None
    # The imports make some 300,000 objects and hardly any garbage: the cyclic collector,
    # run every 700 allocations, only slows them (by about 10%). Frozen, they are never
    # scanned again, here or in a child (forked with the collector on), whose collections
    # would write into every inherited object's header and copy its page (gc's advice).
    try:
        for module in modules:
            importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - said in every answer; the supervisor execs
        problem = f"the zygote could not import: {type(e).__name__}: {e}"
    gc.freeze()
    gc.enable()  # for what it makes from here on; the frozen objects are never scanned
    threads = _threads()  # native ones too (a library's pool), which threading cannot see
    if problem is None and threads != 1:
        problem = f"importing left {threads} threads: forking is not safe"
    while True:
        data, fds, _flags, _addr = socket.recv_fds(sock, MAX_REQUEST, 2)
        if not data:
            return  # the supervisor closed its end
        if problem is not None or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            sock.send(json.dumps({"error": problem or "expected 2 descriptors"}).encode())
            continue
        try:
            answer = _fork_one(sock, json.loads(data), fds, supervisor)
        except Exception as e:  # noqa: BLE001 - an answer, never the zygote's end
            answer = {"error": f"{type(e).__name__}: {e}"}
        finally:
            for fd in fds:
                os.close(fd)
        sock.send(json.dumps(answer).encode())


def _fork_one(
    sock: socket.socket, request: dict[str, object], fds: list[int], supervisor: int
) -> dict[str, object]:
    """Fork an intermediate that forks the subsystem; reap it; the subsystem's pid."""
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    try:
        middle = os.fork()
        if middle == 0:  # pragma: no cover - the intermediate: fork, say the pid, exit
            code = 0
            try:
                os.close(pid_r)
                _title(_exec_title(request))  # the subsystem has its title from its birth
                pid = os.fork()
                if pid == 0:
                    os.close(pid_w)
                    _become(sock, request, fds, supervisor)  # never returns
                os.write(pid_w, str(pid).encode())
            except BaseException:  # noqa: BLE001
                code = EXIT_SETUP_FAILED
            os._exit(code)
        os.close(pid_w)
        pid_w = -1
        said = b""
        while chunk := os.read(pid_r, 32):
            said += chunk
        _, status = os.waitpid(middle, 0)  # now the subsystem is the supervisor's child
    finally:
        os.close(pid_r)
        if pid_w != -1:
            os.close(pid_w)
    if not said or os.waitstatus_to_exitcode(status) != 0:
        return {"error": f"the fork failed (intermediate: {os.waitstatus_to_exitcode(status)})"}
    return {"pid": int(said)}


def _threads() -> int:
    """This process's threads, as the kernel counts them (``/proc/self/task``)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _exec_title(request: dict[str, object]) -> str:
    """The command line exec would have given subsystem ``request["name"]``."""
    words = (request.get("name"), request.get("path"), request.get("instance"))
    return f"{sys.executable} -m lumiera.actors {' '.join(str(w) for w in words)}"


def _malloc_settings() -> None:
    """What ``MALLOC_*_`` in the environment gives an exec'd subsystem (MALLOC_ENV),
    set with mallopt: a forked process's allocator was set up long ago. Unless the user set
    them (then they apply already, read at this process's start)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for key, option in (
        ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD),
        ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD),
    ):
        if key not in os.environ:
            with contextlib.suppress(AttributeError):
                libc.mallopt(option, int(MALLOC_ENV[key]))


def _become(
    sock: socket.socket, request: dict[str, object], fds: list[int], supervisor: int
) -> None:  # pragma: no cover - runs in the new subsystem process
    """Turn this fresh fork into subsystem ``name``, as ``python -m lumiera.actors`` would."""
    code = EXIT_SETUP_FAILED
    try:
        name, path, instance = str(request["name"]), str(request["path"]), str(request["instance"])
        env = request.get("env")
        sock.close()
        os.setpgid(0, 0)  # its own process group, as exec'd ones (process_group=0)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in (devnull, *fds):
            os.close(fd)
        for number in (1, 2):  # unbuffered, as PYTHONUNBUFFERED gives an exec'd one
            stream = io.TextIOWrapper(
                io.FileIO(number, "w", closefd=False),
                encoding="utf-8",
                errors="backslashreplace",
                line_buffering=True,
                write_through=True,
            )
            if number == 1:
                sys.stdout = stream
            else:
                sys.stderr = stream
        if isinstance(env, dict):
            os.environ.update({str(k): str(v) for k, v in env.items()})
        for sig in stop_signals():  # as exec leaves them: default, an ignored SIGHUP ignored
            signal.signal(sig, signal.SIG_DFL)
        logging.root.handlers.clear()
        import lumiera.actors.__main__ as entry

        sys.argv = [str(Path(entry.__file__ or "")), name, path, instance]
        deadline = time.monotonic() + REPARENT_WAIT_S
        while os.getppid() != supervisor:  # the intermediate is on its way out
            if time.monotonic() > deadline:
                os._exit(EXIT_SETUP_FAILED)
            time.sleep(0.0005)
        code = entry.run(name, path, instance)
    except BaseException:  # noqa: BLE001 - said on its stderr, which the supervisor shows
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
