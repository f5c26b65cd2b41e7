"""Benchmark of the live viewer: 1080p25 playback shown in a headless Chromium page.

Run from the repository root with the project's interpreter::

    .venv/bin/python tools/bench_gui.py            # 30 s of playback (about a minute)
    .venv/bin/python tools/bench_gui.py --quick    # 10 s of playback (under a minute)
    .venv/bin/python tools/bench_gui.py --preview 1920x1080   # full-size pictures

Prints a table (figures beside the aim, pass/MISS) and, as the very last line
of stdout, one JSON object: ``viewer_fps``, ``viewer_drops``,
``viewer_latency_ms_p50``, ``viewer_latency_ms_p99``, ``gui_cpu_ms_per_frame``.
Progress goes to stderr.

What is measured, and how:

* media: one 1920x1080 H.264 file (libx264 ultrafast, yuv420p, 25 fps, 250
  frames): a blocky texture panning over a gradient, with a bright box
  crossing it. The session shows it on one track, end to end as often as the
  playback lasts; the output is 1920x1080 at 25 fps.
* ``lumiera up SESSIONFILE`` with the GUI (``gui.open_browser=no``; the
  default ``[gui] preview_width/height`` 960x540, or ``--preview``): the
  Player plays into the viewer ring ``viewer-<preview>`` (yuv420p), the gui
  process reads it, encodes JPEG and sends each picture over the UI-Bus
  websocket, latest frame wins (lumiera/stage/web/viewer.py).
* the page: Debian Chromium, headless, driven by Playwright, at the UI's
  address with ``#edit``; the page draws each picture on a canvas and acks it
  (static/viewer.js). A warm-up play of 25 frames first (the Player makes the
  ring, the feed attaches, Chromium's JPEG decoder warms up), not counted.
* the measured run: ``player play`` of the whole timeline over the bus. From
  the page (``window.lumieraViewer``): the frames drawn during the run (its
  frame numbers, each drawn once) and, for each, the latency from the ring's
  publish (the slot's CLOCK_MONOTONIC time, carried in the picture's header)
  to the draw on the page's clock, which is put on the server's by the page's
  clock sync (the quickest of 8 ``clock`` round trips at connect: the error
  is at most half that round trip, shown).
  The time of the picture's arrival in the page is kept too: the latency up to
  it is the GUI's part (ring read, encode, websocket), the rest the page's.
* viewer_fps = frames drawn / the playback's length (frames / 25 fps).
  viewer_drops = frames of the playback never drawn in the page, whatever the
  cause; beside it the causes: the Engine's drops (not computed in time), the
  GUI's (latest frame wins, or its ring reader fell behind) and the page's.
* gui CPU per frame: the gui process's CPU (user + system, every thread, from
  /proc) over the run, divided by the pictures it sent; beside it the CPU of
  the engine, the player and Chromium (its processes) meanwhile, in cores.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from harness import (
    BenchContext,
    Cpu,
    Media,
    Table,
    bench_context,
    bench_instance,
    bench_main,
    cpu_s,
    finish,
    header,
    load_note,
    median,
    parser,
    pct,
    plane,
    say,
    tree,
    verdict,
    write_h264,
)

from lumiera.testing import Instance

WIDTH, HEIGHT, RATE = 1920, 1080, 25
FRAMES = 250  # of the media file; the session repeats it for a longer playback
WARMUP_FRAMES = 25
CHROMIUM = "/usr/bin/chromium"
PAGE_TIMEOUT_MS = 20_000
AIM_FPS = 25.0
AIM_P50_MS = 40.0
SETTLE_S = 1.5  # after the last frame is due: it arrives, and a viewer count after it

# What the page knows, read at once.
READ = """() => {
  const v = window.lumieraViewer;
  return {drawn: v.drawn, received: v.received, skipped: v.skipped, errors: v.decodeErrors,
          frames: v.frames.slice(), latencies: v.latencies.slice(),
          arrivals: v.arrivals.slice(), clock: v.clock,
          server: v.server};
}"""


# -- media and session -------------------------------------------------------------------


def make_media(path: Path) -> Media:
    """A 1080p H.264 file: a texture panning over a gradient, and a box crossing it."""
    rng = np.random.default_rng(1)
    step = 4
    cells = rng.integers(0, 96, (HEIGHT // 8 + 1, (WIDTH + step * FRAMES) // 8 + 2), np.uint8)
    texture = np.repeat(np.repeat(cells, 8, 0), 8, 1)[:HEIGHT]
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    gradient = ((xx * 80 // WIDTH + yy * 60 // HEIGHT) + 24).astype(np.uint8)

    def paint(frame: av.VideoFrame, k: int) -> None:
        y = plane(frame, 0)
        np.add(texture[:, step * k : step * k + WIDTH], gradient, out=y)
        bx, by = (14 * k) % (WIDTH - 240), (9 * k) % (HEIGHT - 240)
        y[by : by + 240, bx : bx + 240] = 235
        plane(frame, 1)[:] = 110
        plane(frame, 2)[:] = 140

    return write_h264(
        path, FRAMES, paint, size=(WIDTH, HEIGHT), rate=RATE, options={"preset": "ultrafast"}
    )


def build_session(inst: Instance, media: Path, frames: int) -> None:
    """The media on track V1, end to end until ``frames``; output 1080p25."""
    inst.request("session", "add_media", {"path": str(media)})
    inst.request("session", "add_track", {"name": "V1"})
    inst.request("session", "set_output", {"width": WIDTH, "height": HEIGHT, "rate": str(RATE)})
    for position in range(0, frames, FRAMES):
        count = min(FRAMES, frames - position)
        clip = {"media": "m1", "track": "t1", "position": position, "source_out": count}
        inst.request("session", "add_clip", clip)


# -- the page ----------------------------------------------------------------------------


@contextlib.contextmanager
def chromium_page(url: str) -> Iterator[Any]:
    """A headless Chromium page at ``url``, connected, its clock synced; closed at the end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(url)
            page.wait_for_function("window.lumiera && window.lumiera.bus.connected")
            page.wait_for_function("window.lumieraViewer.clock.offsetMs !== null")
            yield page
        finally:
            browser.close()


