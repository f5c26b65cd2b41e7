"""Benchmark of the Vault: decoding, random access, and render jobs through the Engine.

Run from the repository root with the project's interpreter::

    .venv/bin/python tools/bench_vault.py            # full run (a few minutes)
    .venv/bin/python tools/bench_vault.py --quick    # under a minute on 2 cores

Prints a table (figures beside the aims of the issue, pass/MISS) and, as the
very last line of stdout, one JSON object with the headline figures. Progress
and warnings go to stderr.

What is measured, and how:

* media: 1080p (1920x1080) H.264 in MP4 at 25 fps, written with PyAV
  (libx264, preset ultrafast, ``g`` = ``keyint_min`` = 250, ``sc_threshold``
  0: a keyframe every 250 frames and nowhere else). The picture is a blocky
  random texture panning diagonally (real motion for the encoder, about 40
  Mbit/s). File A (20 s, 500 frames; 12 s, 300 frames with ``--quick``) is
  used for decoding, random access and the bottom track; file B (another
  texture, as long as the render) for the top track.
* decode: frames/s of file A from its first frame, as yuv420p and as rgb24
  numpy arrays. Vault: one ``MediaPool``, ``pool.frame(path, i, fmt, (1920,
  1080))`` for i = 0..N-1 (yuv420p: three plane arrays). Plain PyAV: ``for f
  in container.decode(stream): f.to_ndarray(format=fmt)`` (yuv420p: one
  array of the three planes), stopping after N frames. Both with
  ``stream.thread_type = "AUTO"`` (what MediaPool sets), both timed from
  before the file is opened to the last array. Rounds of a Vault and a PyAV
  run back to back (who goes first alternates), per format, in the same
  process. The figure is the BEST run of each (interference from other
  processes only ever slows a run down); the other runs are listed. The
  verdict is on the MEDIAN over the rounds of Vault/PyAV of the round's two
  runs: the two adjoin, so drift and a busy spell hit both more alike than
  they hit two best runs from different rounds (on a shared 2-core machine
  one lucky run is enough to move best-vs-best by 10%, which is also shown).
  Beside them, the CPU time of this process per frame (decoder threads
  included), median of the runs.
  ``vault_decode_fps`` / ``pyav_decode_fps`` are the yuv420p figures.
  Outside the timing, a few frames are checked to be the same pixels both
  ways.
* random access: file A, frames picked at random (seeded, uniform over the
  file). Vault: one pool kept open for all of them (opened by a fetch of
  frame 0 before the timing), ``pool.frame(path, n, "rgb24", (1920,
  1080))``: it seeks to the keyframe before n (or decodes forward when n is
  at most 48 ahead) and decodes up to n. Naive: open the file afresh and decode from the start
  until frame n (thread_type AUTO too). The two alternate on the same list
  of frames; each fetch is timed alone; p50 and p90 over all fetches. The
  two results must be the same pixels.
* render: ``lumiera up --headless SESSION`` with ``rings.declared =
  render:block:4:8`` (8 MB slots: a 1080p rgb24 frame is 6.2 MB) and
  ``engine.workers`` = W. The session gets both media, two tracks and a
  clip on each covering frames 0..N-1 (the top one at opacity 0.5), output
  1920x1080 at the default rate (25). Then ``engine render`` of frames
  0..N-1 (rgb24, mode render) into the ring, consumed in this process with
  ``ring.Consumer`` (acquire, release); timed from just before the request
  to the release of the last frame, whose pts must come in order 0..N-1.
  (The engine splits the stream, see ``lumiera.vault.stream``: a reader per
  clip decodes its source frames in order into the shared frame cache, a
  render job per output frame composites them.) Each instance renders
  0..N-1 twice: cold (the first request of a fresh engine process, whose
  cache and buffers are all fresh memory) and at once again, warm: the
  figure. The warm pass decodes every source frame again, as the cold one
  did: the cache (512 MB) holds the sources of about 41 output frames, and
  a pass longer than that evicts each before it is wanted again. The
  ``decoded`` count of ``engine.render.done`` shows it (it must be 2N);
  frame-cache misses (render jobs that decode for themselves) come from
  ``engine describe``. A fresh instance for every run. W is 1 and
  os.cpu_count(), and the powers of two between; the figure per W is the
  BEST of the runs. Beside it: the CPU and the minor page faults of the
  engine process (from /proc).
* memory: at the end, the time to touch 512 MB of fresh memory (numpy), and
  again: where the host backs a VM's memory lazily, the first touch is
  slow, and that is what a cold engine pays for its cache.
* "others": CPU used meanwhile by processes other than this one (and the
  engine), in cores, from /proc/stat: these figures are only as quiet as the
  machine was.

Everything lives in one temporary directory that is removed at the end;
each instance is stopped in ``finally`` (SIGTERM, wait, SIGKILL as a last
resort) and checked for left-over processes, socket files and shm segments.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
from harness import (
    BenchContext,
    Cpu,
    Media,
    Pixels,
    Table,
    alternate,
    bench_context,
    bench_instance,
    bench_main,
    finish,
    header,
    load_note,
    median,
    paired,
    parser,
    pct,
    plane,
    say,
    verdict,
    write_h264,
)

from lumiera.shm import ring
from lumiera.testing import Instance, Tap
from lumiera.vault.media import SEEK_AHEAD, MediaPool

WIDTH, HEIGHT = 1920, 1080
SIZE = (WIDTH, HEIGHT)
RATE = 25
GOP = 250
PRESET = "ultrafast"
FORMATS = ("yuv420p", "rgb24")
AIM_DECODE_OF_PYAV = 0.95  # the Vault decodes at 95% of plain PyAV or better
RING = "render"
RING_DEF = f"{RING}:block:4:8"
START_TIMEOUT_S = 30.0
FRAME_TIMEOUT_S = 30.0
SEED = 20240611


# -- media -------------------------------------------------------------------------------


def _texture(rng: np.random.Generator, h: int, w: int, cell: int) -> Pixels:
    small = rng.integers(0, 256, (h // cell + 2, w // cell + 2), dtype=np.uint8)
    big: Pixels = np.repeat(np.repeat(small, cell, 0), cell, 1)[:h, :w]
    return big


def make_media(path: Path, frames: int, seed: int) -> Media:
    """A 1080p H.264 file of ``frames`` frames: a random texture panning diagonally."""
    rng = np.random.default_rng(seed)
    pan = 2 * frames + 8
    coarse = _texture(rng, HEIGHT + 2 * pan, WIDTH + 3 * pan, 24) // 2
    fine = _texture(rng, HEIGHT + 2 * pan, WIDTH + 3 * pan, 6) // 8
    y = (coarse + fine + 48).astype(np.uint8)
    ch, cw = HEIGHT // 2, WIDTH // 2
    u = (_texture(rng, ch + pan, cw + 2 * pan, 8) // 2 + 64).astype(np.uint8)
    v = (_texture(rng, ch + pan, cw + 2 * pan, 8) // 2 + 64).astype(np.uint8)

    def paint(frame: av.VideoFrame, k: int) -> None:
        plane(frame, 0)[:] = y[2 * k : 2 * k + HEIGHT, 3 * k : 3 * k + WIDTH]
        plane(frame, 1)[:] = u[k : k + ch, 2 * k : 2 * k + cw]
        plane(frame, 2)[:] = v[k : k + ch, k : k + cw]

    options = {"preset": PRESET, "g": str(GOP), "keyint_min": str(GOP), "sc_threshold": "0"}
    return write_h264(path, frames, paint, size=SIZE, rate=RATE, options=options)


# -- decode ------------------------------------------------------------------------------


def vault_decode(path: Path, n: int, fmt: str) -> float:
    """Frames/s of ``pool.frame(path, i, fmt, SIZE)`` for i = 0..n-1 on a fresh pool."""
    name = str(path)
    t0 = time.perf_counter()
    pool = MediaPool()
    try:
        for i in range(n):
            pool.frame(name, i, fmt, SIZE)
        return n / (time.perf_counter() - t0)
    finally:
        pool.close()


def pyav_decode(path: Path, n: int, fmt: str) -> float:
    """Frames/s of plain PyAV: decode from the start, ``to_ndarray(format=fmt)``, n frames."""
    t0 = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        got = 0
        for frame in container.decode(stream):
            frame.to_ndarray(format=fmt)
            got += 1
            if got == n:
                break
    if got != n:
        raise RuntimeError(f"plain PyAV: {path} has {got} frames, not {n}")
    return n / (time.perf_counter() - t0)


def pyav_planes(frame: Any) -> tuple[Pixels, ...]:
    """yuv420p planes of a frame as plain PyAV gives them (one array, split)."""
    whole = frame.to_ndarray(format="yuv420p")
    ch, cw = HEIGHT // 2, WIDTH // 2
    return (
        whole[:HEIGHT],
        whole[HEIGHT : HEIGHT + ch // 2].reshape(ch, cw),
        whole[HEIGHT + ch // 2 :].reshape(ch, cw),
    )


def check_decode(ctx: BenchContext, path: Path, frames: int) -> None:
    """The Vault and plain PyAV give the same pixels, in both formats (a few frames)."""
    name = str(path)
    wanted = {0, 1, frames // 2, frames - 1}
    pool = MediaPool()
    try:
        with av.open(name) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                if i > max(wanted):
                    break
                if i not in wanted:
                    continue
                mine = pool.frame(name, i, "yuv420p", SIZE)
                assert isinstance(mine, tuple)
                theirs = pyav_planes(frame)
                if not all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True)):
                    ctx.problems.append(f"decode: yuv420p frame {i} differs from plain PyAV")
                if not np.array_equal(
                    pool.frame(name, i, "rgb24", SIZE), frame.to_ndarray(format="rgb24")
                ):
                    ctx.problems.append(f"decode: rgb24 frame {i} differs from plain PyAV")
    finally:
        pool.close()


@dataclass
class DecodeRun:
    fps: float
    cpu_ms: float  # CPU time of this process (decoder threads included) per frame
    others: float


@dataclass
class DecodeResult:
    frames: int
    runs: dict[tuple[str, str], list[DecodeRun]] = field(default_factory=dict)

    def add(self, fmt: str, method: str, run: DecodeRun) -> None:
        self.runs.setdefault((fmt, method), []).append(run)

    def each(self, fmt: str, method: str) -> list[DecodeRun]:
        return self.runs.get((fmt, method), [])

    def best(self, fmt: str, method: str) -> float:
        return max((r.fps for r in self.each(fmt, method)), default=float("nan"))

    def cpu_ms(self, fmt: str, method: str) -> float:
        return median([r.cpu_ms for r in self.each(fmt, method)])

    def paired(self, fmt: str) -> float:
        """Median over the rounds of Vault / PyAV frames/s (the two runs of a round adjoin)."""
        return paired(
            [r.fps for r in self.each(fmt, "vault")], [r.fps for r in self.each(fmt, "pyav")]
        )


def bench_decode(media: Media, n: int, repeats: int) -> DecodeResult:
    res = DecodeResult(n)
    methods = {"vault": vault_decode, "pyav": pyav_decode}

    def run(fmt: str, method: str) -> Callable[[int], None]:
        def once(r: int) -> None:
            before = Cpu.now()
            cpu0 = time.process_time()
            fps = methods[method](media.path, n, fmt)
            cpu_ms = (time.process_time() - cpu0) / n * 1000
            others = Cpu.now().since(before).others
            res.add(fmt, method, DecodeRun(fps, cpu_ms, others))
            say(
                f"  {r + 1}/{repeats} {fmt:7} {method:5} {fps:6.1f} frames/s,"
                f" CPU {cpu_ms:.2f} ms/frame (others {others:.2f} cores)"
            )

        return once

    # a Vault and a PyAV run back to back per format; who goes first alternates
    alternate({f"{f} {m}": run(f, m) for f in FORMATS for m in methods}, repeats)
    return res


# -- random access -----------------------------------------------------------------------


def naive_fetch(path: Path, index: int) -> Pixels:
    """Frame ``index`` the exact, naive way: open the file, decode from the start up to it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for k, frame in enumerate(container.decode(stream)):
            if k == index:
                pixels: Pixels = np.asarray(frame.to_ndarray(format="rgb24"), np.uint8)
                return pixels
    raise RuntimeError(f"naive: {path} has no frame {index}")


