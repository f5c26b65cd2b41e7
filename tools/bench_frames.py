"""Benchmark of moving 1080p video frames between two processes, against the physical limit.

Run from the repository root with the project's interpreter::

    .venv/bin/python tools/bench_frames.py            # full run (a few minutes)
    .venv/bin/python tools/bench_frames.py --quick    # under a minute on 2 cores

Prints a table (figures beside the aims, pass/MISS) and, as the very last line
of stdout, one JSON object with the 1080p RGB24 figures. Progress goes to stderr.

What is measured, for 1920x1080 RGB24 (6,220,800 B) and YUV420P (3,110,400 B):

* memcpy: ``np.copyto`` of the frame's planes into 4 reused, preallocated
  buffers, in this process: the most one core can move, and so the limit of a
  ring whose producer copies every frame in.
* the lumiera ring (:mod:`lumiera.shm.ring`, 4 slots, BLOCK policy): a producer
  process copies the frame into a slot (``Producer.write``: claim, copy,
  publish); a consumer process ``acquire`` s it and either reads it in place
  (zero copy) and releases it, or copies it out into a private buffer
  (``np.copyto``), releases, then reads the copy.
* pyzmq PUSH/PULL over ipc, ``send_multipart(planes, copy=False)`` and
  ``recv_multipart(copy=False)``, high-water marks of 2 messages.
* ``multiprocessing.Queue(maxsize=4)`` carrying the tuple of plane arrays
  (pickled), producer and consumer both ``spawn`` ed children.
* wake-up latency of the ring: the producer publishes one frame every 2 ms,
  stamping ``pts`` with ``clock_gettime_ns(CLOCK_MONOTONIC)`` (system-wide)
  after the copy, just before ``publish``; the consumer, idle in ``acquire``,
  takes the clock as soon as ``acquire`` returns.

Ring and pyzmq producers and consumers are separate processes started with
``subprocess.Popen`` (``--role``), so none shares a resource tracker or a zmq
context with another. Every consumer *touches* every byte of every frame in
the same way: ``np.bitwise_xor.reduce`` over a ``uint64`` view of each plane,
XORed together; it also checks the result against the source frame's, so a
torn or stale frame would show up as a problem. Throughput is counted at the
consumer, after a warm-up (first-touch page faults, connections), from the
end of one frame's processing to the end of the last one's.

A ring segment is created per measurement and unlinked in ``finally``; children
are stopped (SIGTERM, then SIGKILL) if still there; the runtime directory (ring
wake-up sockets, pyzmq socket) lives in a temporary directory removed at the end,
and each ring run is checked for left-over socket files and segments.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import multiprocessing as mp
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zmq

from lumiera import shm
from lumiera.runtime_dir import RuntimeDir
from lumiera.shm import ring
from lumiera.shm.layout import PixelFormat, Policy, frame_bytes, planes_of
from lumiera.testing import bench_main, median, pct, raise_interrupt, say, table

WIDTH, HEIGHT = 1920, 1080
FORMATS = (PixelFormat.RGB24, PixelFormat.YUV420P)
SLOTS = 4  # FINDINGS: 4 beat 8 (the working set must fit the last-level cache)
QUEUE_MAX = 4  # Queue bounded like the ring
ZMQ_HWM = 2
PACE_US = 2000  # wake-up test: one frame every 2 ms
END_PTS = -1  # a ring frame with this pts ends a run
CHILD_TIMEOUT_S = 10.0  # longest wait in a child (acquire, claim, queue get, poll)
START_TIMEOUT_S = 30.0
SETTLE_S = 0.05  # after both sides said ready: the SUB subscription reaches the PUB
OVERHEAD_SIZE = (64, 64)  # tiny frame for the in-process per-call cost of the ring API

AIM_MEMCPY_RATIO = 0.85
AIM_QUEUE_X = 30.0
AIM_ZMQ_X = 4.0

Planes = tuple[npt.NDArray[np.uint8], ...]
Arrays = Sequence[npt.NDArray[np.uint8]]
Spec = dict[str, Any]


def now_ns() -> int:
    """A clock that all processes share (perf_counter_ns is per process)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


# -- the frame, and what every consumer does with it ---------------------------------------


