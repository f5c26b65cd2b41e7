"""Benchmark of rendering a timeline to a file, and of real-time playback, through the processes.

Run from the repository root with the project's interpreter::

    .venv/bin/python tools/bench_render.py            # full run (2 to 3 minutes)
    .venv/bin/python tools/bench_render.py --quick    # under a minute on 2 cores

Prints a table (figures beside the aim, pass/MISS) and, as the very last line
of stdout, one JSON object with the headline figures. Progress goes to stderr.

What is measured, and how (lumiera's modules are compiled to bytecode first, as
pip does for an installed package: ``harness.context.precompile``):

* media: two 1080p (1920x1080) H.264 files in MP4 at 25 fps, 250 frames (10 s)
  each, written with PyAV (libx264, preset ultrafast, yuv420p). Picture: a
  blocky random texture panning sideways over a diagonal gradient, with a
  bright box crossing it (a different texture, box and direction per file).
* render through lumiera (``pipeline``): ``lumiera up --headless SESSIONFILE``
  with the default configuration (``engine.workers`` 0: one worker per core).
  Over the bus: ``session add_media`` A and B, ``add_track`` V1 and V2,
  ``set_output`` 1920x1080 (25 fps), ``add_clip`` A on V1 and B on V2, both
  over frames 0..249, B at opacity 0.5. Then ``player render`` to an MP4 with
  codec ``h264`` (libx264 ultrafast, yuv420p): the Engine decodes and
  composites the frames (yuv420p) into the ring ``render-1920x1080``, the
  Player reads them in order and encodes. Timed from just before the request
  to the arrival of ``player.render.done`` on a SUB socket (subscribed before
  the request): the file is complete and renamed by then. frames/s =
  250 / that time. Beside it: the CPU and the minor page faults of each
  process meanwhile (from /proc), the Engine's own ``engine.render.done`` report, and the file's
  frame count (packets of its video stream, demuxed), which must be 250.
* render in one process (``single process``): the same two files decoded with
  PyAV (``thread_type`` AUTO: FFmpeg's frame threads, which a loop that decodes,
  composites and encodes one frame after the other needs for any parallelism;
  the Vault's decoders run one thread each on 2 cores, see
  ``lumiera.vault.streamspec.decode_threads``), composited exactly as
  lumiera does, per yuv420p plane ``lumiera.vault.composite.over(A, B, 0.5,
  out)`` (B over the bottom clip A; ``out`` is the encoder's frame, so no copy
  is made), and encoded as lumiera's ``h264`` codec does (libx264, preset
  ultrafast, yuv420p, frame threads, MP4); 250 frames, timed from the opening of the files
  to the closing of the output. Its CPU time (all threads of this process)
  and the wall time spent in each stage (waiting for the decoders, over(),
  encode and mux) are shown. The two outputs are compared packet by packet:
  same pictures in, same encoder and options, so the bitstreams should be the
  same bytes (shown; libx264 is deterministic by default).
* the command lines (``lumiera render`` and ``ffmpeg``), each as a user runs
  it, start to exit, on the issue's work: two sources made as above but of 500
  frames (20 s; ``CLI_FRAMES``), B at opacity 0.5 over A.
  ``lumiera render SESSION -o OUT --codec h264`` (its own
  instance, started and stopped by the command) of a session file of that
  timeline (built over the bus of a short-lived instance before the others
  start: a running instance holds its session file), and ``ffmpeg -i A.mp4 -i
  B.mp4 -filter_complex "[0:v][1:v]blend=all_opacity=0.5" -c:v libx264 -preset
  ultrafast -pix_fmt yuv420p OUT.mp4`` on the same two files (no sound: video
  only) where ffmpeg is installed (else the report says so plainly and its
  figures are null). frames/s = 500 / the wall time. CPU: user and system
  seconds of the whole process tree, from the kernel (wait4 rusage of the
  command, which counts every descendant waited for). Memory: the tree is
  sampled from /proc every 50 ms while it runs; the figure is the most it held
  at one sample, as the sum of each process's PSS (shared pages, such as the
  libraries and a shm ring, split among the processes that map them); beside
  it the sum of RSS and the largest single process (its VmHWM, the kernel's
  own peak). rusage's maxrss is not used: a child's count starts from the RSS
  of the process that forked it (this benchmark's, hundreds of MiB). Per
  process (cli, supervisor, engine, player, ...): CPU and peak RSS. The files
  must hold all 500 frames. Aims: lumiera render at least as fast as ffmpeg, with
  CPU per frame within 10% of it, in under 300 MiB.
* render with sound (``sound``): the same timeline, but each clip's media
  has a sound track too (the same pictures remuxed, with a stereo 48 kHz AAC
  track: a quiet 220 Hz tone and, on the flash frames, a 1 kHz beep; both
  files' pictures are white on those frames, 50 and 150): ``player render``
  with that timeline (``timeline``: the session's, its clips on the sounding
  media), timed the same way. The Engine mixes both clips' sound per frame
  into the render's audio ring, the Player encodes AAC beside the H.264.
  audio cost = 1 - sound fps / pipeline fps (best vs best; aim: under 10%).
  A/V offset: in each sound run's file, decoded, the time of each flash frame
  (mean luma above 200) against the onset of the beep nearest it (the first
  sample above 0.3 after 10 ms below it); the figure is the largest |offset|
  over the runs (aim: under 1 ms).
* 5 rounds (``--quick``: 1) of pipeline, single process, sound, lumiera render
  and ffmpeg, alternating (P S A C F, then F C A S P, ...); each figure is the
  BEST of its runs (interference from other processes only ever slows a run
  down), all runs are listed, with the median of the ratios of adjoining pairs.
  All pipeline runs are renders of one instance; before them, a render of its
  last 10 frames, not counted (the instance's first render opens its files,
  makes the render ring, loads libx264; the frames it leaves in the Engine's
  cache are evicted before they would be asked for again), and one with sound
  (the audio ring, the AAC encoder). The command lines have no warm-up: each
  run is the whole command.
* playback: 30 s (750 frames; ``--quick``: 10 s, 250) of the same session,
  whose clips are repeated end to end on both tracks to last that long, at
  25 fps in 1920x1080 rgb24 into the viewer ring ``viewer-1920x1080`` (drop
  policy). A short ``player play`` of a few frames first, which creates the
  ring as the Player does. The measured stream is started with ``engine
  render`` (mode ``playback``, fmt ``rgb24``, the session's timeline), not
  ``player play``: the Engine's reply gives ``start`` (its time.monotonic()
  when frame 0 is due) and ``rate``, so frame *k* is due at
  ``start + k / rate``. A ``ring.Consumer`` in this process, attached before
  the request, takes time.monotonic() as soon as each ``acquire`` returns
  (one clock for all processes of the machine) and releases the frame at
  once. latency = arrival - due, p50 and p99 over the frames received;
  drops = the ``dropped`` of the Engine's ``engine.render.done`` (frames not
  computed in time); the ring's own count of frames this reader missed must
  be 0, and received + dropped must be the frames played.
* "others": CPU used meanwhile by processes other than this benchmark (and
  the instance's engine, player and supervisor), in cores, from /proc/stat:
  the figures are only as quiet as the machine was.

Everything lives in one temporary directory that is removed at the end; the
instance is stopped in ``finally`` (SIGTERM, wait, SIGKILL as a last resort)
and checked for left-over processes, socket files and shm segments.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from harness import (
    ABSENT_FFMPEG,
    RENDERED,
    BenchContext,
    Cpu,
    Measured,
    Media,
    Table,
    alternate,
    bench_context,
    bench_instance,
    bench_main,
    command_name,
    ffmpeg_blend,
    finish,
    header,
    load_note,
    measure_command,
    median,
    paired,
    parser,
    pct,
    plane,
    say,
    verdict,
    which_ffmpeg,
    write_h264,
)

from lumiera.errors import RingTimeout
from lumiera.shm import ring
from lumiera.testing import Instance, Tap
from lumiera.vault.composite import over

WIDTH, HEIGHT = 1920, 1080
RATE = 25
FRAMES = 250  # the render: 10 s
# The command lines: the work, two sources of 500 frames (20 s): lumiera render
# against ffmpeg on the same files, each command whole, start to exit.
CLI_FRAMES = 500
PRESET = "ultrafast"
CODEC = "h264"  # the Player's default: libx264 ultrafast, yuv420p, MP4
OPACITY = 0.5
FLASH = (50, 150)  # frames white in both media, and beeping in their sound
SR = 48000
AIM_AUDIO_COST = 0.10  # sound costs under 10% of the render's frame rate
AIM_AV_OFFSET_MS = 1.0
AIM_OF_SINGLE = 0.9  # the pipeline at 90% of the single-process render or better
AIM_OF_FFMPEG = 1.0  # lumiera render (the whole command) at least as fast as ffmpeg's
AIM_CPU_OF_FFMPEG = 1.1  # ... with CPU per frame within 10% of it
AIM_PEAK_MIB = 300.0  # ... and its process tree's peak memory under 300 MiB
SAMPLE_EVERY_S = 0.05  # the commands' process trees, sampled from /proc
MIB = 1 << 20
VIEWER = f"viewer-{WIDTH}x{HEIGHT}"
WARMUP_FRAMES = 10  # the last frames of the timeline, rendered before the measured runs
WARMUP_PLAY = 5  # frames of the Player's play that creates the viewer ring
START_TIMEOUT_S = 30.0
RENDER_TIMEOUT_S = 300.0
END_TIMEOUT_S = 30.0


# -- media -------------------------------------------------------------------------------


def make_media(path: Path, frames: int, seed: int) -> Media:
    """A 1080p H.264 file: a texture panning over a gradient, and a box crossing it."""
    rng = np.random.default_rng(seed)
    step = 3 + seed  # pixels per frame the texture pans
    cells = rng.integers(0, 96, (HEIGHT // 8 + 1, (WIDTH + step * frames) // 8 + 2), np.uint8)
    texture = np.repeat(np.repeat(cells, 8, 0), 8, 1)[:HEIGHT]
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    gradient = ((xx * 80 // WIDTH + yy * 60 // HEIGHT) + 24).astype(np.uint8)
    ch, cw = HEIGHT // 2, WIDTH // 2
    u = np.full((ch, cw), 100 + 20 * seed, np.uint8)
    v = np.full((ch, cw), 150 - 20 * seed, np.uint8)
    box = 240

    def paint(frame: av.VideoFrame, k: int) -> None:
        y = plane(frame, 0)
        x0 = step * k if seed % 2 else step * (frames - 1 - k)
        np.add(texture[:, x0 : x0 + WIDTH], gradient, out=y)
        bx = (7 * k * (1 + seed)) % (WIDTH - box)
        by = (3 * k * (2 + seed)) % (HEIGHT - box)
        y[by : by + box, bx : bx + box] = 235
        plane(frame, 1)[:] = u
        plane(frame, 2)[:] = v
        if k in FLASH:  # white: the A/V offset's picture mark
            y[:] = 235
            plane(frame, 1)[:] = 128
            plane(frame, 2)[:] = 128

    return write_h264(
        path, frames, paint, size=(WIDTH, HEIGHT), rate=RATE, options={"preset": PRESET}
    )


def packets_of(path: Path) -> tuple[int, str]:
    """(packets with data in the video stream, SHA-256 over their bytes in order)."""
    digest = hashlib.sha256()
    n = 0
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.video[0]):
            if packet.size:
                digest.update(bytes(packet))
                n += 1
    return n, digest.hexdigest()


def with_sound(src: Path, dst: Path, frames: int, seed: int) -> Path:
    """``src``'s pictures (packets copied) and a stereo 48 kHz AAC track: a quiet tone, beeps.

    The beep (1 kHz at 0.4) sounds over exactly the samples of the FLASH frames.
    """
    per_frame = SR // RATE
    t = np.arange(frames * per_frame) / SR
    pcm = 0.02 * np.sin(2 * np.pi * (220 + 20 * seed) * t)
    for k in FLASH:
        span = slice(k * per_frame, (k + 1) * per_frame)
        pcm[span] = 0.4 * np.sin(2 * np.pi * 1000 * t[span])
    stereo = np.stack([pcm, pcm]).astype(np.float32)
    with av.open(str(src)) as ins, av.open(str(dst), "w") as out:
        video = ins.streams.video[0]
        v = out.add_stream_from_template(video)
        a = out.add_stream("aac", rate=SR, layout="stereo")
        for packet in ins.demux(video):
            if packet.size:
                packet.stream = v
                out.mux(packet)
        for at in range(0, stereo.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(stereo[:, at : at + 1024]), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts = SR, at
            for packet in a.encode(frame):
                out.mux(packet)
        for packet in a.encode():
            out.mux(packet)
    return dst


def av_offsets(path: Path) -> list[float]:
    """Per flash in the file: beep onset - flash time, in ms (decoded; see the docstring)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        flashes = [
            float(f.time or 0.0)
            for f in container.decode(stream)
            if plane(f, 0)[::8, ::8].mean() > 200
        ]
    with av.open(str(path)) as container:
        chunks, start = [], None
        for f in container.decode(container.streams.audio[0]):
            if start is None:
                start = float(f.time or 0.0)
            chunks.append(np.abs(f.to_ndarray()).max(axis=0))
    if not chunks or not flashes:
        return []
    loud = np.flatnonzero(np.concatenate(chunks) > 0.3)
    onsets: list[float] = []
    quiet = -SR
    for i in map(int, loud):
        if i - quiet > SR // 100:
            onsets.append((start or 0.0) + i / SR)
        quiet = i
    offsets = []
    for flash in flashes:
        if onsets:
            nearest = min(onsets, key=lambda onset: abs(onset - flash))
            offsets.append((nearest - flash) * 1000)
    return offsets


