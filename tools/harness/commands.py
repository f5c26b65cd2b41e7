"""Commands run to their end as a user runs them, timed; or measured too: the CPU and the
memory of their whole process tree. And the ffmpeg command line the renders compare with."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import Proc, TreeSampler, command_name

STOP_GRACE_S = 30.0  # a command interrupted: SIGTERM, then SIGKILL after this
ABSENT_FFMPEG = "ffmpeg: not installed (apt-get install ffmpeg to compare)"
MIB = 1 << 20
# lumiera render's last line: "rendered 250 frames to OUT in 12.34 s (...)", its own clock
RENDERED = re.compile(r"^rendered (\d+) frames to .* in ([0-9.]+) s", re.MULTILINE)


@dataclass
class Done:
    """A command that ran to its end: its exit status, output and wall time."""

    argv: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float

    def tail(self, lines: int = 15) -> str:
        return "\n".join((self.stdout + self.stderr).splitlines()[-lines:])


def run_command(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> Done:
    """Run ``argv`` to its end, timed (wall clock, start to exit).

    Interrupted (Ctrl-C, SIGTERM) or past ``timeout``, it gets SIGTERM (it ends in
    order: a render removes its partial file, a farm render its parts), and
    SIGKILL after a grace period.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise TimeoutError(f"{' '.join(argv[:4])} ...: not done within {timeout:g} s") from None
    except BaseException:
        stop(proc)
        raise
    return Done(list(argv), proc.returncode, out, err, time.perf_counter() - t0)


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, and SIGKILL if it has not ended within :data:`STOP_GRACE_S`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@dataclass
class Measured:
    """A command run to its end with its process tree measured.

    CPU: ``user_s`` and ``system_s`` are the kernel's (wait4 rusage) for the
    command and every descendant that was waited for, so the whole tree.
    Memory, sampled from /proc while it ran (:class:`TreeSampler`): ``peak_pss``
    the most the tree held at one sample (the sum of PSS: shared pages split
    among their sharers, so the tree's memory), ``peak_rss`` the sum of RSS (a
    shared page once per process), ``largest`` the process with the highest
    VmHWM (the kernel's own peak of it). rusage's maxrss is not used: a child
    starts its count from the RSS of the process that forked it.
    """

    done: Done
    user_s: float
    system_s: float
    peak_pss: int
    peak_rss: int
    samples: int
    sampler_cpu_s: float
    procs: dict[str, Proc] = field(default_factory=dict)  # by name, most CPU first

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.system_s

    @property
    def largest(self) -> Proc | None:
        return max(self.procs.values(), key=lambda p: p.hwm, default=None)

    @property
    def peak_mib(self) -> float:
        return self.peak_pss / MIB

    @property
    def largest_mib(self) -> float:
        largest = self.largest
        return largest.hwm / MIB if largest else float("nan")

    def breakdown(self, most: int = 8) -> str:
        """Per process name: CPU s (of its own threads, as last sampled) and peak RSS MiB."""
        return ", ".join(
            f"{p.name} {p.cpu_s:.1f} s {p.hwm / MIB:.0f} MiB"
            for p in list(self.procs.values())[:most]
        )


def measure_command(
    argv: Sequence[str],
    env: Mapping[str, str],
    timeout: float,
    *,
    every: float = 0.05,
    name: Callable[[Sequence[str]], str] = command_name,
) -> Measured:
    """Run ``argv`` to its end as :func:`run_command` does, its tree sampled every ``every``
    s; reaped with wait4 for its rusage. Its output goes through temporary files."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env={**os.environ, **env}
        )
        sampler = TreeSampler(proc.pid, every, name).start()
        try:
            fd = os.pidfd_open(proc.pid)
            try:
                ended = select.select([fd], [], [], timeout)[0]
                seconds = time.perf_counter() - t0
            finally:
                os.close(fd)
            if not ended:
                raise TimeoutError(f"{' '.join(argv[:4])} ...: not done within {timeout:g} s")
            sampler.stop()  # before the reaping: its pid is not taken again meanwhile
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        except BaseException:
            sampler.stop()
            stop(proc)
            raise
        out.seek(0)
        err.seek(0)
        done = Done(list(argv), proc.returncode, out.read(), err.read(), seconds)
    return Measured(
        done,
        usage.ru_utime,
        usage.ru_stime,
        sampler.peak_pss,
        sampler.peak_rss,
        sampler.samples,
        sampler.cpu_s,
        sampler.by_name(),
    )


def which_ffmpeg(name: str | None = None) -> str | None:
    """The ffmpeg to compare with (``name``, default ``ffmpeg`` on PATH), or None."""
    return shutil.which(name or "ffmpeg")


def ffmpeg_blend(
    ffmpeg: str, a: Path, b: Path, out: Path, *, opacity: float, preset: str
) -> list[str]:
    """The ffmpeg command line of a 2-track render: B at ``opacity`` over A, libx264, yuv420p:
    ``ffmpeg -i A -i B -filter_complex "[0:v][1:v]blend=all_opacity=O" -c:v libx264
    -preset P -pix_fmt yuv420p OUT`` (quiet, overwriting, not reading stdin)."""
    argv = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    argv += ["-i", str(a), "-i", str(b), "-filter_complex", blend_filter(opacity)]
    return [*argv, "-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p", str(out)]


def blend_filter(opacity: float) -> str:
    return f"[0:v][1:v]blend=all_opacity={opacity:g}"