def source_planes(fmt: PixelFormat) -> Planes:
    """A deterministic frame of noise, as separate contiguous planes (same in every process)."""
    data = np.random.default_rng(int(fmt)).integers(
        0, 256, frame_bytes(fmt, WIDTH, HEIGHT), dtype=np.uint8
    )
    out = []
    for p in planes_of(fmt, WIDTH, HEIGHT):
        size = math.prod(p.shape)
        out.append(data[p.offset : p.offset + size].reshape(p.shape).copy())
    return tuple(out)


def touch(planes: Arrays) -> int:
    """Read every byte: XOR of ``np.bitwise_xor.reduce`` over each plane's uint64 view."""
    acc = 0
    for p in planes:
        acc ^= int(np.bitwise_xor.reduce(p.reshape(-1).view(np.uint64)))
    return acc


def copy_planes(dst: Arrays, src: Arrays) -> None:
    """np.copyto plane by plane (a function: no loop variable keeps a view of a slot alive)."""
    for d, s in zip(dst, src, strict=True):
        np.copyto(d, s)


def nbytes_of(fmt: PixelFormat) -> int:
    return frame_bytes(fmt, WIDTH, HEIGHT)


class Meter:
    """Frames counted at the consumer after a warm-up, end of processing to end of processing."""

    def __init__(self, warm_s: float) -> None:
        self.warm_ns = int(warm_s * 1e9)
        self.first = 0
        self.start = 0
        self.end = 0
        self.count = 0
        self.total = 0

    @property
    def measuring(self) -> bool:
        return self.start > 0

    def tick(self) -> None:
        t = now_ns()
        self.total += 1
        if self.first == 0:
            self.first = t
        if self.start == 0:
            if t - self.first >= self.warm_ns:
                self.start = t
            return
        self.count += 1
        self.end = t

    def result(self, **extra: Any) -> Spec:
        seconds = (self.end - self.start) / 1e9 if self.count else 0.0
        fps = self.count / seconds if seconds > 0 else None
        return {"frames": self.count, "total": self.total, "seconds": seconds, "fps": fps, **extra}


# -- child processes: the roles -------------------------------------------------------------


def _ready() -> None:
    print("ready", flush=True)


def _result(res: Spec) -> None:
    print("result " + json.dumps(res), flush=True)


def _expect_stdin(word: str) -> None:
    line = sys.stdin.readline()
    if line.strip() != word:
        raise SystemExit(f"expected {word!r} on stdin, got {line!r} (parent gone?)")


def _wait_for_path(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout:g} s")
        time.sleep(0.002)


def _rd_of(spec: Spec) -> RuntimeDir:
    return RuntimeDir(Path(spec["rd"]), spec["instance"], default_location=False)


def _copy_stamp_publish(prod: ring.Producer, src: Planes, fmt: PixelFormat) -> None:
    """Claim, copy, stamp pts with the shared clock, publish (the wake-up test's frame)."""
    frame = prod.claim(WIDTH, HEIGHT, fmt)
    assert frame is not None  # BLOCK policy: a frame or RingTimeout
    try:
        copy_planes(frame.planes, src)
        frame.pts = now_ns()
        prod.publish(frame)
    except BaseException:
        prod.abort(frame)
        raise
    finally:
        frame.planes = ()  # publish leaves the producer's writable views in place


def role_ring_producer(spec: Spec) -> None:
    fmt = PixelFormat[spec["fmt"]]
    src = source_planes(fmt)
    pace_ns = int(spec["pace_us"]) * 1000
    prod = ring.Producer(_rd_of(spec), spec["ring"], timeout=CHILD_TIMEOUT_S)
    try:
        _ready()
        _expect_stdin("go")
        t0 = now_ns()
        deadline = t0 + int(spec["duration"] * 1e9)
        n = 0
        nxt = t0
        while now_ns() < deadline:
            if pace_ns:
                nxt += pace_ns
                wait = nxt - now_ns()
                if wait > 0:
                    time.sleep(wait / 1e9)
                else:
                    nxt -= wait  # late: no burst to catch up
                _copy_stamp_publish(prod, src, fmt)
            else:
                prod.write(src, fmt)
            n += 1
        elapsed = (now_ns() - t0) / 1e9
        end = prod.claim(8, 1, PixelFormat.GRAY, pts=END_PTS)
        assert end is not None
        prod.publish(end)
        end.planes = ()
        _expect_stdin("quit")
        _result({"frames": n, "seconds": elapsed})
    finally:
        with contextlib.suppress(BufferError):  # views of an interrupted frame: exit frees them
            prod.close()