@dataclass
class RandomResult:
    picks: list[int]
    vault_ms: list[float]
    naive_ms: list[float]
    seeks: int
    forward: int  # picks at most SEEK_AHEAD after the one before: decoded through, no seek
    others: float


def bench_random(ctx: BenchContext, media: Media, samples: int) -> RandomResult:
    name = str(media.path)
    rng = random.Random(SEED)
    picks = [rng.randrange(media.frames) for _ in range(samples)]
    vault_ms: list[float] = []
    naive_ms: list[float] = []
    pool = MediaPool()
    clock = time.perf_counter
    before = Cpu.now()
    try:
        pool.frame(name, 0, "rgb24")  # open the file: one pool, kept open
        seeks0 = pool.seeks
        for k, n in enumerate(picks):
            t0 = clock()
            mine = pool.frame(name, n, "rgb24", SIZE)
            t1 = clock()
            theirs = naive_fetch(media.path, n)
            t2 = clock()
            vault_ms.append((t1 - t0) * 1000)
            naive_ms.append((t2 - t1) * 1000)
            if not np.array_equal(mine, theirs):
                ctx.problems.append(f"random access: frame {n} differs from the naive decode")
            say(
                f"  {k + 1}/{samples} frame {n:4}: vault {vault_ms[-1]:7.1f} ms,"
                f" naive {naive_ms[-1]:7.1f} ms"
            )
        seeks = pool.seeks - seeks0
    finally:
        pool.close()
    others = Cpu.now().since(before).others
    prev = [0, *picks[:-1]]
    forward = sum(1 for p, n in zip(prev, picks, strict=True) if p < n <= p + 1 + SEEK_AHEAD)
    return RandomResult(picks, vault_ms, naive_ms, seeks, forward, others)


