"""Benchmark of rendering on a render farm on this machine: local, 1 to N nodes, and ffmpeg.

Run from the repository root with the project's interpreter::

    .venv/bin/python tools/bench_farm.py                      # full run (about 3 minutes, 2 cores)
    .venv/bin/python tools/bench_farm.py --quick              # within 90 s on 2 cores
    .venv/bin/python tools/bench_farm.py --nodes 1,2,4,8,16   # the curve, on a machine of 16 cores

Prints a table (frames/s per configuration, its ratio to the local render and to
the ffmpeg command line, the CPU it used) and, as the very last line of stdout,
one JSON object: ``local_fps``, ``farm_fps_1``, ``farm_fps_2``, ``farm_fps_4``
(and ``farm_fps_N`` for every other N of ``--nodes``; null for one not run),
``ffmpeg_fps`` (null without ffmpeg), ``nodes_max``, ``jobs_fps_max``,
``segment_frames``, ``frames``, ``cores``. Progress goes to stderr.

What is measured, and how (every figure is the wall clock of one command, end
to end, as a user of it sees it; frames/s = frames / those seconds):

* media and session: those of ``tools/bench_render.py`` (its ``make_media`` and
  ``build_session``): two 1080p H.264 files (25 fps, 250 frames; ``--quick``:
  100), A on track V1 and B at opacity 0.5 on V2 over the whole timeline,
  output 1920x1080, built over the bus of a headless instance into a session
  file; the instance is then stopped, and every render below reads that file.
* ``local``: ``lumiera render SESSION -o OUT`` (codec ``h264``: libx264
  ultrafast, yuv420p, MP4, as bench_render's pipeline): one instance of its own
  renders the whole timeline.
* ``farm N``, for each N of ``--nodes`` (default 1,2,4): ``lumiera farm up
  --workers N --port 0 --runtime-dir DIR`` first, not timed (it prints the
  address once all N nodes have joined: the nodes are up, as a user of ``farm
  up`` has them), and ``lumiera farm status --json`` must show N workers. Then
  ``lumiera render SESSION -o OUT --farm ADDRESS --codec h264 --segment-frames
  S`` is timed (S: ``--segment-frames``; default about two segments per node of
  the largest farm, the same S for every N). Then ``lumiera farm down``, always
  (also when a render fails, on Ctrl-C and SIGTERM).
* ``jobs N`` (N the largest of ``--nodes``): ``lumiera render ... --jobs N``,
  which makes a farm of N nodes for the one render and stops it: what a user of
  ``--jobs`` waits for, node start included (that start, as the command says it,
  is shown beside it).
* ``ffmpeg``: ``ffmpeg -i A -i B -filter_complex "[0:v][1:v]blend=all_opacity=0.5"
  -c:v libx264 -preset ultrafast -pix_fmt yuv420p OUT.mp4``, the same work by the ffmpeg command
  line, where ffmpeg is installed (else the report says so and ``ffmpeg_fps``
  is null).
* Every output's video packets are counted (demuxed with PyAV); a file that
  does not hold exactly the timeline's frames is a problem (exit status 1), not
  a figure.
* CPU: this process's children (the render command and its instance, ffmpeg),
  plus, for a farm render, the farm's processes (scheduler and nodes, from
  /proc), in cores over the command's wall time; "others": what the rest of the
  machine used meanwhile (the farm's processes excepted).
* Rounds (``--rounds``; default 2, ``--quick`` 1): every configuration once per
  round, in mirrored order (A B C, C B A) against drift; the figure is the
  BEST run of each (interference only ever slows a run down), all runs listed.

Everything lives in one temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
from bench_render import CODEC, FRAMES, OPACITY, PRESET, RATE, build_session, make_media, packets_of
from harness import (
    ABSENT_FFMPEG,
    RENDERED,
    BenchContext,
    Cpu,
    Media,
    Table,
    alternate,
    bench_context,
    bench_instance,
    bench_main,
    blend_filter,
    ffmpeg_blend,
    finish,
    header,
    load_note,
    parser,
    run_command,
    say,
    tree_cpu_s,
    verdict,
    which_ffmpeg,
)

QUICK_FRAMES = 100
NODES = (1, 2, 4)
ROUNDS, QUICK_ROUNDS = 2, 1
AIM_OF_LOCAL = 0.85  # 2 nodes within 15% of the local render (on a machine of 2 cores)
AIM_OF_FFMPEG = 2.0  # the best farm at 2x the ffmpeg command line ...
AIM_FFMPEG_CORES = 16  # ... on a machine of this many cores
RENDER_TIMEOUT_S = 600.0
FARM_UP_TIMEOUT_S = 120.0
FARM_DOWN_TIMEOUT_S = 60.0
LUMIERA = (sys.executable, "-m", "lumiera")
BLEND = blend_filter(OPACITY)

NODES_UP = re.compile(r"(\d+) render nodes up in ([0-9.]+) s")  # --jobs: its farm's start
ON_NODES = re.compile(r"(\d+) frames in (\d+) segments on \S+ \((\d+) render nodes\)")


# -- the runs ----------------------------------------------------------------------------


@dataclass
class Run:
    """One timed render of the timeline by one configuration."""

    name: str
    frames: int
    seconds: float
    cpu_s: float  # the command and what it started, and the farm's processes
    others: float  # cores the rest of the machine used meanwhile
    inside_s: float | None = None  # the command's own report of its time (lumiera render)
    start_s: float | None = None  # --jobs: its farm's start, as it says
    nodes: int | None = None  # a farm render: the nodes it saw

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    @property
    def cores(self) -> float:
        return self.cpu_s / self.seconds


@dataclass
class Bench:
    """What every run needs: the context, the files, the frames, the segment length."""

    ctx: BenchContext
    a: Media
    b: Media
    session: Path
    frames: int
    segment_frames: int
    keyframes: list[int] = field(default_factory=list)  # A's, as frame numbers
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def output(self, name: str, k: int) -> Path:
        return self.ctx.base / f"{name.replace(' ', '-')}-{k}.mp4"

    def check(self, run: Run, out: Path, k: int) -> None:
        """The output must hold the timeline's frames; a problem otherwise."""
        try:
            packets, _ = packets_of(out)
        except (OSError, av.FFmpegError) as e:
            self.ctx.problems.append(f"{run.name} round {k + 1}: {out.name} unreadable: {e}")
            return
        finally:
            out.unlink(missing_ok=True)
        if packets != self.frames:
            self.ctx.problems.append(
                f"{run.name} round {k + 1}: {packets} frames in the file, not {self.frames}"
            )

    def render(
        self, name: str, k: int, extra: Sequence[str], farm_pid: int | None = None
    ) -> Run | None:
        """``lumiera render SESSION -o OUT --codec h264 EXTRA``, timed and checked."""
        out = self.output(name, k)
        argv = [*LUMIERA, "render", str(self.session), "-o", str(out), "--codec", CODEC, *extra]
        argv += ["--runtime-dir", str(self.ctx.runtime_dir().path)]
        farm_before = tree_cpu_s(farm_pid) if farm_pid else 0.0
        before = Cpu.now()
        done = run_command(argv, self.ctx.env, RENDER_TIMEOUT_S)
        span = Cpu.now().since(before)
        farm_cpu = tree_cpu_s(farm_pid) - farm_before if farm_pid else 0.0
        if done.code != 0:
            self.ctx.problems.append(
                f"{name} round {k + 1}: lumiera render exited with {done.code}:\n{done.tail()}"
            )
            out.unlink(missing_ok=True)
            return None
        said = RENDERED.search(done.stdout)
        up = NODES_UP.search(done.stderr)
        on = ON_NODES.search(done.stderr)
        wall = span.wall
        run = Run(
            name,
            self.frames,
            done.seconds,
            span.own.cpu_s + farm_cpu,
            max(0.0, span.others - farm_cpu / wall),
            inside_s=float(said.group(2)) if said else None,
            start_s=float(up.group(2)) if up else None,
            nodes=int(on.group(3)) if on else None,
        )
        self.check(run, out, k)
        return run

    def record(self, run: Run | None, k: int) -> None:
        if run is None:
            return
        self.runs.setdefault(run.name, []).append(run)
        extra = ""
        if run.inside_s is not None:
            extra += f"; the command says {run.inside_s:.2f} s"
        if run.start_s is not None:
            extra += f", its nodes' start {run.start_s:.2f} s"
        say(
            f"  round {k + 1}: {run.name:<9} {run.fps:6.1f} frames/s ({run.seconds:.2f} s;"
            f" {run.cores:.2f} cores{extra}; others {run.others:.2f} cores)"
        )

    # -- the configurations --

    def local(self, k: int) -> None:
        self.record(self.render("local", k, []), k)

    def farm(self, nodes: int) -> Callable[[int], None]:
        def run(k: int) -> None:
            name = f"farm {nodes}"
            with farm_up(self.ctx, nodes, self.ctx.base / f"farm{nodes}-{k}") as (address, pid):
                extra = ["--farm", address, "--segment-frames", str(self.segment_frames)]
                result = self.render(name, k, extra, farm_pid=pid)
                if result is not None and result.nodes != nodes:
                    self.ctx.problems.append(
                        f"{name} round {k + 1}: the render saw {result.nodes} nodes, not {nodes}"
                    )
                self.record(result, k)

        return run

    def jobs(self, nodes: int) -> Callable[[int], None]:
        def run(k: int) -> None:
            extra = ["--jobs", str(nodes), "--segment-frames", str(self.segment_frames)]
            self.record(self.render(f"jobs {nodes}", k, extra), k)

        return run

    def ffmpeg(self, binary: str) -> Callable[[int], None]:
        def run(k: int) -> None:
            out = self.output("ffmpeg", k)
            argv = ffmpeg_blend(
                binary, self.a.path, self.b.path, out, opacity=OPACITY, preset=PRESET
            )
            before = Cpu.now()
            done = run_command(argv, {}, RENDER_TIMEOUT_S)
            span = Cpu.now().since(before)
            if done.code != 0:
                self.ctx.problems.append(f"ffmpeg exited with {done.code}:\n{done.tail()}")
                out.unlink(missing_ok=True)
                return
            result = Run("ffmpeg", self.frames, done.seconds, span.own.cpu_s, span.others)
            self.check(result, out, k)
            self.record(result, k)

        return run

    def best(self, name: str) -> Run | None:
        runs = self.runs.get(name)
        return max(runs, key=lambda r: r.fps) if runs else None

    def fps(self, name: str) -> float:
        run = self.best(name)
        return run.fps if run else math.nan


