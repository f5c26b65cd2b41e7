"""Benchmark of moving 1080p video frames between two processes, against the physical limit.

Run from the repository root with the project's interpreter::

    .venv/bin/python tools/bench_frames.py            # full run (a few minutes)
    .venv/bin/python tools/bench_frames.py --quick    # under a minute on 2 cores

``--quick`` measures the same thing as the full run, only less of it: the same
frames, slots, pre-touched buffers and the same warm-up (0.5 s per run, 200
calls in the per-call test), but 1 round of 1.5 s per method instead of 3 of
5 s, 1 s of wake-ups instead of 2 and 2,000 calls per ring function instead
of 10,000. So its figures mean the same; they are only noisier.

Prints a table (figures beside the aims, pass/MISS) and, as the very last line
of stdout, one JSON object with the 1080p RGB24 figures. Progress goes to stderr.

What is measured, for 1920x1080 RGB24 (6,220,800 B) and YUV420P (3,110,400 B):

* memcpy: ``np.copyto`` of the frame's planes into 4 reused, preallocated
  buffers (their pages touched before the clock runs), in this process: the
  most one core can move, and so the limit of a ring whose producer copies
  every frame in. The ring's figures are also given as a fraction of the
  memcpy of the same round (the two runs adjoin in time), median of rounds.
* the lumiera ring (:mod:`lumiera.shm.ring`, 4 slots, BLOCK policy): a producer
  process copies the frame into a slot (``Producer.write``: claim, copy,
  publish); a consumer process ``acquire`` s it and either reads it in place
  (zero copy) and releases it, or copies it out into a private buffer
  (``np.copyto``), releases, then reads the copy.
* pyzmq PUSH/PULL over ipc, ``send_multipart(planes, copy=False)`` and
  ``recv_multipart(copy=False)``, high-water marks of 2 messages.
* ``multiprocessing.Queue(maxsize=4)`` carrying the tuple of plane arrays
  (pickled), producer and consumer both ``spawn`` ed children.
* the ring's fixed cost per call: claim, publish, acquire and release of a
  64x64 gray frame and of a 64x64 yuv420p one (3 planes), producer and consumer
  in this process, so no copy and no wake-up counts; p50 in µs per call.
* wake-up latency of the ring: the producer publishes one frame every 2 ms,
  stamping ``pts`` with ``clock_gettime_ns(CLOCK_MONOTONIC)`` (system-wide)
  after the copy, just before ``publish``; the consumer, idle in ``acquire``,
  takes the clock as soon as ``acquire`` returns.

Ring and pyzmq producers and consumers are separate processes started with
``subprocess.Popen`` (``tools/bench_frames_roles.py``, which holds every
producer and consumer), so none shares a resource tracker or a zmq context
with another. Every consumer *touches* every byte of every frame in
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

import contextlib
import gc
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zmq
from bench_frames_roles import (
    HEIGHT,
    START_TIMEOUT_S,
    WIDTH,
    ZMQ_HWM,
    Spec,
    copy_planes,
    nbytes_of,
    now_ns,
    queue_consumer,
    queue_producer,
    source_planes,
)
from harness import (
    BenchContext,
    Child,
    Cpu,
    Table,
    bench_context,
    bench_main,
    finish,
    header,
    load_note,
    median,
    paired,
    parser,
    pct,
    say,
    turns,
    verdict,
)

from lumiera import shm
from lumiera.runtime_dir import RuntimeDir
from lumiera.shm import ring
from lumiera.shm.layout import PixelFormat, Policy, frame_bytes

FORMATS = (PixelFormat.RGB24, PixelFormat.YUV420P)
SLOTS = 4  # FINDINGS: 4 beat 8 (the working set must fit the last-level cache)
QUEUE_MAX = 4  # Queue bounded like the ring
PACE_US = 2000  # wake-up test: one frame every 2 ms
SETTLE_S = 0.05  # after both sides said ready: the SUB subscription reaches the PUB
OVERHEAD_SIZE = (64, 64)  # tiny frame for the in-process per-call cost of the ring API
OVERHEAD_FORMATS = (PixelFormat.GRAY, PixelFormat.YUV420P)
OVERHEAD_WARM = 200  # calls of each not counted, in both modes
CALLS = ("claim", "publish", "acquire", "release")
WARM_S = 0.5  # every run's warm-up, in both modes: first touch of pages, connections
# A round whose ring or memcpy run saw other processes use this much CPU (in cores) is
# contended: the ring needs both cores (producer, consumer), memcpy one, so a busy
# core halves the ring's figure and not memcpy's. Ratios are of the rounds without it.
CONTENDED_CORES = 0.25
ROLES_SCRIPT = Path(__file__).resolve().with_name("bench_frames_roles.py")

AIM_MEMCPY_RATIO = 0.85
AIM_QUEUE_X = 30.0
AIM_ZMQ_X = 4.0


# -- the parent: children, runs ----------------------------------------------------------


@dataclass
class Bench:
    """What every measurement shares: the runtime directory, the plan, what went wrong."""

    rd: RuntimeDir
    duration: float
    warm_s: float
    wake_s: float
    problems: list[str]  # the context's
    rings: int = 0

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
    env = dict(os.environ, BENCH_FRAMES_SPEC=json.dumps(spec))
    try:
        for role in (f"{kind}-producer", f"{kind}-consumer"):
            children.append(Child(role, [sys.executable, str(ROLES_SCRIPT), role], env))
        prod, cons = children
        for c in children:
            c.expect("ready", START_TIMEOUT_S)
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
    dst = [tuple(np.empty_like(p) for p in src) for _ in range(SLOTS)]
    for planes in dst:
        for p in planes:
            p.fill(0)  # fault the pages in before the clock runs (as the consumers do)
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


def ring_overhead(rd: RuntimeDir, fmt: PixelFormat, frames: int) -> dict[str, float]:
    """p50 cost in µs of each ring call for a tiny frame, producer and consumer in-process."""
    w, h = OVERHEAD_SIZE
    name = f"overhead{int(fmt)}"
    seg = ring.create(
        rd.instance, name, slots=SLOTS, payload_bytes=frame_bytes(fmt, w, h), policy=Policy.BLOCK
    )
    times: dict[str, list[int]] = {k: [] for k in CALLS}
    clock = time.perf_counter_ns
    try:
        with ring.Producer(rd, name) as prod, ring.Consumer(rd, name) as cons:
            for i in range(frames + OVERHEAD_WARM):
                t0 = clock()
                frame = prod.claim(w, h, fmt)
                t1 = clock()
                assert frame is not None
                frame.planes[0][0, 0] = i & 0xFF  # a write, not a copy: the call's cost alone
                t2 = clock()
                prod.publish(frame)
                t3 = clock()
                frame.planes = ()
                got = cons.acquire()
                t4 = clock()
                cons.release(got)
                t5 = clock()
                if i >= OVERHEAD_WARM:
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
    overhead: dict[str, dict[str, float]] = field(default_factory=dict)  # by format, call

    def add(self, fmt: PixelFormat, method: str, res: Spec) -> None:
        self.runs.setdefault(fmt.name, {}).setdefault(method, []).append(res)

    def fps(self, fmt: PixelFormat, method: str) -> float:
        values = [r["fps"] for r in self.runs.get(fmt.name, {}).get(method, []) if r["fps"]]
        return median(values)

    def of_memcpy(self, fmt: PixelFormat, method: str) -> float:
        """Median over the rounds of ``method``'s frames/s over memcpy's of the same round.

        Only uncontended rounds count (see CONTENDED_CORES), unless every round was.
        """
        clean = self.clean_rounds(fmt, method)
        pairs = list(zip(self.each(fmt, method), self.each(fmt, "memcpy"), strict=True))
        use = [pairs[k] for k in clean] if clean else pairs
        return paired([a for a, _ in use], [b for _, b in use])

    def clean_rounds(self, fmt: PixelFormat, method: str) -> list[int]:
        """The rounds in which no other process took CPU from ``method``'s or memcpy's run."""
        runs = self.runs.get(fmt.name, {})
        pairs = zip(runs.get(method, []), runs.get("memcpy", []), strict=True)
        return [
            k
            for k, (a, b) in enumerate(pairs)
            if max(float(a["others_cores"]), float(b["others_cores"])) < CONTENDED_CORES
        ]

    def rounds(self, fmt: PixelFormat, method: str) -> int:
        return len(self.runs.get(fmt.name, {}).get(method, []))

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


def _how_much(p: Plan) -> str:
    return f"{p.rounds} x {p.seconds:g} s per method, wake-up {p.wake_s:g} s, {p.calls:,} calls"


def _spread(values: list[float]) -> str:
    return "rounds " + ", ".join(f"{v:,.0f}" for v in values) if len(values) > 1 else ""


def report(ctx: BenchContext, b: Bench, r: Results, rounds: int) -> int:
    t = Table("figure", "frames/s", "GB/s", "aim", "ok?", "how")
    for fmt in FORMATS:
        label = fmt.name.lower()
        gb = nbytes_of(fmt) / 1e9
        inplace = r.fps(fmt, "ring_inplace")
        for method, title in METHODS.items():
            fps = r.fps(fmt, method)
            aim = ok = ""
            how = HOW[method]
            clean = r.clean_rounds(fmt, method)
            if method == "ring_inplace":
                aim = f">= {AIM_MEMCPY_RATIO:.0%} memcpy"
                ok = verdict(r.of_memcpy(fmt, method), AIM_MEMCPY_RATIO) if clean else "n/a"
            if method in ("ring_inplace", "ring_copyout"):
                n = r.rounds(fmt, method)
                of = (
                    f"{len(clean)} of {n} rounds uncontended"
                    if clean
                    else f"CONTENDED: other processes took CPU in all {n} rounds, the ring"
                    " needs both cores; not the ring's figure"
                )
                how = f"{r.of_memcpy(fmt, method):.0%} of memcpy (same round; {of}); " + how
            spread = _spread(r.each(fmt, method))
            t.add(
                f"{label:8} {title}",
                f"{fps:,.0f}",
                f"{fps * gb:.2f}",
                aim,
                ok,
                how=f"{how}; {r.frames(fmt, method):,} frames; others {r.others(fmt, method):.2f}"
                " cores" + (f"; {spread}" if spread else ""),
            )
        for other, name, aim_x in (("queue", "Queue", AIM_QUEUE_X), ("zmq", "pyzmq", AIM_ZMQ_X)):
            x = inplace / r.fps(fmt, other)
            t.add(
                f"{label:8} ring in-place vs {name}",
                f"{x:.1f}x",
                "",
                f">= {aim_x:g}x",
                verdict(x, aim_x),
                how="frames/s ratio",
            )
        lat = r.latencies_us(fmt)
        busy = sum(int(x["busy"]) for x in r.runs.get(fmt.name, {}).get("ring_wakeup", []))
        t.add(
            f"{label:8} ring wake-up publish -> held, p50/p99",
            f"{median(lat):.0f}/{pct(lat, 99):.0f} us",
            how=f"{len(lat)} frames, one per {PACE_US / 1000:g} ms; min {min(lat, default=0):.0f},"
            f" max {max(lat, default=0):.0f} us; consumer busy at publish: {busy};"
            f" others {r.others(fmt, 'ring_wakeup'):.2f} cores",
        )
    for fname, o in r.overhead.items():
        t.add(
            f"ring cost per call, {fname.lower()} (p50)",
            "/".join(f"{o[k]:.1f}" for k in CALLS),
            how=f"us claim/publish/acquire/release, {OVERHEAD_SIZE[0]}x{OVERHEAD_SIZE[1]}"
            f" {fname.lower()}, in process (no copy, no wake-up)",
        )
    versions = f"numpy {np.__version__}, pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}"
    lines = [
        *header("lumiera frame transport benchmark", versions),
        f"mode: {'quick' if ctx.quick else 'full'}; {ctx.elapsed():.1f} s; {rounds} round(s) of "
        f"{b.duration:g} s per method (first {b.warm_s:g} s not counted), wake-up {b.wake_s:g} s",
        f"quick changes only how much is measured ({_how_much(Plan.of(True))}; full:"
        f" {_how_much(Plan.of(False))}): frames, slots, pre-touched buffers and warm-up"
        f" ({b.warm_s:g} s per run, {OVERHEAD_WARM} calls) are the same",
        f"frames {WIDTH}x{HEIGHT}: rgb24 {nbytes_of(PixelFormat.RGB24):,} B, yuv420p "
        f"{nbytes_of(PixelFormat.YUV420P):,} B; ring {SLOTS} slots, BLOCK policy",
        "touch (every consumer): XOR of np.bitwise_xor.reduce over a uint64 view of each plane,"
        " checked against the source",
        "others: CPU other processes used during a run, in cores (the most of the rounds);"
        f" a round where they used {CONTENDED_CORES:g} or more in the ring's or memcpy's run"
        " is contended, and ratios to memcpy leave it out (unless all are);"
        f" there are {os.cpu_count()}",
        *load_note(ctx.load_at_start),
    ]
    rgb = PixelFormat.RGB24
    lat = r.latencies_us(rgb)
    fig = {
        "queue_fps": r.fps(rgb, "queue"),
        "zmq_fps": r.fps(rgb, "zmq"),
        "ring_inplace_fps": r.fps(rgb, "ring_inplace"),
        "ring_copyout_fps": r.fps(rgb, "ring_copyout"),
        "memcpy_fps": r.fps(rgb, "memcpy"),
        "ring_inplace_pct_of_memcpy": 100 * r.of_memcpy(rgb, "ring_inplace"),
        "ring_inplace_rounds_uncontended": len(r.clean_rounds(rgb, "ring_inplace")),
        "wakeup_us_p50": median(lat),
        "wakeup_us_p99": pct(lat, 99),
        **{f"ring_{k}_us_p50": v for k, v in r.overhead.get("GRAY", {}).items()},
    }
    return finish(lines, t, ctx.problems, fig, 1)


# -- main --------------------------------------------------------------------------------


def run_method(b: Bench, fmt: PixelFormat, method: str) -> Spec:
    """One measurement, with the CPU other processes used meanwhile (in cores)."""
    before = Cpu.now()
    if method == "memcpy":
        res = run_memcpy(b, fmt)
    elif method == "zmq":
        res = run_zmq(b, fmt)
    elif method == "queue":
        res = run_queue(b, fmt)
    else:
        res = run_ring(b, fmt, method.removeprefix("ring_"))
    res["others_cores"] = Cpu.now().since(before).others
    return res


def measure(b: Bench, rounds: int) -> Results:
    r = Results()
    plan = [(fmt, method) for fmt in FORMATS for method in (*METHODS, "ring_wakeup")]
    for k, (fmt, method) in turns(plan, rounds, mirror=False):
        if method == "memcpy":
            say(f"round {k + 1}/{rounds}, {fmt.name}:")
        res = run_method(b, fmt, method)
        r.add(fmt, method, res)
        if method == "ring_wakeup":
            lat = [ns / 1000 for ns in res["lat_ns"]]
            figure = f"p50 {median(lat):.0f} us, p99 {pct(lat, 99):.0f} us"
        else:
            figure = f"{res['fps'] or 0:9,.0f} frames/s ({res['frames']} frames)"
        say(f"  {method:13} {figure}; others {res['others_cores']:.2f} cores")
    return r


@dataclass(frozen=True)
class Plan:
    """How much a run measures. Quick and full differ here only in how much, never in what."""

    rounds: int
    seconds: float  # per method and round, warm-up included
    warm_s: float
    wake_s: float
    calls: int  # per ring function in the per-call test (after OVERHEAD_WARM)

    @classmethod
    def of(cls, quick: bool, rounds: int | None = None, seconds: float | None = None) -> Plan:
        return cls(
            rounds=rounds or (1 if quick else 3),
            seconds=seconds or (1.5 if quick else 5.0),
            warm_s=WARM_S,  # the same in both modes: quick measures less, not something else
            wake_s=1.0 if quick else 2.0,
            calls=2000 if quick else 10000,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parse = parser(__doc__, "one short round (< 60 s); the same frames and warm-up")
    parse.add_argument("--rounds", type=int, help="rounds of all methods (median is reported)")
    parse.add_argument("--seconds", type=float, help="seconds of frames per method and round")
    args = parse.parse_args(argv)
    plan = Plan.of(args.quick, args.rounds, args.seconds)
    rounds, duration, warm_s, wake_s = plan.rounds, plan.seconds, plan.warm_s, plan.wake_s
    if rounds < 1 or duration <= warm_s + 0.1:
        parse.error(f"--rounds must be >= 1 and --seconds > {warm_s + 0.1:g}")

    with bench_context("lumframes-", args.quick) as ctx:  # short: ipc paths <= 107
        rd = ctx.runtime_dir()
        b = Bench(rd, duration, warm_s, wake_s, ctx.problems)
        try:
            r = measure(b, rounds)
            say("ring cost per call, in process")
            for fmt in OVERHEAD_FORMATS:
                r.overhead[fmt.name] = ring_overhead(rd, fmt, plan.calls)
        finally:
            gone = shm.sweep(rd.instance)
            if gone:
                b.problems.append(f"segments left behind (removed now): {', '.join(gone)}")
    return report(ctx, b, r, rounds)


if __name__ == "__main__":
    bench_main(main)