# -- render through the Engine -----------------------------------------------------------


@dataclass
class Pass:
    """One render request of frames 0..N-1, as the consumer and the engine saw it."""

    frames: int
    seconds: float  # request to the last frame released
    engine_cores: float
    others: float
    engine_s: float  # what engine.render.done says
    missed: int
    faults: float  # minor page faults of the engine process, per frame
    decoded: int  # source frames the stream's clip readers decoded (engine.render.done)
    misses: int  # frame-cache misses: render jobs that had to decode for themselves

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


@dataclass
class RenderRun:
    workers: int
    cold: Pass  # the first request of a fresh engine
    warm: Pass  # the same request again at once


def build_session(inst: Instance, a: Media, b: Media, count: int) -> dict[str, Any]:
    """Two media, two tracks, a clip on each over frames 0..count-1; its timeline."""

    def add(command: str, args: dict[str, Any]) -> str:
        answer = inst.request("session", command, args)
        return str(answer["applied"]["id"])

    ma = add("add_media", {"path": str(a.path)})
    mb = add("add_media", {"path": str(b.path)})
    t1 = add("add_track", {"name": "V1"})
    t2 = add("add_track", {"name": "V2"})
    inst.request("session", "set_output", {"width": WIDTH, "height": HEIGHT})
    inst.request(
        "session", "add_clip", {"media": ma, "track": t1, "position": 0, "source_out": count}
    )
    inst.request(
        "session",
        "add_clip",
        {"media": mb, "track": t2, "position": 0, "source_out": count, "opacity": 0.5},
    )
    timeline: dict[str, Any] = inst.request("session", "timeline")  # as the Engine takes it
    return timeline


