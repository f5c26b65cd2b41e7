"""Rings for tests: each on a fresh instance, with everything it opened cleaned up after.

A :class:`RingKit` creates rings with :func:`lumiera.shm.ring.create`, opens
producers and consumers on them and starts helper processes
(``python -c CODE ...``, never multiprocessing: a child must not share the
test's resource tracker). :meth:`RingKit.close` kills and waits for the
processes, closes every producer and consumer, unlinks and closes every
segment and removes wake-up socket files a killed producer left, so the
suite's leak check passes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lumiera import testing
from lumiera.shm import ring
from lumiera.shm.layout import C_READ, PixelFormat, Policy
from lumiera.shm.segment import Segment

WAIT_S = 10.0  # the longest any single wait in these tests may take

# Imported by every helper process; argv: rd path, instance, ring name, then the code's own.
PRELUDE = """
import json, os, sys, time
from pathlib import Path
import numpy as np
from lumiera.runtime_dir import RuntimeDir
from lumiera.shm import ring
from lumiera.shm.layout import C_READ, PixelFormat, Policy
rd = RuntimeDir(Path(sys.argv[1]), sys.argv[2], False)
name = sys.argv[3]
args = sys.argv[4:]
def say(*words):
    print(*words, flush=True)
"""


def fill_value(tag: int) -> int:
    """What every byte of a frame tagged ``tag`` holds (a torn frame would mix two)."""
    return tag % 251


def put(producer: ring.Producer, width: int = 16, height: int = 8, tag: int | None = None) -> int:
    """Claim, fill and publish one gray frame; its seq (0 when the drop policy dropped it).

    Every byte is ``fill_value(tag)`` and pts is ``tag``; ``tag`` defaults to the seq.
    """
    frame = producer.claim(width, height, PixelFormat.GRAY)
    if frame is None:
        return 0
    value = frame.seq if tag is None else tag
    frame.array[...] = fill_value(value)
    frame.pts = value
    producer.publish(frame)
    seq = frame.seq
    frame.planes = ()  # the producer's views of the slot must not outlive the frame
    return seq


def take(consumer: ring.Consumer, timeout: float = WAIT_S) -> tuple[int, int, bool]:
    """Acquire, check and release one frame: (seq, pts, whether every byte is fill_value(pts))."""
    frame = consumer.acquire(timeout)
    try:
        intact = bool((frame.array == fill_value(frame.pts)).all())
        return frame.seq, frame.pts, intact
    finally:
        consumer.release(frame)


def frames_read(consumer: ring.Consumer) -> int:
    """The consumer's "frames read" counter in its table entry."""
    return consumer.u64(consumer.off + C_READ)


def digest(planes: tuple[np.ndarray[Any, Any], ...]) -> str:
    h = hashlib.sha256()
    for p in planes:
        h.update(repr(p.shape).encode())
        h.update(np.ascontiguousarray(p).tobytes())
    return h.hexdigest()


class Child:
    """A helper process; its stdout is read line by line, every wait bounded."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.pid = self.proc.pid
        self._pending = b""
        self._done = False

    def expect(self, prefix: str, timeout: float = WAIT_S) -> list[str]:
        """The words of the next line starting with ``prefix`` (earlier lines are skipped)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._pending:
                line, self._pending = self._pending.split(b"\n", 1)
                if line.decode().startswith(prefix):
                    return line.decode().split()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"child {self.pid} printed no {prefix!r} within {timeout} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    rc, _, err = self.finish()
                    raise AssertionError(
                        f"child {self.pid} exited {rc} before printing {prefix!r}:\n{err}"
                    )
                self._pending += chunk

    def finish(self, timeout: float = WAIT_S) -> tuple[int, str, str]:
        """Wait for the child to exit by itself: (exit status, rest of stdout, stderr)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._done = True
        rest = (self._pending + out).decode(errors="replace")
        self._pending = b""
        return self.proc.returncode, rest, err.decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL (unless it ended already) and reap."""
        if self._done:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=WAIT_S)
        self._done = True


class RingKit:
    """Rings of one fresh instance, and everything the test opened on them."""

    def __init__(self) -> None:
        self.rd = testing.unique_runtime_dir()
        self.segments: list[Segment] = []
        self.names: list[str] = []
        self.ends: list[ring.Producer | ring.Consumer] = []
        self.children: list[Child] = []

    def create(
        self,
        name: str = "r",
        *,
        slots: int = 4,
        payload_bytes: int = 4096,
        policy: Policy = Policy.BLOCK,
        max_consumers: int = ring.MAX_CONSUMERS,
    ) -> Segment:
        seg = ring.create(
            self.rd.instance,
            name,
            slots=slots,
            payload_bytes=payload_bytes,
            policy=policy,
            max_consumers=max_consumers,
        )
        self.segments.append(seg)
        self.names.append(name)
        return seg

    def producer(self, name: str = "r", timeout: float = WAIT_S) -> ring.Producer:
        p = ring.Producer(self.rd, name, timeout=timeout)
        self.ends.append(p)
        return p

    def consumer(self, name: str = "r", timeout: float = WAIT_S) -> ring.Consumer:
        c = ring.Consumer(self.rd, name, timeout=timeout)
        self.ends.append(c)
        return c

    def detach(self, end: ring.Producer | ring.Consumer) -> None:
        """Close a producer or consumer before the test ends."""
        self.ends.remove(end)
        end.close()

    def spawn(self, code: str, name: str = "r", *args: object) -> Child:
        argv = [sys.executable, "-c", PRELUDE + code, str(self.rd.path), self.rd.instance, name]
        child = Child(argv + [str(a) for a in args])
        self.children.append(child)
        return child

    def socket_files(self) -> list[Path]:
        return sorted(p for p in self.rd.path.iterdir() if p.is_socket())

    def close(self) -> None:
        """Undo everything, going on past failures; the first one is raised at the end."""
        errors: list[BaseException] = []

        def attempt(step: Any, *args: Any) -> None:
            try:
                step(*args)
            except Exception as e:  # noqa: BLE001 - collected, re-raised below
                errors.append(e)

        for child in self.children:
            attempt(child.kill)
        for end in reversed(self.ends):
            if end.seg.fd >= 0:
                attempt(end.close)
        for seg in self.segments:
            seg.unlink()
            attempt(seg.close)
        for name in self.names:  # what a SIGKILLed producer could not remove
            for suffix in ("frames", "free"):
                (self.rd.path / f"ring-{name}.{suffix}").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.rd.path.rmdir()
        if errors:
            raise errors[0]


@contextlib.contextmanager
def ring_kit() -> Iterator[RingKit]:
    kit = RingKit()
    try:
        yield kit
    finally:
        kit.close()