def run_name(k: int) -> str:
    return "warm-up" if k < 0 else f"run {k + 1}"


# -- render in one process ---------------------------------------------------------------


@dataclass
class SingleRun:
    frames: int
    seconds: float
    cpu_s: float  # this process, all threads (decoders, encoder)
    faults: int  # minor page faults of this process
    others: float
    stages_s: dict[str, float]  # wall time in each stage of the loop (this thread)
    packets: int
    digest: str

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


def single_process(a: Path, b: Path, out: Path, frames: int) -> tuple[float, dict[str, float]]:
    """Decode A and B, ``over(A, B, 0.5)`` per yuv420p plane, encode to H.264: (s, stages)."""
    clock = time.perf_counter
    stages = {"decode": 0.0, "composite": 0.0, "encode": 0.0}
    t0 = clock()
    with av.open(str(a)) as ca, av.open(str(b)) as cb, av.open(str(out), "w") as co:
        sa, sb = ca.streams.video[0], cb.streams.video[0]
        sa.thread_type = sb.thread_type = "AUTO"
        enc = co.add_stream("libx264", rate=Fraction(RATE))
        enc.width, enc.height, enc.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        enc.options = {"preset": PRESET}
        enc.thread_type = "AUTO"  # frame threads, as lumiera's Encoder (and ffmpeg) encode
        da, db = ca.decode(sa), cb.decode(sb)
        for k in range(frames):
            t1 = clock()
            fa, fb = next(da), next(db)
            t2 = clock()
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            for i in range(3):
                over(plane(fa, i), plane(fb, i), OPACITY, plane(frame, i))
            frame.pts = k
            t3 = clock()
            for packet in enc.encode(frame):
                co.mux(packet)
            t4 = clock()
            stages["decode"] += t2 - t1
            stages["composite"] += t3 - t2
            stages["encode"] += t4 - t3
        t1 = clock()
        for packet in enc.encode():
            co.mux(packet)
        stages["encode"] += clock() - t1
    return clock() - t0, stages