def role_ring_consumer(spec: Spec) -> None:
    fmt = PixelFormat[spec["fmt"]]
    mode = spec["mode"]
    src = source_planes(fmt)
    expected = touch(src)
    private = tuple(np.empty_like(p) for p in src)
    for p in private:
        p.fill(0)  # fault the pages in before the clock runs
    rd = _rd_of(spec)
    _wait_for_path(Path(ring.endpoints(rd, spec["ring"])[1].removeprefix("ipc://")), 20)
    cons = ring.Consumer(rd, spec["ring"], timeout=CHILD_TIMEOUT_S)
    meter = Meter(spec["warm_s"])
    latencies: list[int] = []
    busy = bad = 0
    try:
        _ready()
        while True:
            called = now_ns()
            frame = cons.acquire()
            got = now_ns()
            if frame.pts == END_PTS:
                cons.release(frame)
                break
            if mode == "copyout":
                copy_planes(private, frame.planes)
                cons.release(frame)
                value = touch(private)
            else:
                value = touch(frame.planes)
                cons.release(frame)
            bad += value != expected
            if mode == "wakeup" and meter.measuring:
                latencies.append(got - frame.pts)
                busy += called > frame.pts  # it was not waiting when the frame came
            meter.tick()
        _result(meter.result(mismatches=bad, drops=cons.drops, lat_ns=latencies, busy=busy))
    finally:
        with contextlib.suppress(BufferError):
            cons.close()


def role_zmq_producer(spec: Spec) -> None:
    fmt = PixelFormat[spec["fmt"]]
    src = source_planes(fmt)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    try:
        sock.setsockopt(zmq.SNDHWM, ZMQ_HWM)
        sock.setsockopt(zmq.SNDTIMEO, int(CHILD_TIMEOUT_S * 1000))  # zmq.Again, not a hang
        sock.setsockopt(zmq.LINGER, 2000)
        old = os.umask(0o077)
        try:
            sock.bind(spec["endpoint"])
        finally:
            os.umask(old)
        _ready()
        _expect_stdin("go")
        t0 = now_ns()
        deadline = t0 + int(spec["duration"] * 1e9)
        n = 0
        parts = [p.data for p in src]
        while now_ns() < deadline:
            sock.send_multipart(parts, copy=False)
            n += 1
        elapsed = (now_ns() - t0) / 1e9
        sock.send(b"")
        _expect_stdin("quit")
        _result({"frames": n, "seconds": elapsed})
    finally:
        sock.close(linger=0)
        ctx.term()


def role_zmq_consumer(spec: Spec) -> None:
    fmt = PixelFormat[spec["fmt"]]
    expected = touch(source_planes(fmt))
    _wait_for_path(Path(spec["endpoint"].removeprefix("ipc://")), 20)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    meter = Meter(spec["warm_s"])
    bad = 0
    try:
        sock.setsockopt(zmq.RCVHWM, ZMQ_HWM)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(spec["endpoint"])
        _ready()
        while True:
            if not sock.poll(int(CHILD_TIMEOUT_S * 1000)):
                raise TimeoutError(f"no frame within {CHILD_TIMEOUT_S:g} s")
            parts = sock.recv_multipart(copy=False)
            if len(parts[0].buffer) == 0:
                break
            bad += touch([np.frombuffer(f.buffer, np.uint8) for f in parts]) != expected
            del parts
            meter.tick()
        _result(meter.result(mismatches=bad))
    finally:
        sock.close(linger=0)
        ctx.term()


ROLES: dict[str, Callable[[Spec], None]] = {
    "ring-producer": role_ring_producer,
    "ring-consumer": role_ring_consumer,
    "zmq-producer": role_zmq_producer,
    "zmq-consumer": role_zmq_consumer,
}


# The Queue baseline's children (multiprocessing, spawned: no fork of a zmq process).


