"""The child processes of ``tools/bench_frames.py``: producers and consumers of frames.

Run by that script as ``python tools/bench_frames_roles.py ROLE`` (the ring and
pyzmq roles; the plan in ``$BENCH_FRAMES_SPEC``, JSON), or spawned by
multiprocessing (the Queue's). Each says ``ready`` on stdout, waits for ``go``
(producers), and ends with ``result JSON``. Every consumer touches every byte
of every frame in the same way, and checks it against the source frame.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zmq
from harness import raise_interrupt

from lumiera.runtime_dir import RuntimeDir
from lumiera.shm import ring
from lumiera.shm.layout import PixelFormat, frame_bytes, planes_of

WIDTH, HEIGHT = 1920, 1080
ZMQ_HWM = 2
END_PTS = -1  # a ring frame with this pts ends a run
CHILD_TIMEOUT_S = 10.0  # longest wait in a child (acquire, claim, queue get, poll)
START_TIMEOUT_S = 30.0

Planes = tuple[npt.NDArray[np.uint8], ...]
Arrays = Sequence[npt.NDArray[np.uint8]]
Spec = dict[str, Any]


def now_ns() -> int:
    """A clock that all processes share (perf_counter_ns is per process)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


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


# -- the roles ---------------------------------------------------------------------------


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


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1 or argv[0] not in ROLES:
        raise SystemExit(f"usage: bench_frames_roles.py {{{','.join(sorted(ROLES))}}}")
    signal.signal(signal.SIGTERM, raise_interrupt)  # so finally blocks close the ring
    spec: Spec = json.loads(os.environ["BENCH_FRAMES_SPEC"])
    try:
        ROLES[argv[0]](spec)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