@contextlib.contextmanager
def farm_up(ctx: BenchContext, nodes: int, where: Path) -> Iterator[tuple[str, int]]:
    """``lumiera farm up --workers N`` in ``where``: (its address, its process); always down."""
    say(f"  farm up --workers {nodes}")
    where_args = ["--runtime-dir", str(where)]
    t0 = time.perf_counter()
    try:
        up = run_command(
            [*LUMIERA, "farm", "up", "--workers", str(nodes), "--port", "0", *where_args],
            ctx.env,
            FARM_UP_TIMEOUT_S + 30,
        )
        if up.code != 0 or not up.stdout.strip():
            raise RuntimeError(f"lumiera farm up exited with {up.code}:\n{up.tail()}")
        address = up.stdout.splitlines()[0].strip()
        status = run_command([*LUMIERA, "farm", "status", "--json", *where_args], ctx.env, 60)
        if status.code != 0:
            raise RuntimeError(f"lumiera farm status exited with {status.code}:\n{status.tail()}")
        state: dict[str, Any] = json.loads(status.stdout)
        workers = state.get("workers") or []
        if len(workers) != nodes:
            raise RuntimeError(f"the farm has {len(workers)} workers, not {nodes}")
        say(f"    {address}: {nodes} nodes up in {time.perf_counter() - t0:.2f} s")
        yield address, int(state["pid"])
    finally:
        farm_down(ctx, where)