def render_pass(
    ctx: BenchContext, inst: Instance, timeline: dict[str, Any], count: int, what: str
) -> Pass:
    """``engine render`` of frames 0..count-1, consumed here; timed to the last release."""
    engine = inst.pid_of("engine")
    tap = Tap(inst.rd, ["engine.render."])
    consumer = ring.Consumer(inst.rd, RING, timeout=FRAME_TIMEOUT_S)
    pts: list[int] = []
    try:
        with inst.client(timeout=FRAME_TIMEOUT_S) as client:
            misses0 = int(client.request("engine", "describe")["cache"]["misses"])
            before = Cpu.now([engine])
            t0 = time.perf_counter()
            started = client.request(
                "engine",
                "render",
                {"timeline": timeline, "first": 0, "count": count, "ring": RING},
            )
            for _ in range(count):
                frame = consumer.acquire(FRAME_TIMEOUT_S)
                pts.append(frame.pts)
                consumer.release(frame)
            seconds = time.perf_counter() - t0
            span = Cpu.now([engine]).since(before)
            done = tap.wait_topic("engine.render.done", FRAME_TIMEOUT_S)
            misses = int(client.request("engine", "describe")["cache"]["misses"]) - misses0
    finally:
        consumer.close()
        tap.close()
    if started.get("frames") != count:
        ctx.problems.append(f"render {what}: answered {started}, not {count} frames")
    if pts != list(range(count)):
        wrong = next((i for i, p in enumerate(pts) if p != i), len(pts))
        ctx.problems.append(f"render {what}: pts out of order from frame {wrong}")
    if done.get("frames") != count or done.get("failed"):
        ctx.problems.append(f"render {what}: the engine reports {done}")
    if done.get("decoded") != 2 * count:
        ctx.problems.append(
            f"render {what}: {done.get('decoded')} source frames decoded, not {2 * count}"
            " (the frame cache served some: the figure flatters)"
        )
    return Pass(
        count,
        seconds,
        span.cores(engine),
        span.others,
        float(done.get("seconds") or float("nan")),
        int(done.get("missed") or 0),
        span.pids[engine].faults / count,
        int(done.get("decoded") or 0),
        misses,
    )