def single_run(ctx: BenchContext, a: Media, b: Media, frames: int, k: int) -> SingleRun:
    out = ctx.base / f"single-{k}.mp4"
    try:
        before = Cpu.now()
        seconds, stages = single_process(a.path, b.path, out, frames)
        span = Cpu.now().since(before)
        packets, digest = packets_of(out)
    finally:
        out.unlink(missing_ok=True)
    if packets != frames:
        ctx.problems.append(
            f"single process {run_name(k)}: {packets} frames in the file, not {frames}"
        )
    own = span.own
    return SingleRun(frames, seconds, own.cpu_s, own.faults, span.others, stages, packets, digest)


# -- render through lumiera --------------------------------------------------------------


@dataclass
class PipelineRun:
    frames: int
    seconds: float  # request to player.render.done received
    cpu_s: dict[str, float]  # per process: engine, player, supervisor
    faults: dict[str, int]  # minor page faults, per process
    others: float
    engine: dict[str, Any]  # engine.render.done
    player: dict[str, Any]  # player.render.done
    packets: int
    digest: str
    offsets_ms: list[float] = field(default_factory=list)  # with sound: beep - flash

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


@dataclass
class Session:
    media: tuple[str, str]
    tracks: tuple[str, str]


def build_session(inst: Instance, a: Media, b: Media, frames: int) -> Session:
    """Two media, two tracks, A on V1 and B (opacity 0.5) on V2 over frames 0..frames-1."""

    def add(command: str, args: dict[str, Any]) -> str:
        return str(inst.request("session", command, args)["applied"]["id"])

    media = (add("add_media", {"path": str(a.path)}), add("add_media", {"path": str(b.path)}))
    tracks = (add("add_track", {"name": "V1"}), add("add_track", {"name": "V2"}))
    inst.request("session", "set_output", {"width": WIDTH, "height": HEIGHT})
    session = Session(media, tracks)
    add_clips(inst, session, 0, frames)
    return session


def sounding_timeline(
    inst: Instance, session: Session, sounds: tuple[Path, Path]
) -> dict[str, Any]:
    """The session's timeline with each clip on the media of its pictures with sound.

    The sounding media are added to the session (probed there), not placed.
    """
    ids = {
        old: str(inst.request("session", "add_media", {"path": str(path)})["applied"]["id"])
        for old, path in zip(session.media, sounds, strict=True)
    }
    timeline: dict[str, Any] = inst.request("session", "timeline")
    timeline["clips"] = [{**c, "media": ids.get(c["media"], c["media"])} for c in timeline["clips"]]
    return timeline


def add_clips(inst: Instance, session: Session, position: int, frames: int) -> None:
    for media, track, opacity in zip(session.media, session.tracks, (1.0, OPACITY), strict=True):
        inst.request(
            "session",
            "add_clip",
            {
                "media": media,
                "track": track,
                "position": position,
                "source_out": frames,
                "opacity": opacity,
            },
        )