def farm_down(ctx: BenchContext, where: Path) -> None:
    """``lumiera farm down``, until it is down (a farm still starting is waited for)."""
    deadline = time.monotonic() + FARM_UP_TIMEOUT_S
    argv = [*LUMIERA, "farm", "down", "--runtime-dir", str(where)]
    while True:
        down = run_command(argv, ctx.env, FARM_DOWN_TIMEOUT_S + 30)
        if down.code == 0 or "no farm" in down.stderr:  # down, or it never ran
            break
        if "starting or stopping" not in down.stderr or time.monotonic() > deadline:
            ctx.problems.append(f"lumiera farm down exited with {down.code}:\n{down.tail()}")
            break
        time.sleep(0.5)
    shutil.rmtree(where, ignore_errors=True)


# -- report ------------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return "-" if math.isnan(a) or math.isnan(b) else f"{a / b:.2f}"


def num(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"


def report(bench: Bench, nodes: Sequence[int], ffmpeg: str | None) -> int:
    ctx = bench.ctx
    cores = len(os.sched_getaffinity(0))
    local, ff = bench.fps("local"), bench.fps("ffmpeg")
    t = Table("render", "frames/s", "/ local", "/ ffmpeg", "CPU cores", "how")
    names = ["local", *(f"farm {n}" for n in nodes), f"jobs {max(nodes)}", "ffmpeg"]
    for name in names:
        run = bench.best(name)
        if run is None:
            how = ABSENT_FFMPEG if name == "ffmpeg" and ffmpeg is None else "no run completed"
            t.add(name, "-", "-", "-", "-", how=how)
            continue
        runs = bench.runs[name]
        how = f"best of {len(runs)}: {', '.join(f'{r.fps:.1f}' for r in runs)}"
        if run.inside_s is not None:
            how += f"; {run.seconds - run.inside_s:.2f} s outside the command's own clock"
        if run.start_s is not None:
            how += f" (its nodes' start: {run.start_s:.2f} s)"
        how += f"; others {run.others:.2f} cores"
        t.add(
            name,
            f"{run.fps:.1f}",
            ratio(run.fps, local),
            ratio(run.fps, ff),
            f"{run.cores:.2f}",
            how=how,
        )
    farm2 = bench.fps("farm 2") / local
    farms = [bench.fps(f"farm {n}") for n in nodes]
    best_farm = max((f for f in farms if not math.isnan(f)), default=math.nan)
    aims = Table("aim", "value", "aim", "ok?", "how")
    aims.add(
        "farm 2 nodes / local",
        num(farm2),
        f">= {AIM_OF_LOCAL:g}",
        verdict(farm2, AIM_OF_LOCAL),
        how=f"on {cores} cores the farm shows its overhead",
    )
    of_ff = best_farm / ff
    aims.add(
        "best farm / ffmpeg",
        num(of_ff),
        f">= {AIM_OF_FFMPEG:g}",
        verdict(of_ff, AIM_OF_FFMPEG) if cores >= AIM_FFMPEG_CORES else "n/a",
        how=f"the aim of a machine of {AIM_FFMPEG_CORES} cores or more; this one has {cores}",
    )
    versions = (
        f"PyAV {av.__version__}, "
        f"libavcodec {'.'.join(map(str, av.library_versions.get('libavcodec', ())))}"
    )
    a, b = bench.a, bench.b
    lines = [
        *header("lumiera render farm benchmark", versions),
        f"mode: {'quick' if ctx.quick else 'full'}; {ctx.elapsed():.1f} s",
        f"media: bench_render's, 2 x 1920x1080 H.264 {PRESET}, {RATE} fps, {a.frames} frames;"
        f" A {a.mbit_s:.1f}, B {b.mbit_s:.1f} Mbit/s; keyframes at {bench.keyframes}"
        " (a segment's decoding starts at the keyframe before it)",
        f"render: {bench.frames} frames, V1 = A, V2 = B at opacity {OPACITY:g}, to {CODEC}"
        f" (libx264 {PRESET}); farm renders in segments of {bench.segment_frames} frames"
        f" ({-(-bench.frames // bench.segment_frames)} segments); nodes {nodes}",
        "each figure: the wall clock of the whole command, the BEST run of its rounds;"
        " CPU cores: the command, what it started, and the farm's processes",
        ffmpeg_line(ffmpeg),
        *load_note(ctx.load_at_start),
        "",
        *t.lines(),
    ]
    fig: dict[str, float | int] = {
        "local_fps": local,
        **{f"farm_fps_{n}": bench.fps(f"farm {n}") for n in sorted({*NODES, *nodes})},
        "ffmpeg_fps": ff,
        "nodes_max": max(nodes),
        "jobs_fps_max": bench.fps(f"jobs {max(nodes)}"),
        "segment_frames": bench.segment_frames,
        "frames": bench.frames,
        "cores": cores,
    }
    return finish(lines, aims, ctx.problems, fig, 2)


def keyframes(path: Path) -> list[int]:
    """The frames of the file's video stream that are keyframes (in decoding order)."""
    with av.open(str(path)) as container:
        packets = (p for p in container.demux(container.streams.video[0]) if p.size)
        return [k for k, packet in enumerate(packets) if packet.is_keyframe]


def ffmpeg_line(ffmpeg: str | None) -> str:
    if ffmpeg is None:
        return ABSENT_FFMPEG
    argv = (
        f"ffmpeg -i A -i B -filter_complex {BLEND!r} -c:v libx264 -preset {PRESET}"
        " -pix_fmt yuv420p OUT.mp4"
    )
    return f"ffmpeg: {ffmpeg}: {argv}"


# -- main --------------------------------------------------------------------------------


def node_list(text: str) -> list[int]:
    """``1,2,4`` -> [1, 2, 4]: distinct, at least 1 each, in the order given."""
    try:
        nodes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N,N,... (e.g. 1,2,4)") from None
    if not nodes or min(nodes) < 1 or len(set(nodes)) != len(nodes):
        raise argparse.ArgumentTypeError(f"{text!r}: distinct numbers of 1 or more")
    return nodes


def default_segment_frames(frames: int, nodes_max: int) -> int:
    """About two segments per node of the largest farm."""
    return max(1, -(-frames // (2 * nodes_max)))


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__, f"{QUICK_FRAMES} frames, one round (within 90 s on 2 cores)")
    p.add_argument(
        "--nodes", type=node_list, default=list(NODES), metavar="N,N,...",
        help="the farms' sizes (default: 1,2,4)",
    )  # fmt: skip
    p.add_argument("--frames", type=int, help=f"the timeline's length (default: {FRAMES})")
    p.add_argument("--segment-frames", type=int, metavar="S", help="default: 2 per node at most")
    p.add_argument("--rounds", type=int, help=f"default: {ROUNDS} ({QUICK_ROUNDS} with --quick)")
    p.add_argument("--ffmpeg", help="the ffmpeg to compare with (default: ffmpeg on PATH)")
    args = p.parse_args(argv)
    nodes: list[int] = args.nodes
    frames = args.frames or (QUICK_FRAMES if args.quick else FRAMES)
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    segment = args.segment_frames or default_segment_frames(frames, max(nodes))
    if frames < 1 or rounds < 1 or segment < 1:
        p.error("--frames, --rounds and --segment-frames: at least 1")
    ffmpeg = which_ffmpeg(args.ffmpeg)
    if ffmpeg is None:
        say(ABSENT_FFMPEG)

    with bench_context("lumfarm-", args.quick) as ctx:
        base = ctx.base
        say(f"media: encoding 2 x {frames} frames of 1080p H.264")
        a = make_media(base / "a.mp4", frames, 1)
        b = make_media(base / "b.mp4", frames, 2)
        session = base / "render.lumiera"
        with bench_instance(ctx, ["--headless", str(session)]) as inst:
            build_session(inst, a, b, frames)
        bench = Bench(ctx, a, b, session, frames, segment, keyframes(a.path))
        variants: dict[str, Callable[[int], None]] = {"local": bench.local}
        variants.update({f"farm {n}": bench.farm(n) for n in nodes})
        variants[f"jobs {max(nodes)}"] = bench.jobs(max(nodes))
        if ffmpeg is not None:
            variants["ffmpeg"] = bench.ffmpeg(ffmpeg)
        say(
            f"render: {frames} frames, segments of {segment}; {rounds} round(s) of"
            f" {', '.join(variants)}"
        )
        alternate(variants, rounds)
        return report(bench, nodes, ffmpeg)


if __name__ == "__main__":
    bench_main(main)