def chromium_pids() -> list[int]:
    """The Chromium processes below this one (Playwright's driver starts them)."""
    out = []
    for pid in tree(os.getpid()):
        with contextlib.suppress(OSError):
            if b"chromium" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]:
                out.append(pid)
    return out


# -- a playback into the page ------------------------------------------------------------


@dataclass
class Run:
    count: int  # frames played
    ring: str
    drawn: list[int]  # frame numbers drawn during the run
    latencies: list[float]
    arrivals: list[float]  # publish -> arrival in the page (before decoding and drawing)
    sent: int  # pictures the GUI sent the page during the run
    gui_dropped: int
    page_skipped: int
    engine_dropped: int
    decode_errors: int
    rtt_ms: float
    cpu_s: dict[str, float]
    seconds: float
    others: float

    @property
    def fps(self) -> float:
        return len(set(self.drawn)) / (self.count / RATE)

    @property
    def drops(self) -> int:
        return self.count - len(set(self.drawn))


def play(inst: Instance, page: Any, first: int, count: int) -> dict[str, Any]:
    """``player play`` of ``count`` frames from ``first``; waits until the last was due."""
    reply: dict[str, Any] = inst.request("player", "play", {"first": first, "count": count})
    wait = reply["start"] + count / RATE + SETTLE_S - time.monotonic()
    page.wait_for_timeout(max(0.0, wait) * 1000)
    return reply


def measure(inst: Instance, page: Any, count: int) -> Run:
    pids = {name: inst.pid_of(name) for name in ("gui", "engine", "player")}
    browser = chromium_pids()
    before = page.evaluate(READ)
    cpu0 = Cpu.now([*pids.values(), *browser])
    chromium0 = sum(cpu_s(p) for p in browser)
    reply = play(inst, page, 0, count)
    cpu1 = Cpu.now([*pids.values(), *browser])
    chromium1 = sum(cpu_s(p) for p in browser)
    after = page.evaluate(READ)
    span = cpu1.since(cpu0)
    (stream,) = [s for s in inst.request("player", "streams") if s["id"] == reply["id"]]
    k = len(before["frames"])  # the newest are last; the page keeps 20,000
    frames, latencies = after["frames"][k:], after["latencies"][k:]
    return Run(
        count=count,
        ring=str(reply["ring"]),
        drawn=frames,
        latencies=[ms for ms in latencies if ms is not None],
        arrivals=[ms for ms in after["arrivals"][k:] if ms is not None],
        sent=after["received"] - before["received"],
        gui_dropped=after["server"]["dropped"] - before["server"]["dropped"],
        page_skipped=after["skipped"] - before["skipped"],
        engine_dropped=int(stream["dropped"]),
        decode_errors=after["errors"] - before["errors"],
        rtt_ms=float(after["clock"]["rttMs"]),
        cpu_s={
            **{name: span.pids[pid].cpu_s for name, pid in pids.items()},
            "chromium": chromium1 - chromium0,
        },
        seconds=span.wall,
        others=span.others,
    )


# -- report ------------------------------------------------------------------------------