def wait_event(tap: Tap, topics: Sequence[str], sid: str, timeout: float) -> tuple[str, Any]:
    """The first event (seen or new) with one of ``topics`` whose ``id`` is ``sid``."""
    deadline = time.monotonic() + timeout
    while True:
        for topic, body in tap.events:
            if topic in topics and body.get("id") == sid:
                return topic, body
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {' or '.join(topics)} of {sid} within {timeout:g} s")
        tap.poll(min(left, 0.1))


def pipeline_run(
    ctx: BenchContext,
    inst: Instance,
    frames: int,
    k: int,
    *,
    first: int | None = None,
    timeline: dict[str, Any] | None = None,
) -> PipelineRun:
    """``player render`` of the whole timeline (or ``frames`` from ``first``) to an MP4.

    Timed from the request to ``player.render.done``. ``timeline``: render this one
    (the sounding one: its file's A/V offsets are measured too).
    """
    out = ctx.base / f"pipeline-{k}{'-sound' if timeline else ''}.mp4"
    procs = {"engine": inst.pid_of("engine"), "player": inst.pid_of("player")}
    assert inst.proc is not None
    procs["supervisor"] = inst.proc.pid
    tap = Tap(inst.rd, ["player.render.", "engine.render."])
    try:
        inst.request("player", "ping")  # the player answers, and the SUB has had time to join
        before = Cpu.now(list(procs.values()))
        t0 = time.perf_counter()
        args: dict[str, Any] = {"output": str(out), "codec": CODEC}
        if first is not None:
            args.update(first=first, count=frames)
        if timeline is not None:
            args["timeline"] = timeline
        reply = inst.request("player", "render", args)
        topic, player = wait_event(
            tap, ("player.render.done", "player.render.failed"), reply["id"], RENDER_TIMEOUT_S
        )
        seconds = time.perf_counter() - t0
        span = Cpu.now(list(procs.values())).since(before)
        if topic != "player.render.done":
            raise RuntimeError(f"the render failed: {player.get('error')}")
        _, engine = wait_event(
            tap,
            ("engine.render.done", "engine.render.failed"),
            reply["engine_stream"],
            END_TIMEOUT_S,
        )
        packets, digest = packets_of(out)
        offsets = av_offsets(out) if timeline is not None and first is None else []
    finally:
        tap.close()
        out.unlink(missing_ok=True)
    if timeline is not None and first is None and len(offsets) != len(FLASH):
        ctx.problems.append(f"sound {run_name(k)}: {len(offsets)} beeps found at flashes")
    if packets != frames or player.get("frames") != frames:
        ctx.problems.append(
            f"pipeline {run_name(k)}: {packets} frames in the file, the player says"
            f" {player.get('frames')}, not {frames}"
        )
    if engine.get("frames") != frames or engine.get("failed"):
        ctx.problems.append(f"pipeline {run_name(k)}: the engine reports {engine}")
    cpu = {name: span.pids[pid].cpu_s for name, pid in procs.items()}
    faults = {name: span.pids[pid].faults for name, pid in procs.items()}
    return PipelineRun(
        frames, seconds, cpu, faults, span.others, engine, player, packets, digest, offsets
    )


# -- the command lines: lumiera render, and ffmpeg -----------------------------------------


@dataclass
class CommandRun:
    """One render by a command line, as a user runs it: ``lumiera render`` or ffmpeg."""

    frames: int
    measured: Measured  # wall clock, CPU (rusage) and memory of its whole process tree
    others: float  # cores the rest of the machine used meanwhile
    inside_s: float | None = None  # lumiera render's own clock, as it says

    @property
    def seconds(self) -> float:
        return self.measured.done.seconds

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    @property
    def cpu_s(self) -> float:
        return self.measured.cpu_s

    @property
    def peak_mib(self) -> float:
        return self.measured.peak_mib


def process_name(argv: Sequence[str]) -> str:
    """A process of ``lumiera render``'s tree by its part: cli, supervisor, engine, ..."""
    name = command_name(argv)
    parts = {"lumiera render": "cli", "lumiera up": "supervisor"}
    return parts.get(name, name.removeprefix("lumiera.actors "))


def command_run(
    ctx: BenchContext, name: str, argv: Sequence[str], *, out: Path, frames: int, k: int
) -> CommandRun | None:
    """Run ``argv`` (it renders the timeline to ``out``) measured; its file checked."""
    before = Cpu.now()
    try:
        m = measure_command(
            argv, ctx.env, RENDER_TIMEOUT_S, every=SAMPLE_EVERY_S, name=process_name
        )
        span = Cpu.now().since(before)
        packets = packets_of(out)[0] if m.done.code == 0 else 0
    finally:
        out.unlink(missing_ok=True)
    if m.done.code != 0:
        ctx.problems.append(f"{name} {run_name(k)}: exited with {m.done.code}:\n{m.done.tail()}")
        return None
    if packets != frames:
        ctx.problems.append(f"{name} {run_name(k)}: {packets} frames in the file, not {frames}")
    said = RENDERED.search(m.done.stdout)
    return CommandRun(frames, m, span.others, float(said.group(2)) if said else None)


def cli_run(ctx: BenchContext, session: Path, frames: int, k: int) -> CommandRun | None:
    """``lumiera render SESSION -o OUT --codec h264``: its own instance, start to end."""
    out = ctx.base / f"cli-{k}.mp4"
    argv = [sys.executable, "-m", "lumiera", "render", str(session), "-o", str(out)]
    argv += ["--codec", CODEC, "--runtime-dir", str(ctx.runtime_dir().path)]
    return command_run(ctx, "lumiera render", argv, out=out, frames=frames, k=k)


def ffmpeg_run(ctx: BenchContext, ffmpeg: str, a: Media, b: Media, k: int) -> CommandRun | None:
    """The ffmpeg command line of the same render (:func:`harness.ffmpeg_blend`)."""
    out = ctx.base / f"ffmpeg-{k}.mp4"
    argv = ffmpeg_blend(ffmpeg, a.path, b.path, out, opacity=OPACITY, preset=PRESET)
    return command_run(ctx, "ffmpeg", argv, out=out, frames=a.frames, k=k)


def cli_session(ctx: BenchContext, a: Media, b: Media, frames: int) -> Path:
    """The session file ``lumiera render`` reads: built over the bus of an instance of its
    own, then stopped (a running instance holds its session file)."""
    path = ctx.base / "cli.lumiera"
    with bench_instance(ctx, ["--headless", str(path)]) as inst:
        build_session(inst, a, b, frames)
    return path