def render_once(
    ctx: BenchContext, a: Media, b: Media, count: int, workers: int, *, k: int
) -> RenderRun:
    session_file = ctx.base / f"render-{workers}-{k}.lumiera"
    try:
        with bench_instance(
            ctx,
            ["--headless", str(session_file)],
            [f"rings.declared={RING_DEF}", f"engine.workers={workers}"],
        ) as inst:
            timeline = build_session(inst, a, b, count)
            inst.request("engine", "ping")  # the engine answers: its loop is up
            cold = render_pass(ctx, inst, timeline, count, f"({workers} workers, cold)")
            warm = render_pass(ctx, inst, timeline, count, f"({workers} workers, warm)")
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{session_file}{suffix}").unlink(missing_ok=True)
    return RenderRun(workers, cold, warm)


def worker_counts() -> list[int]:
    cores = os.cpu_count() or 1
    counts = [1]
    w = 2
    while w < cores:
        counts.append(w)
        w *= 2
    if cores > 1:
        counts.append(cores)
    return counts


def bench_render(
    ctx: BenchContext, a: Media, b: Media, count: int, repeats: int
) -> list[RenderRun]:
    runs: list[RenderRun] = []

    def run(workers: int) -> Callable[[int], None]:
        def once(r: int) -> None:
            run = render_once(ctx, a, b, count, workers, k=r)
            runs.append(run)
            for name, got in (("cold", run.cold), ("warm", run.warm)):
                say(
                    f"  {r + 1}/{repeats} workers {workers} {name}: {got.fps:5.1f} frames/s"
                    f" ({got.seconds:.2f} s; engine {got.engine_cores:.2f} cores,"
                    f" {got.faults:,.0f} page faults/frame, {got.decoded} decoded,"
                    f" {got.misses} cache misses; others {got.others:.2f})"
                )

        return once

    alternate({str(w): run(w) for w in worker_counts()}, repeats)  # against drift
    return runs


# -- memory ------------------------------------------------------------------------------


def fresh_memory_s(mb: int = 512) -> tuple[float, float]:
    """Seconds to touch ``mb`` MB of fresh memory (one write per page), twice over."""
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        block = np.empty(mb * 2**20, np.uint8)
        block[::4096] = 1
        times.append(time.perf_counter() - t0)
        del block
    return times[0], times[1]


# -- report ------------------------------------------------------------------------------


def listed(runs: Sequence[DecodeRun]) -> str:
    return ", ".join(f"{r.fps:.0f}" for r in runs)


def most_others(runs: Sequence[DecodeRun]) -> float:
    return max((r.others for r in runs), default=float("nan"))


def best_render(runs: Sequence[RenderRun], workers: int, cold: bool = False) -> Pass | None:
    mine = [r.cold if cold else r.warm for r in runs if r.workers == workers]
    return max(mine, key=lambda p: p.fps) if mine else None