def report(ctx: BenchContext, media: Media, preview: str, run: Run) -> int:
    lat = run.latencies
    per_frame = run.cpu_s["gui"] / run.sent * 1000 if run.sent else float("nan")
    cores = {name: s / run.seconds for name, s in run.cpu_s.items()}
    t = Table("figure", "value", "aim", "ok?", "how")
    t.add(
        "frames shown per second",
        f"{run.fps:.2f}",
        f"{AIM_FPS:g}",
        verdict(run.fps, AIM_FPS - 0.01),
        how=f"{len(set(run.drawn))} of {run.count} frames drawn in the page over"
        f" {run.count / RATE:g} s; ring {run.ring}",
    )
    t.add(
        "frames not shown",
        f"{run.drops}",
        "0",
        verdict(run.drops, 1, below=True),
        how=f"engine dropped {run.engine_dropped}, GUI dropped {run.gui_dropped} (latest wins"
        f" or its reader fell behind), page skipped {run.page_skipped};"
        f" {run.decode_errors} pictures not decoded",
    )
    t.add(
        "latency ring publish -> draw, p50 / p99",
        f"{median(lat):.1f} / {pct(lat, 99):.1f} ms",
        f"p50 < {AIM_P50_MS:g}",
        verdict(median(lat), AIM_P50_MS, below=True),
        how=f"min {min(lat, default=float('nan')):.1f}, max {max(lat, default=float('nan')):.1f}"
        f" ms over {len(lat)} draws; clock sync round trip {run.rtt_ms:.2f} ms",
    )
    t.add(
        "  of it: publish -> arrival, p50 / p99",
        f"{median(run.arrivals):.1f} / {pct(run.arrivals, 99):.1f} ms",
        how="the GUI's ring read, JPEG encode and websocket send, to the page's message;"
        " the rest is Chromium's JPEG decode (createImageBitmap) and the draw",
    )
    t.add(
        "gui CPU per frame sent",
        f"{per_frame:.2f} ms",
        how=f"{run.sent} pictures sent; gui {cores['gui']:.2f}, engine {cores['engine']:.2f},"
        f" player {cores['player']:.2f}, chromium {cores['chromium']:.2f} cores;"
        f" others {run.others:.2f} cores",
    )
    lines = [
        *header("lumiera live viewer benchmark", f"PyAV {av.__version__}"),
        f"mode: {'quick' if ctx.quick else 'full'}; {ctx.elapsed():.1f} s",
        f"media: {WIDTH}x{HEIGHT} H.264 ultrafast, {RATE} fps, {media.frames} frames,"
        f" {media.mbit_s:.1f} Mbit/s; timeline 1080p25, preview {preview};"
        f" headless Chromium ({CHROMIUM})",
        *load_note(ctx.load_at_start),
    ]
    figures = {
        "viewer_fps": run.fps,
        "viewer_drops": run.drops,
        "viewer_latency_ms_p50": median(lat),
        "viewer_latency_ms_p99": pct(lat, 99),
        "gui_cpu_ms_per_frame": per_frame,
    }
    return finish(lines, t, ctx.problems, figures, 2)


# -- main --------------------------------------------------------------------------------


def preview_size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    try:
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: WIDTHxHEIGHT, e.g. 960x540") from None


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__, "10 s of playback (< 60 s)")
    p.add_argument("--preview", type=preview_size, default=None, help="[gui] preview size")
    args = p.parse_args(argv)
    count = (10 if args.quick else 30) * RATE
    defs = ["gui.open_browser=no"]
    if args.preview is not None:
        defs += [f"gui.preview_width={args.preview[0]}", f"gui.preview_height={args.preview[1]}"]
    with bench_context("lumgui-", args.quick) as ctx:
        say(f"media: {FRAMES} frames of 1080p H.264")
        media = make_media(ctx.base / "a.mp4")
        with bench_instance(ctx, [str(ctx.base / "gui.lumiera")], defs) as inst:
            build_session(inst, media.path, count)
            config = inst.request("gui", "describe")
            with chromium_page(f"{config['url']}#edit") as page:
                say(f"warm-up: {WARMUP_FRAMES} frames")
                play(inst, page, 0, WARMUP_FRAMES)
                say(f"playback: {count} frames at {RATE} fps into the page")
                run = measure(inst, page, count)
            say(
                f"  {len(set(run.drawn))} drawn, {run.drops} not shown; latency p50"
                f" {median(run.latencies):.1f} ms, p99 {pct(run.latencies, 99):.1f} ms"
            )
        shown = "x".join(map(str, args.preview)) if args.preview else "960x540 (default)"
        if run.decode_errors:
            ctx.problems.append(f"{run.decode_errors} pictures could not be decoded in the page")
        return report(ctx, media, shown, run)


if __name__ == "__main__":
    bench_main(main)