def say_command(what: str, r: int, repeats: int, run: CommandRun | None) -> None:
    if run is None:
        say(f"  {r + 1}/{repeats} {what:<14} failed")
        return
    m = run.measured
    say(
        f"  {r + 1}/{repeats} {what:<14} {run.fps:5.1f} frames/s ({run.seconds:.2f} s; CPU"
        f" {m.cpu_s:.1f} s, of it system {m.system_s:.1f} s; peak {m.peak_mib:.0f} MiB,"
        f" largest process {m.largest_mib:.0f} MiB; others {run.others:.2f} cores)"
    )


@dataclass
class RenderResult:
    pipeline: list[PipelineRun]
    single: list[SingleRun]
    sound: list[PipelineRun] = field(default_factory=list)
    cli: list[CommandRun] = field(default_factory=list)  # lumiera render, the whole command
    ffmpeg: list[CommandRun] = field(default_factory=list)  # none without ffmpeg

    def best_cli(self) -> CommandRun | None:
        return max(self.cli, key=lambda r: r.fps, default=None)

    def best_ffmpeg(self) -> CommandRun | None:
        return max(self.ffmpeg, key=lambda r: r.fps, default=None)

    def best_sound(self) -> PipelineRun:
        return max(self.sound, key=lambda r: r.fps)

    def audio_cost(self) -> float:
        """1 - sound fps / pipeline fps, best vs best."""
        return 1 - self.best_sound().fps / self.best_pipeline().fps

    def av_offset_ms(self) -> float:
        """The largest |beep - flash| of every sound run's file (ms)."""
        return max((abs(o) for r in self.sound for o in r.offsets_ms), default=float("nan"))

    def best_pipeline(self) -> PipelineRun:
        return max(self.pipeline, key=lambda r: r.fps)

    def best_single(self) -> SingleRun:
        return max(self.single, key=lambda r: r.fps)

    def paired(self) -> float:
        """Median over the rounds of pipeline / single process (the two runs of a round adjoin)."""
        return paired([p.fps for p in self.pipeline], [s.fps for s in self.single])


def bench_render(
    ctx: BenchContext,
    inst: Instance,
    a: Media,
    b: Media,
    *,
    frames: int,
    repeats: int,
    sounding: dict[str, Any],
    session: Path,
    ffmpeg: str | None,
    cli_media: tuple[Media, Media],
) -> RenderResult:
    warm = pipeline_run(ctx, inst, WARMUP_FRAMES, -1, first=frames - WARMUP_FRAMES)
    say(f"  warm-up: pipeline, the last {WARMUP_FRAMES} frames ({warm.seconds:.2f} s)")
    last = frames - WARMUP_FRAMES
    warm = pipeline_run(ctx, inst, WARMUP_FRAMES, -1, first=last, timeline=sounding)
    say(f"  warm-up: with sound, the last {WARMUP_FRAMES} frames ({warm.seconds:.2f} s)")

    res = RenderResult([], [])

    def sound(r: int) -> None:
        p = pipeline_run(ctx, inst, frames, r, timeline=sounding)
        res.sound.append(p)
        offsets = ", ".join(f"{o:+.3f}" for o in p.offsets_ms)
        say(
            f"  {r + 1}/{repeats} with sound     {p.fps:5.1f} frames/s ({p.seconds:.2f} s;"
            f" CPU engine {p.cpu_s['engine']:.1f} s, player {p.cpu_s['player']:.1f} s;"
            f" A/V offsets {offsets} ms; others {p.others:.2f} cores)"
        )

    def pipeline(r: int) -> None:
        p = pipeline_run(ctx, inst, frames, r)
        res.pipeline.append(p)
        say(
            f"  {r + 1}/{repeats} pipeline       {p.fps:5.1f} frames/s ({p.seconds:.2f} s;"
            f" CPU engine {p.cpu_s['engine']:.1f} s, player {p.cpu_s['player']:.1f} s;"
            f" engine page faults/frame {p.faults['engine'] / frames:,.0f};"
            f" others {p.others:.2f} cores)"
        )

    def single(r: int) -> None:
        s = single_run(ctx, a, b, frames, r)
        res.single.append(s)
        say(
            f"  {r + 1}/{repeats} single process {s.fps:5.1f} frames/s ({s.seconds:.2f} s;"
            f" CPU {s.cpu_s:.1f} s; others {s.others:.2f} cores)"
        )

    def cli(r: int) -> None:
        run = cli_run(ctx, session, cli_media[0].frames, r)
        res.cli.extend([run] if run else [])
        say_command("lumiera render", r, repeats, run)

    def ffmpeg_cli(r: int) -> None:
        assert ffmpeg is not None
        run = ffmpeg_run(ctx, ffmpeg, *cli_media, r)
        res.ffmpeg.extend([run] if run else [])
        say_command("ffmpeg", r, repeats, run)

    variants = {"pipeline": pipeline, "single": single, "sound": sound, "cli": cli}
    if ffmpeg is not None:
        variants["ffmpeg"] = ffmpeg_cli
    # P S A C F, F C A S P, ...: against drift
    alternate(variants, repeats)
    return res


# -- playback ----------------------------------------------------------------------------


@dataclass
class PlaybackResult:
    count: int
    received: list[tuple[int, float]]  # (pts, latency ms)
    engine: dict[str, Any]  # engine.render.done
    reader_drops: int  # frames the ring says this reader missed
    start: float
    rate: Fraction
    cpu_s: dict[str, float]
    others: float
    seconds: float

    @property
    def latencies(self) -> list[float]:
        return [ms for _, ms in self.received]

    @property
    def dropped(self) -> int:
        return int(self.engine.get("dropped") or 0)

    def missing(self, most: int = 6) -> str:
        """The frames that did not come, as ranges (the first ``most`` of them)."""
        seen = {pts for pts, _ in self.received}
        ranges: list[list[int]] = []
        for pts in range(self.count):
            if pts in seen:
                continue
            if ranges and ranges[-1][1] == pts - 1:
                ranges[-1][1] = pts
            else:
                ranges.append([pts, pts])
        text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:most])
        return text + (f" and {len(ranges) - most} more ranges" if len(ranges) > most else "")