def queue_producer(q: Any, events: Any, go: MpEvent, fmt_name: str, duration: float) -> None:
    src = source_planes(PixelFormat[fmt_name])
    events.put(("ready", None))
    if not go.wait(START_TIMEOUT_S):
        return
    t0 = now_ns()
    deadline = t0 + int(duration * 1e9)
    n = 0
    while now_ns() < deadline:
        q.put(src, timeout=CHILD_TIMEOUT_S)
        n += 1
    elapsed = (now_ns() - t0) / 1e9
    q.put(None, timeout=CHILD_TIMEOUT_S)
    events.put(("producer", {"frames": n, "seconds": elapsed}))


def queue_consumer(q: Any, events: Any, fmt_name: str, warm_s: float) -> None:
    expected = touch(source_planes(PixelFormat[fmt_name]))
    meter = Meter(warm_s)
    bad = 0
    events.put(("ready", None))
    while True:
        item = q.get(timeout=CHILD_TIMEOUT_S)
        if item is None:
            break
        bad += touch(item) != expected
        del item
        meter.tick()
    events.put(("consumer", meter.result(mismatches=bad)))


# -- the parent: children, runs ----------------------------------------------------------


class Child:
    """A ``--role`` process of this script; line protocol on its stdin/stdout."""

    def __init__(self, role: str, spec: Spec) -> None:
        self.role = role
        self.buf = b""
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--role", role],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=dict(os.environ, BENCH_FRAMES_SPEC=json.dumps(spec)),
        )

    def line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.role}: no answer within {timeout:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    code = self.proc.wait(timeout=5)
                    raise RuntimeError(f"{self.role} exited with {code} (see stderr)")
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode().strip()

    def expect_ready(self) -> None:
        line = self.line(START_TIMEOUT_S)
        if line != "ready":
            raise RuntimeError(f"{self.role} said {line!r} instead of ready")

    def send(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word.encode() + b"\n")
        self.proc.stdin.flush()

    def result(self, timeout: float) -> Spec:
        line = self.line(timeout)
        if not line.startswith("result "):
            raise RuntimeError(f"{self.role} said {line!r} instead of its result")
        res: Spec = json.loads(line.removeprefix("result "))
        return res

    def finish(self, problems: list[str]) -> None:
        """Wait for a clean exit (it has said its result)."""
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            problems.append(f"{self.role} did not exit after its result")
            return
        if code != 0:
            problems.append(f"{self.role} exited with {code}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


@dataclass
class Bench:
    """What every measurement shares: the runtime directory, the plan, what went wrong."""

    rd: RuntimeDir
    duration: float
    warm_s: float
    wake_s: float
    problems: list[str] = field(default_factory=list)
    rings: int = 0
    load_at_start: float = field(default_factory=lambda: os.getloadavg()[0])

    def ring_name(self) -> str:
        self.rings += 1
        return f"bench{self.rings}"

    def check(self, what: str, res: Spec, expect_frames: bool = True) -> None:
        if res.get("mismatches"):
            self.problems.append(f"{what}: {res['mismatches']} frames with wrong content")
        if res.get("drops"):
            self.problems.append(f"{what}: {res['drops']} frames dropped (BLOCK policy)")
        if expect_frames and not res.get("frames"):
            self.problems.append(f"{what}: no frames counted after the warm-up")


def run_ring(b: Bench, fmt: PixelFormat, mode: str) -> Spec:
    """One ring measurement: fresh segment, producer and consumer processes."""
    name = b.ring_name()
    seg = ring.create(
        b.rd.instance, name, slots=SLOTS, payload_bytes=nbytes_of(fmt), policy=Policy.BLOCK
    )
    wakeup = mode == "wakeup"
    spec: Spec = {
        "rd": str(b.rd.path),
        "instance": b.rd.instance,
        "ring": name,
        "fmt": fmt.name,
        "duration": b.wake_s if wakeup else b.duration,
        "pace_us": PACE_US if wakeup else 0,
        "mode": mode,
        "warm_s": b.warm_s,
    }
    try:
        res = run_pair(b, "ring", spec, spec["duration"])
    finally:
        seg.unlink()
        seg.close()
        left = [p.name for p in b.rd.path.iterdir() if p.name.startswith(f"ring-{name}.")]
        left += shm.list_segments(b.rd.instance)
        if left:
            b.problems.append(f"ring {name}: left behind: {', '.join(left)}")
    b.check(f"ring {mode} {fmt.name}", res)
    return res


def run_pair(b: Bench, kind: str, spec: Spec, duration: float) -> Spec:
    """Start ``kind``'s producer and consumer, let them run, collect the consumer's result."""
    children: list[Child] = []
    try:
        prod = Child(f"{kind}-producer", spec)
        children.append(prod)
        cons = Child(f"{kind}-consumer", spec)
        children.append(cons)
        prod.expect_ready()
        cons.expect_ready()
        time.sleep(SETTLE_S)
        prod.send("go")
        res = cons.result(duration + START_TIMEOUT_S)
        prod.send("quit")
        res["producer"] = prod.result(START_TIMEOUT_S)
        for c in children:
            c.finish(b.problems)
    finally:
        for c in children:
            c.close()
    return res


def run_zmq(b: Bench, fmt: PixelFormat) -> Spec:
    sock_dir = Path(tempfile.mkdtemp(prefix="zmq-", dir=b.rd.path.parent))
    spec: Spec = {
        "endpoint": f"ipc://{sock_dir / 'frames'}",
        "fmt": fmt.name,
        "duration": b.duration,
        "warm_s": b.warm_s,
    }
    try:
        res = run_pair(b, "zmq", spec, b.duration)
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
    b.check(f"pyzmq {fmt.name}", res)
    return res


def run_queue(b: Bench, fmt: PixelFormat) -> Spec:
    ctx = mp.get_context("spawn")  # never fork: this process may hold a zmq context
    q = ctx.Queue(maxsize=QUEUE_MAX)
    events = ctx.Queue()
    go = ctx.Event()
    procs = [
        ctx.Process(target=queue_producer, args=(q, events, go, fmt.name, b.duration), daemon=True),
        ctx.Process(target=queue_consumer, args=(q, events, fmt.name, b.warm_s), daemon=True),
    ]
    try:
        for p in procs:
            p.start()
        for _ in procs:
            kind, _none = events.get(timeout=START_TIMEOUT_S)
            if kind != "ready":
                raise RuntimeError(f"queue child said {kind!r} instead of ready")
        go.set()
        got: dict[str, Spec] = {}
        while len(got) < 2:
            kind, value = events.get(timeout=b.duration + START_TIMEOUT_S)
            got[kind] = value
        for p in procs:
            p.join(timeout=10)
            if p.exitcode != 0:
                b.problems.append(f"queue child {p.name} exited with {p.exitcode}")
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
            with contextlib.suppress(ValueError):
                p.close()
        for qq in (q, events):
            qq.close()
            qq.cancel_join_thread()
        del q, events, go, procs
        gc.collect()  # unlinks the queues' named semaphores (sem.mp-*) in /dev/shm now
    res = got["consumer"]
    res["producer"] = got["producer"]
    b.check(f"Queue {fmt.name}", res)
    return res


def run_memcpy(b: Bench, fmt: PixelFormat) -> Spec:
    """np.copyto of the frame into 4 reused, preallocated buffers, in this process."""
    src = source_planes(fmt)
    dst = [tuple(np.zeros_like(p) for p in src) for _ in range(SLOTS)]
    clock = now_ns
    t0 = clock()
    warm_end = t0 + int(b.warm_s * 1e9)
    deadline = t0 + int(b.duration * 1e9)
    i = n = 0
    start = 0
    while True:
        copy_planes(dst[i % SLOTS], src)
        i += 1
        t = clock()
        if start:
            n += 1
            if t >= deadline:
                break
        elif t >= warm_end:
            start = t
    seconds = (t - start) / 1e9
    return {"frames": n, "seconds": seconds, "fps": n / seconds}


def ring_overhead(rd: RuntimeDir, frames: int) -> dict[str, float]:
    """Median cost in µs of each ring call for a tiny frame, producer and consumer in-process."""
    w, h = OVERHEAD_SIZE
    fmt = PixelFormat.GRAY
    seg = ring.create(
        rd.instance, "overhead", slots=SLOTS, payload_bytes=w * h, policy=Policy.BLOCK
    )
    times: dict[str, list[int]] = {"claim": [], "publish": [], "acquire": [], "release": []}
    src = np.zeros((h, w), np.uint8)
    clock = time.perf_counter_ns
    try:
        with ring.Producer(rd, "overhead") as prod, ring.Consumer(rd, "overhead") as cons:
            for i in range(frames + 200):
                t0 = clock()
                frame = prod.claim(w, h, fmt)
                t1 = clock()
                assert frame is not None
                np.copyto(frame.planes[0], src)
                t2 = clock()
                prod.publish(frame)
                t3 = clock()
                frame.planes = ()
                got = cons.acquire()
                t4 = clock()
                cons.release(got)
                t5 = clock()
                if i >= 200:
                    times["claim"].append(t1 - t0)
                    times["publish"].append(t3 - t2)
                    times["acquire"].append(t4 - t3)
                    times["release"].append(t5 - t4)
    finally:
        seg.unlink()
        seg.close()
    return {k: statistics.median(v) / 1000 for k, v in times.items()}


# -- report ------------------------------------------------------------------------------


@dataclass
class Results:
    """Per format: per method, the consumer-side result of each round."""

    runs: dict[str, dict[str, list[Spec]]] = field(default_factory=dict)
    overhead: dict[str, float] = field(default_factory=dict)

    def add(self, fmt: PixelFormat, method: str, res: Spec) -> None:
        self.runs.setdefault(fmt.name, {}).setdefault(method, []).append(res)

    def fps(self, fmt: PixelFormat, method: str) -> float:
        values = [r["fps"] for r in self.runs.get(fmt.name, {}).get(method, []) if r["fps"]]
        return median(values)

    def each(self, fmt: PixelFormat, method: str) -> list[float]:
        return [r["fps"] or 0.0 for r in self.runs.get(fmt.name, {}).get(method, [])]

    def latencies_us(self, fmt: PixelFormat) -> list[float]:
        return [
            ns / 1000
            for r in self.runs.get(fmt.name, {}).get("ring_wakeup", [])
            for ns in r["lat_ns"]
        ]

    def others(self, fmt: PixelFormat, method: str) -> float:
        """The most CPU (in cores) other processes used during one of this method's runs."""
        runs = self.runs.get(fmt.name, {}).get(method, [])
        return max((float(r["others_cores"]) for r in runs), default=float("nan"))

    def frames(self, fmt: PixelFormat, method: str) -> int:
        return sum(int(r["frames"]) for r in self.runs.get(fmt.name, {}).get(method, []))


def verdict(value: float, aim: float) -> str:
    if math.isnan(value):
        return "n/a"
    return "pass" if value >= aim else "MISS"


METHODS = {
    "memcpy": "memcpy into 4 reused buffers",
    "ring_inplace": "ring, in-place read (zero copy)",
    "ring_copyout": "ring, copy out, release, read",
    "zmq": "pyzmq PUSH/PULL ipc copy=False",
    "queue": "multiprocessing.Queue (pickle)",
}
HOW = {
    "memcpy": "the limit: np.copyto, one process",
    "ring_inplace": "producer: Producer.write (copy in); consumer reads the slot",
    "ring_copyout": "consumer: np.copyto to a private buffer, then release",
    "zmq": f"send_multipart(planes, copy=False), HWM {ZMQ_HWM}",
    "queue": f"Queue(maxsize={QUEUE_MAX}) of the plane arrays, spawn",
}


def _spread(values: list[float]) -> str:
    return "rounds " + ", ".join(f"{v:,.0f}" for v in values) if len(values) > 1 else ""


def report(args: argparse.Namespace, b: Bench, r: Results, elapsed: float) -> dict[str, float]:
    rows: list[tuple[str, ...]] = [("figure", "frames/s", "GB/s", "aim", "ok?", "how")]
    for fmt in FORMATS:
        label = fmt.name.lower()
        gb = nbytes_of(fmt) / 1e9
        mem = r.fps(fmt, "memcpy")
        inplace = r.fps(fmt, "ring_inplace")
        for method, title in METHODS.items():
            fps = r.fps(fmt, method)
            aim = ok = ""
            how = HOW[method]
            if method == "ring_inplace":
                aim = f">= {AIM_MEMCPY_RATIO:.0%} memcpy"
                ok = verdict(fps / mem, AIM_MEMCPY_RATIO)
            if method in ("ring_inplace", "ring_copyout"):
                how = f"{fps / mem:.0%} of memcpy; " + how
            spread = _spread(r.each(fmt, method))
            rows.append(
                (
                    f"{label:8} {title}",
                    f"{fps:,.0f}",
                    f"{fps * gb:.2f}",
                    aim,
                    ok,
                    f"{how}; {r.frames(fmt, method):,} frames; others {r.others(fmt, method):.2f}"
                    " cores" + (f"; {spread}" if spread else ""),
                )
            )
        vs_queue = inplace / r.fps(fmt, "queue")
        vs_zmq = inplace / r.fps(fmt, "zmq")
        rows += [
            (
                f"{label:8} ring in-place vs Queue",
                f"{vs_queue:.1f}x",
                "",
                f">= {AIM_QUEUE_X:g}x",
                verdict(vs_queue, AIM_QUEUE_X),
                "frames/s ratio",
            ),
            (
                f"{label:8} ring in-place vs pyzmq",
                f"{vs_zmq:.1f}x",
                "",
                f">= {AIM_ZMQ_X:g}x",
                verdict(vs_zmq, AIM_ZMQ_X),
                "frames/s ratio",
            ),
        ]
        lat = r.latencies_us(fmt)
        busy = sum(int(x["busy"]) for x in r.runs.get(fmt.name, {}).get("ring_wakeup", []))
        rows.append(
            (
                f"{label:8} ring wake-up publish -> held, p50/p99",
                f"{median(lat):.0f}/{pct(lat, 99):.0f} us",
                "",
                "",
                "",
                f"{len(lat)} frames, one per {PACE_US / 1000:g} ms; min {min(lat, default=0):.0f},"
                f" max {max(lat, default=0):.0f} us; consumer busy at publish: {busy};"
                f" others {r.others(fmt, 'ring_wakeup'):.2f} cores",
            )
        )
    if r.overhead:
        o = r.overhead
        rows.append(
            (
                "ring API cost per call (in-process, median)",
                "/".join(f"{o[k]:.1f}" for k in ("claim", "publish", "acquire", "release")),
                "",
                "",
                "",
                f"us claim/publish/acquire/release, {OVERHEAD_SIZE[0]}x{OVERHEAD_SIZE[1]} gray",
            )
        )
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    noisy = ""
    if b.load_at_start > 0.5:
        noisy = (
            f"note: load average {b.load_at_start:.2f} before the start: other processes compete"
            " for the cores, so these figures are noisy"
        )
    lines = [
        "lumiera frame transport benchmark",
        f"machine: {platform.machine()}, nproc {len(os.sched_getaffinity(0))} "
        f"(cpu_count {os.cpu_count()}), load avg {load}, {platform.platform()}",
        f"python {platform.python_version()} ({sys.executable}); numpy {np.__version__}, "
        f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}",
        f"mode: {'quick' if args.quick else 'full'}; {elapsed:.1f} s; {args.rounds} round(s) of "
        f"{b.duration:g} s per method (first {b.warm_s:g} s not counted), wake-up {b.wake_s:g} s",
        f"frames {WIDTH}x{HEIGHT}: rgb24 {nbytes_of(PixelFormat.RGB24):,} B, yuv420p "
        f"{nbytes_of(PixelFormat.YUV420P):,} B; ring {SLOTS} slots, BLOCK policy",
        "touch (every consumer): XOR of np.bitwise_xor.reduce over a uint64 view of each plane,"
        " checked against the source",
        "others: CPU other processes used during a run, in cores (the most of the rounds);"
        f" there are {os.cpu_count()}",
        *([noisy] if noisy else []),
        "",
        *table(rows),
    ]
    if b.problems:
        lines += ["", "PROBLEMS:", *(f"  - {p}" for p in b.problems)]
    print("\n".join(lines), flush=True)
    rgb = PixelFormat.RGB24
    lat = r.latencies_us(rgb)
    return {
        "queue_fps": r.fps(rgb, "queue"),
        "zmq_fps": r.fps(rgb, "zmq"),
        "ring_inplace_fps": r.fps(rgb, "ring_inplace"),
        "ring_copyout_fps": r.fps(rgb, "ring_copyout"),
        "memcpy_fps": r.fps(rgb, "memcpy"),
        "wakeup_us_p50": median(lat),
        "wakeup_us_p99": pct(lat, 99),
    }


# -- main --------------------------------------------------------------------------------


def run_role(role: str) -> int:
    signal.signal(signal.SIGTERM, raise_interrupt)  # so finally blocks close the ring
    spec: Spec = json.loads(os.environ["BENCH_FRAMES_SPEC"])
    try:
        ROLES[role](spec)
    except KeyboardInterrupt:
        return 130
    return 0


def cpu_snapshot() -> tuple[float, float, float]:
    """(wall s, CPU s used on the whole machine, CPU s of this process and its reaped children).

    The machine's figure counts steal time too (a vCPU that wanted to run and could not).
    """
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (
            int(x) for x in f.readline().split()[1:9]
        )
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    t = os.times()
    return time.monotonic(), busy, t.user + t.system + t.children_user + t.children_system


def run_method(b: Bench, fmt: PixelFormat, method: str) -> Spec:
    """One measurement, with the CPU other processes used meanwhile (in cores)."""
    wall0, busy0, own0 = cpu_snapshot()
    if method == "memcpy":
        res = run_memcpy(b, fmt)
    elif method == "zmq":
        res = run_zmq(b, fmt)
    elif method == "queue":
        res = run_queue(b, fmt)
    else:
        res = run_ring(b, fmt, method.removeprefix("ring_"))
    wall1, busy1, own1 = cpu_snapshot()
    res["others_cores"] = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))
    return res