def decode_rows(t: Table, dec: DecodeResult) -> None:
    for fmt in FORMATS:
        vault, pyav = dec.best(fmt, "vault"), dec.best(fmt, "pyav")
        ratio = dec.paired(fmt)
        headline = " (JSON)" if fmt == "yuv420p" else ""
        vr, pr = dec.each(fmt, "vault"), dec.each(fmt, "pyav")
        t.add(
            f"decode {fmt}, Vault MediaPool.frame{headline}",
            f"{vault:,.1f} /s",
            f">= {AIM_DECODE_OF_PYAV:.0%} PyAV",
            verdict(ratio, AIM_DECODE_OF_PYAV),
            how=f"{ratio:.1%} of PyAV (median of the rounds' ratios), {vault / pyav:.1%} (best vs"
            f" best); runs {listed(vr)}; CPU {dec.cpu_ms(fmt, 'vault'):.2f}"
            f" ms/frame; others <= {most_others(vr):.2f} cores",
        )
        t.add(
            f"decode {fmt}, plain PyAV{headline}",
            f"{pyav:,.1f} /s",
            how=f"decode + to_ndarray; runs {listed(pr)}; CPU {dec.cpu_ms(fmt, 'pyav'):.2f}"
            f" ms/frame; others <= {most_others(pr):.2f} cores",
        )


def random_rows(t: Table, rnd: RandomResult, frames: int) -> None:
    v50, n50 = median(rnd.vault_ms), median(rnd.naive_ms)
    t.add(
        "random access, Vault (one pool), p50 / p90",
        f"{v50:,.0f} / {pct(rnd.vault_ms, 90):,.0f} ms",
        how=f"{len(rnd.picks)} frames of {frames} (GOP {GOP}), rgb24; {rnd.seeks} seeks, "
        f"{rnd.forward} decoded forward; min {min(rnd.vault_ms):.0f},"
        f" max {max(rnd.vault_ms):.0f} ms",
    )
    t.add(
        "random access, naive (open, decode from 0)",
        f"{n50:,.0f} / {pct(rnd.naive_ms, 90):,.0f} ms",
        how=f"the same frames; min {min(rnd.naive_ms):.0f}, max {max(rnd.naive_ms):.0f} ms;"
        f" others {rnd.others:.2f} cores",
    )
    t.add(
        "  naive / Vault at p50",
        f"{n50 / v50:.1f}x",
        how=f"mean {sum(rnd.naive_ms) / sum(rnd.vault_ms):.1f}x",
    )


def _pass_how(p: Pass) -> str:
    return (
        f"{p.frames} frames in {p.seconds:.2f} s (engine says {p.engine_s:.2f} s, {p.missed} late);"
        f" engine {p.engine_cores:.2f} cores, {p.faults:,.0f} page faults/frame;"
        f" {p.decoded} source frames decoded, {p.misses} cache misses; others {p.others:.2f}"
    )


def render_rows(t: Table, render: list[RenderRun]) -> None:
    one = best_render(render, 1)
    for workers in worker_counts():
        warm, cold = best_render(render, workers), best_render(render, workers, True)
        if warm is None or cold is None:
            continue
        each = ", ".join(
            f"{r.warm.fps:.1f}/{r.cold.fps:.1f}" for r in render if r.workers == workers
        )
        scale = f"{warm.fps / one.fps:.2f}x 1 worker; " if one is not None and workers > 1 else ""
        t.add(
            f"render 2 tracks 1080p rgb24, {workers} worker{'s' if workers > 1 else ''}",
            f"{warm.fps:,.1f} /s",
            how=f"{scale}{_pass_how(warm)}; warm/cold of each run: {each}",
        )
        t.add("  its first request (cold engine)", f"{cold.fps:,.1f} /s", how=_pass_how(cold))


@dataclass
class Report:
    a: Media
    b: Media
    dec: DecodeResult
    rnd: RandomResult
    render: list[RenderRun]
    memory_s: tuple[float, float]