def warmup_play(inst: Instance) -> None:
    """A few frames of ``player play``: the Player creates the viewer ring on its first play."""
    tap = Tap(inst.rd, ["engine.render."])
    try:
        inst.request("player", "ping")
        reply = inst.request("player", "play", {"first": 0, "count": WARMUP_PLAY})
        if reply["ring"] != VIEWER:
            raise RuntimeError(f"the Player plays into {reply['ring']}, not {VIEWER}")
        wait_event(tap, ("engine.render.done", "engine.render.failed"), reply["engine_stream"], 30)
    finally:
        tap.close()


def play(ctx: BenchContext, inst: Instance, count: int) -> PlaybackResult:
    """``engine render`` in playback mode into the viewer ring; arrivals against due times."""
    timeline = inst.request("session", "timeline")  # the edit as the Engine renders it
    procs = {"engine": inst.pid_of("engine"), "player": inst.pid_of("player")}
    tap = Tap(inst.rd, ["engine.render."])
    consumer = ring.Consumer(inst.rd, VIEWER, timeout=5)
    arrivals: list[tuple[int, float]] = []
    clock = time.monotonic
    try:
        inst.request("engine", "ping")
        before = Cpu.now(list(procs.values()))
        reply = inst.request(
            "engine",
            "render",
            {
                "timeline": timeline,
                "first": 0,
                "count": count,
                "ring": VIEWER,
                "fmt": "rgb24",
                "mode": "playback",
            },
        )
        sid, start, rate = reply["stream"], float(reply["start"]), Fraction(reply["rate"])
        give_up = start + count / rate + END_TIMEOUT_S
        ended = False
        while True:
            try:
                frame = consumer.acquire(0.2)
            except RingTimeout:
                if ended:
                    break  # the stream is over and nothing more came
                tap.poll()
                ended = any(body.get("id") == sid for _, body in tap.events)
                if clock() > give_up:
                    raise TimeoutError(f"playback {sid} did not end") from None
                continue
            got = clock()
            pts = frame.pts
            consumer.release(frame)
            arrivals.append((pts, got))
            if pts >= count - 1:
                break
        topic, engine = wait_event(
            tap, ("engine.render.done", "engine.render.failed"), sid, END_TIMEOUT_S
        )
        seconds = clock() - start
        span = Cpu.now(list(procs.values())).since(before)
        reader_drops = consumer.drops
    finally:
        consumer.close()
        tap.close()
    if topic != "engine.render.done":
        ctx.problems.append(f"playback: the engine's stream failed: {engine.get('error')}")
    received = [(pts, (got - (start + float(pts / rate))) * 1000) for pts, got in arrivals]
    pts_seen = [p for p, _ in arrivals]
    if pts_seen != sorted(set(pts_seen)):
        ctx.problems.append("playback: frames came out of order or twice")
    if reader_drops:
        ctx.problems.append(f"playback: the ring says this reader missed {reader_drops} frames")
    dropped = int(engine.get("dropped") or 0)
    if len(arrivals) + dropped != count:
        ctx.problems.append(
            f"playback: {len(arrivals)} frames received + {dropped} dropped != {count}"
        )
    cpu = {name: span.pids[pid].cpu_s for name, pid in procs.items()}
    return PlaybackResult(
        count, received, engine, reader_drops, start, rate, cpu, span.others, seconds
    )


# -- report ------------------------------------------------------------------------------


def _ms(seconds: float, frames: int) -> str:
    return f"{seconds / frames * 1000:.1f}"


def render_rows(t: Table, res: RenderResult) -> None:
    p, s = res.best_pipeline(), res.best_single()
    ratio = p.fps / s.fps
    n = p.frames
    p_cpu = sum(p.cpu_s.values())
    e = p.engine
    stages = ", ".join(f"{k} {_ms(v, s.frames)}" for k, v in s.stages_s.items())
    same = "the same bytes" if p.digest == s.digest else "DIFFERENT bytes"
    t.add(
        "render 1080p 2 tracks -> H.264, pipeline",
        f"{p.fps:.1f} /s",
        how=f"player render, request to player.render.done; best of {len(res.pipeline)}:"
        f" {', '.join(f'{r.fps:.1f}' for r in res.pipeline)}",
    )
    t.add(
        "render, single process (PyAV + over)",
        f"{s.fps:.1f} /s",
        how=f"best of {len(res.single)}: {', '.join(f'{r.fps:.1f}' for r in res.single)}",
    )
    t.add(
        "  pipeline / single process",
        f"{ratio:.2f}",
        f">= {AIM_OF_SINGLE:g}",
        verdict(ratio, AIM_OF_SINGLE),
        how=f"best vs best; median of the rounds' ratios {res.paired():.2f};"
        f" {os.cpu_count() or 1} cores",
    )
    t.add(
        "  pipeline CPU per frame",
        f"{p_cpu / n * 1000:.1f} ms",
        how=f"engine {_ms(p.cpu_s['engine'], n)}, player {_ms(p.cpu_s['player'], n)},"
        f" supervisor {_ms(p.cpu_s['supervisor'], n)} ms;"
        f" {p_cpu / p.seconds:.2f} cores busy; others {p.others:.2f} cores;"
        f" page faults/frame: engine {p.faults['engine'] / n:,.0f},"
        f" player {p.faults['player'] / n:,.0f}",
    )
    t.add(
        "  single process CPU per frame",
        f"{s.cpu_s / s.frames * 1000:.1f} ms",
        how=f"{s.cpu_s / s.seconds:.2f} cores busy; others {s.others:.2f} cores;"
        f" page faults/frame {s.faults / s.frames:,.0f}; wall ms/frame in the loop: {stages}",
    )
    t.add(
        "  engine stream (engine.render.done)",
        f"{e.get('seconds', float('nan')):.2f} s",
        how=f"{e.get('frames')} frames, {e.get('decoded')} decoded, {e.get('missed')} late jobs,"
        f" {e.get('failed')} failed; player: {p.player.get('frames')} frames encoded",
    )
    t.add(
        "  frames in the rendered file",
        f"{p.packets}",
        f"{n}",
        "pass" if p.packets == n else "MISS",
        how=f"video packets demuxed; vs the single process's file: {same}",
    )