def measure(b: Bench, rounds: int) -> Results:
    r = Results()
    for k in range(rounds):
        for fmt in FORMATS:
            say(f"round {k + 1}/{rounds}, {fmt.name}:")
            for method in (*METHODS, "ring_wakeup"):
                res = run_method(b, fmt, method)
                r.add(fmt, method, res)
                if method == "ring_wakeup":
                    lat = [ns / 1000 for ns in res["lat_ns"]]
                    figure = f"p50 {median(lat):.0f} us, p99 {pct(lat, 99):.0f} us"
                else:
                    figure = f"{res['fps'] or 0:9,.0f} frames/s ({res['frames']} frames)"
                say(f"  {method:13} {figure}; others {res['others_cores']:.2f} cores")
    return r


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one short round (< 60 s)")
    parser.add_argument("--rounds", type=int, help="rounds of all methods (median is reported)")
    parser.add_argument("--seconds", type=float, help="seconds of frames per method and round")
    parser.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        return run_role(args.role)
    args.rounds = args.rounds or (1 if args.quick else 3)
    duration = args.seconds or (1.5 if args.quick else 5.0)
    warm_s = 0.25 if args.quick else 0.5
    wake_s = 1.0 if args.quick else 2.0
    if args.rounds < 1 or duration <= warm_s + 0.1:
        parser.error(f"--rounds must be >= 1 and --seconds > {warm_s + 0.1:g}")

    from lumiera.testing import unique_runtime_dir

    signal.signal(signal.SIGTERM, raise_interrupt)  # so finally blocks clean up
    base = Path(tempfile.mkdtemp(prefix="lumframes-", dir="/tmp"))  # short: ipc paths <= 107
    rd = unique_runtime_dir(str(base))
    b = Bench(rd, duration, warm_s, wake_s)
    started = time.perf_counter()
    try:
        r = measure(b, args.rounds)
        say("ring API cost per call, in process")
        r.overhead = ring_overhead(rd, 2000 if args.quick else 10000)
    finally:
        gone = shm.sweep(rd.instance)
        if gone:
            b.problems.append(f"segments left behind (removed now): {', '.join(gone)}")
        shutil.rmtree(base, ignore_errors=True)
    fig = report(args, b, r, time.perf_counter() - started)
    print(json.dumps({k: None if math.isnan(v) else round(v, 1) for k, v in fig.items()}))
    return 1 if b.problems else 0


if __name__ == "__main__":
    bench_main(main)