def report(ctx: BenchContext, p: Plan, rep: Report) -> int:
    t = Table("figure", "value", "aim", "ok?", "how")
    decode_rows(t, rep.dec)
    random_rows(t, rep.rnd, rep.a.frames)
    render_rows(t, rep.render)
    versions = (
        f"PyAV {av.__version__}, "
        f"libavcodec {'.'.join(map(str, av.library_versions.get('libavcodec', ())))},"
        f" numpy {np.__version__}"
    )
    lines = [
        *header("lumiera vault benchmark", versions),
        f"mode: {'quick' if ctx.quick else 'full'}; {ctx.elapsed():.1f} s",
        f"media: {WIDTH}x{HEIGHT} H.264 {PRESET}, GOP {GOP}, {RATE} fps; A {rep.a.frames} frames "
        f"({rep.a.mbit_s:.0f} Mbit/s, encoded in {rep.a.encode_s:.1f} s), B {rep.b.frames} frames",
        f"decode: {rep.dec.frames} frames from the start, {p.repeats} rounds of a Vault and a"
        " PyAV run back to back (who goes first alternates), thread_type AUTO both ways;"
        " the figure is the BEST run, the verdict the MEDIAN over the rounds of Vault/PyAV",
        f"render: a fresh instance per run, {p.render_repeats} run(s) per worker count; ring"
        f" {RING_DEF}; each run renders frames 0..N-1 twice: cold (the engine's first"
        " request) and warm (at once again; the figure); BEST of the runs",
        "others: CPU used meanwhile by other processes, in cores",
        f"memory: 512 MB of fresh memory first touched in {rep.memory_s[0]:.2f} s, then again"
        f" in {rep.memory_s[1]:.2f} s",
        *load_note(ctx.load_at_start),
    ]
    top = best_render(rep.render, worker_counts()[-1])
    one = best_render(rep.render, 1)
    fig = {
        "vault_decode_fps": rep.dec.best("yuv420p", "vault"),
        "pyav_decode_fps": rep.dec.best("yuv420p", "pyav"),
        "random_access_ms_p50": median(rep.rnd.vault_ms),
        "naive_random_access_ms_p50": median(rep.rnd.naive_ms),
        "render_fps": top.fps if top else float("nan"),
        "render_fps_1_worker": one.fps if one else float("nan"),
    }
    return finish(lines, t, ctx.problems, fig, 1)


# -- main --------------------------------------------------------------------------------


@dataclass
class Plan:
    frames_a: int  # file A: decode, random access, bottom track
    decode: int  # frames per decode run
    repeats: int  # decode runs per format and method
    samples: int  # random fetches
    render: int  # frames per render (and file B's length)
    render_repeats: int


def plan(quick: bool) -> Plan:
    if quick:
        return Plan(frames_a=300, decode=100, repeats=4, samples=6, render=60, render_repeats=1)
    return Plan(frames_a=500, decode=300, repeats=7, samples=30, render=250, render_repeats=2)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser(__doc__, "smaller counts (< 60 s)").parse_args(argv)
    p = plan(args.quick)

    with bench_context("lumvault-", args.quick) as ctx:
        base = ctx.base
        say(f"media: encoding {p.frames_a} + {p.render} frames of 1080p H.264")
        a = make_media(base / "a.mp4", p.frames_a, 1)
        b = make_media(base / "b.mp4", p.render, 2)
        say(f"  {a.encode_s + b.encode_s:.1f} s; A {a.mbit_s:.0f} Mbit/s")
        say(f"decode: {p.decode} frames, {p.repeats} runs per format and method")
        check_decode(ctx, a.path, p.decode)
        dec = bench_decode(a, p.decode, p.repeats)
        say(f"random access: {p.samples} frames of {a.frames}")
        rnd = bench_random(ctx, a, p.samples)
        say(f"render: {p.render} frames, workers {worker_counts()}, {p.render_repeats} run(s) each")
        render = bench_render(ctx, a, b, p.render, p.render_repeats)
        memory_s = fresh_memory_s()
        say(f"memory: 512 MB touched in {memory_s[0]:.2f} s, again in {memory_s[1]:.2f} s")
    return report(ctx, p, Report(a, b, dec, rnd, render, memory_s))


if __name__ == "__main__":
    bench_main(main)