def sound_rows(t: Table, res: RenderResult) -> None:
    p, s = res.best_pipeline(), res.best_sound()
    cost = res.audio_cost()
    paired_cost = 1 - paired([r.fps for r in res.sound], [r.fps for r in res.pipeline])
    n = s.frames
    t.add(
        "render with sound (2 x stereo 48 kHz -> AAC)",
        f"{s.fps:.1f} /s",
        how=f"player render of the sounding timeline; best of {len(res.sound)}:"
        f" {', '.join(f'{r.fps:.1f}' for r in res.sound)}; video only {p.fps:.1f} /s",
    )
    t.add(
        "  audio cost (1 - sound / video only)",
        f"{cost * 100:.1f} %",
        f"< {AIM_AUDIO_COST * 100:g} %",
        verdict(cost, AIM_AUDIO_COST, below=True),
        how=f"best vs best; median of the rounds' {paired_cost * 100:.1f} %; CPU per frame"
        f" engine {_ms(s.cpu_s['engine'], n)} (video only {_ms(p.cpu_s['engine'], n)}),"
        f" player {_ms(s.cpu_s['player'], n)} ({_ms(p.cpu_s['player'], n)}) ms",
    )
    offsets = [o for r in res.sound for o in r.offsets_ms]
    worst = res.av_offset_ms()
    t.add(
        "  A/V offset in the file (beep - flash)",
        f"{worst:.3f} ms",
        f"< {AIM_AV_OFFSET_MS:g} ms",
        verdict(worst, AIM_AV_OFFSET_MS, below=True),
        how=f"largest |offset| of {len(offsets)} flashes in {len(res.sound)} files, decoded:"
        f" {', '.join(f'{o:+.3f}' for o in offsets[:6])} ms",
    )


def playback_rows(t: Table, pb: PlaybackResult) -> None:
    lat = pb.latencies
    e = pb.engine
    got = len(pb.received)
    t.add(
        f"playback 1080p rgb24 {pb.rate} fps, frames received",
        f"{got}",
        f"{pb.count}",
        "pass" if got == pb.count else "MISS",
        how=f"{float(pb.count / pb.rate):g} s; viewer ring {VIEWER}; engine render mode playback",
    )
    t.add(
        "  dropped (engine.render.done)",
        f"{pb.dropped}",
        "0",
        verdict(pb.dropped, 1, below=True),
        how=f"not computed in time; {e.get('missed')} late jobs; this reader missed"
        f" {pb.reader_drops} in the ring"
        + (f"; frames missing: {pb.missing()}" if got < pb.count else ""),
    )
    t.add(
        "  latency arrival - due, p50 / p99",
        f"{median(lat):.2f} / {pct(lat, 99):.2f} ms",
        how=f"min {min(lat, default=float('nan')):.2f}, max {max(lat, default=float('nan')):.2f}"
        f" ms; the engine's own publish - due p50: {e.get('lateness_ms_p50')} ms",
    )
    t.add(
        "  CPU during playback",
        f"{sum(pb.cpu_s.values()) / pb.seconds:.2f} cores",
        how=f"engine {pb.cpu_s['engine'] / pb.seconds:.2f}, player"
        f" {pb.cpu_s['player'] / pb.seconds:.2f} cores; others {pb.others:.2f} cores",
    )


def _runs(runs: Sequence[CommandRun]) -> str:
    return f"best of {len(runs)}: {', '.join(f'{r.fps:.1f}' for r in runs)}"


def _memory(m: Measured) -> str:
    largest = m.largest
    name = f" ({largest.name})" if largest else ""
    return (
        f"tree: the most PSS at one sample ({m.samples} samples, every"
        f" {SAMPLE_EVERY_S * 1000:g} ms); sum of RSS {m.peak_rss / MIB:.0f} MiB;"
        f" largest process {m.largest_mib:.0f} MiB{name} (its VmHWM)"
    )


def command_rows(t: Table, res: RenderResult, ffmpeg: str | None) -> None:
    """lumiera render (the whole command) against the ffmpeg command line."""
    c, f = res.best_cli(), res.best_ffmpeg()
    if c is None:
        t.add("lumiera render (whole command)", "-", how="no run completed")
        return
    m, n = c.measured, c.frames
    inside = f"; it says {c.inside_s:.2f} s" if c.inside_s is not None else ""
    t.add(
        "lumiera render (whole command)",
        f"{c.fps:.1f} /s",
        how=f"start to exit, {c.seconds:.2f} s{inside}; {_runs(res.cli)}",
    )
    if f is None:
        t.add("ffmpeg command line", "-", how=ABSENT_FFMPEG if ffmpeg is None else "no run")
    else:
        t.add(
            "ffmpeg command line", f"{f.fps:.1f} /s", how=f"{f.seconds:.2f} s; {_runs(res.ffmpeg)}"
        )
        paired_fps = paired([r.fps for r in res.cli], [r.fps for r in res.ffmpeg])
        ratio = c.fps / f.fps
        t.add(
            "  lumiera render / ffmpeg",
            f"{ratio:.2f}",
            f">= {AIM_OF_FFMPEG:g}",
            verdict(ratio, AIM_OF_FFMPEG),
            how=f"frames/s, best vs best; median of the rounds' ratios {paired_fps:.2f}",
        )
        cpu = c.cpu_s / f.cpu_s
        t.add(
            "  CPU per frame, lumiera render / ffmpeg",
            f"{cpu:.2f}",
            f"< {AIM_CPU_OF_FFMPEG:g}",
            verdict(cpu, AIM_CPU_OF_FFMPEG, below=True),
            how=f"of the best runs; {_ms(c.cpu_s, n)} against {_ms(f.cpu_s, f.frames)} ms",
        )
    t.add(
        "  CPU, lumiera render",
        f"{c.cpu_s:.2f} s",
        how=f"user {m.user_s:.2f}, system {m.system_s:.2f} s (wait4 rusage: the tree);"
        f" {c.cpu_s / c.seconds:.2f} cores busy; others {c.others:.2f} cores;"
        f" per process: {m.breakdown()}",
    )
    if f is not None:
        fm = f.measured
        t.add(
            "  CPU, ffmpeg",
            f"{f.cpu_s:.2f} s",
            how=f"user {fm.user_s:.2f}, system {fm.system_s:.2f} s;"
            f" {f.cpu_s / f.seconds:.2f} cores busy; others {f.others:.2f} cores",
        )
    t.add(
        "  peak memory, lumiera render",
        f"{c.peak_mib:.0f} MiB",
        f"< {AIM_PEAK_MIB:g} MiB",
        verdict(c.peak_mib, AIM_PEAK_MIB, below=True),
        how=_memory(m),
    )
    if f is not None:
        t.add("  peak memory, ffmpeg", f"{f.peak_mib:.0f} MiB", how=_memory(f.measured))


def command_figures(res: RenderResult) -> dict[str, float]:
    """The JSON line's figures of the command lines (NaN, so null, for what did not run)."""
    nan = float("nan")
    c, f = res.best_cli(), res.best_ffmpeg()
    return {
        "render_cli_fps": c.fps if c else nan,
        "ffmpeg_fps": f.fps if f else nan,
        "render_cpu_s": c.cpu_s if c else nan,
        "ffmpeg_cpu_s": f.cpu_s if f else nan,
        "render_peak_mib": c.peak_mib if c else nan,
        "ffmpeg_peak_mib": f.peak_mib if f else nan,
        "render_largest_mib": c.measured.largest_mib if c else nan,
        "ffmpeg_largest_mib": f.measured.largest_mib if f else nan,
    }


def report(
    ctx: BenchContext,
    a: Media,
    b: Media,
    render: RenderResult,
    pb: PlaybackResult,
    *,
    ffmpeg: str | None,
) -> int:
    t = Table("figure", "value", "aim", "ok?", "how")
    render_rows(t, render)
    command_rows(t, render, ffmpeg)
    sound_rows(t, render)
    playback_rows(t, pb)
    versions = (
        f"PyAV {av.__version__}, "
        f"libavcodec {'.'.join(map(str, av.library_versions.get('libavcodec', ())))},"
        f" numpy {np.__version__}"
    )
    lines = [
        *header("lumiera render benchmark", versions),
        f"mode: {'quick' if ctx.quick else 'full'}; {ctx.elapsed():.1f} s",
        f"media: 2 x {WIDTH}x{HEIGHT} H.264 {PRESET}, {RATE} fps, {a.frames} frames; "
        f"A {a.mbit_s:.1f}, B {b.mbit_s:.1f} Mbit/s (encoded in {a.encode_s + b.encode_s:.1f} s)",
        f"render: {render.best_pipeline().frames} frames, V1 = A, V2 = B at opacity"
        f" {OPACITY:g}, to {CODEC} (libx264 {PRESET}); pipeline and single process alternate;"
        " the figure is the BEST run",
        "others: CPU used meanwhile by other processes, in cores",
        ffmpeg_line(ffmpeg),
        "peak memory of a command: its process tree's most PSS at one sample (shared pages"
        " split among their sharers); CPU: wait4 rusage of the command and its descendants",
        *load_note(ctx.load_at_start),
    ]
    fig = {
        "pipeline_fps": render.best_pipeline().fps,
        "single_process_fps": render.best_single().fps,
        **command_figures(render),
        "fps_audio": render.best_sound().fps,
        "audio_cost_pct": render.audio_cost() * 100,
        "av_offset_ms": render.av_offset_ms(),
        "playback_frames": len(pb.received),
        "playback_drops": pb.dropped,
        "playback_latency_ms_p50": median(pb.latencies),
        "playback_latency_ms_p99": pct(pb.latencies, 99),
    }
    return finish(lines, t, ctx.problems, fig, 2)


def ffmpeg_line(ffmpeg: str | None) -> str:
    if ffmpeg is None:
        return ABSENT_FFMPEG
    return (
        f"ffmpeg: {ffmpeg}: ffmpeg -i A.mp4 -i B.mp4 -filter_complex"
        f' "[0:v][1:v]blend=all_opacity={OPACITY:g}" -c:v libx264 -preset {PRESET}'
        " -pix_fmt yuv420p OUT.mp4"
    )


# -- main --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parser(__doc__, "one round, 10 s playback (< 60 s)").parse_args(argv)
    repeats, play_frames = (1, 10 * RATE) if args.quick else (5, 30 * RATE)

    ffmpeg = which_ffmpeg()
    if ffmpeg is None:
        say(ABSENT_FFMPEG)

    with bench_context("lumrender-", args.quick) as ctx:
        base = ctx.base
        say(f"media: encoding 2 x {FRAMES} frames of 1080p H.264")
        a = make_media(base / "a.mp4", FRAMES, 1)
        b = make_media(base / "b.mp4", FRAMES, 2)
        say(f"  {a.encode_s + b.encode_s:.1f} s; {a.mbit_s:.1f} and {b.mbit_s:.1f} Mbit/s")
        sounds = (
            with_sound(a.path, base / "a-sound.mp4", FRAMES, 1),
            with_sound(b.path, base / "b-sound.mp4", FRAMES, 2),
        )
        say(f"media for the command lines: 2 x {CLI_FRAMES} frames of 1080p H.264")
        ca = make_media(base / "cli-a.mp4", CLI_FRAMES, 1)
        cb = make_media(base / "cli-b.mp4", CLI_FRAMES, 2)
        session = cli_session(ctx, ca, cb, CLI_FRAMES)  # lumiera render's
        # The Player's viewer ring at the output's size (the GUI's preview box would
        # make it 960x540): the playback figure is the Engine's at 1080p.
        full = ["gui.preview_width=1920", "gui.preview_height=1080"]
        with bench_instance(ctx, ["--headless", str(base / "render.lumiera")], full) as inst:
            edit = build_session(inst, a, b, FRAMES)
            sounding = sounding_timeline(inst, edit, sounds)
            say(
                f"render: {FRAMES} frames, {repeats} round(s) of pipeline, single process,"
                f" with sound, lumiera render{', ffmpeg' if ffmpeg else ''}"
            )
            render = bench_render(
                ctx,
                inst,
                a,
                b,
                frames=FRAMES,
                repeats=repeats,
                sounding=sounding,
                session=session,
                ffmpeg=ffmpeg,
                cli_media=(ca, cb),
            )
            for k in range(1, -(-play_frames // FRAMES)):  # the clips again, end to end
                add_clips(inst, edit, k * FRAMES, FRAMES)
            say(f"playback: {play_frames} frames at {RATE} fps")
            warmup_play(inst)
            playback = play(ctx, inst, play_frames)
            lat = playback.latencies
            say(
                f"  {len(playback.received)} frames, {playback.dropped} dropped; latency p50"
                f" {median(lat):.2f} ms, p99 {pct(lat, 99):.2f} ms"
            )
    return report(ctx, a, b, render, playback, ffmpeg=ffmpeg)


if __name__ == "__main__":
    bench_main(main)
