"""``lumiera render SESSION -o OUT``: bring the system up headless, render, show progress, end.

It is ``lumiera up SESSION --headless --script`` of the built-in render script
(:mod:`lumiera.stage.render_job`), on an instance of its own
(``render-<pid>``), with the instance's output kept in a log file and shown
only when something fails. This process follows the render on the bus
(``stats.player``, ``player.render.*``) and draws a progress bar (frame,
fps, ETA) on a terminal, or a line every few seconds otherwise. With
``--farm tcp://HOST:PORT`` the render is cut into segments that the farm's
render nodes render instead (:mod:`lumiera.cli.farm_render`).

Exits 0 when the file is complete; otherwise the instance's exit code (1: the
render failed, with the reason; 2: an emergency), and no file is left under
the output's name (the encoder writes ``.NAME.partial`` and renames at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from lumiera import runtime_dir
from lumiera.bus.events import PlayerRenderEnded, PlayerStreamInfo, StatsPlayer, Subscriber
from lumiera.errors import UsageError
from lumiera.exits import EXIT_INTERRUPTED
from lumiera.stage import render_job
from lumiera.vault.codecs import Registry

PLAIN_EVERY_S = 5.0  # without a terminal: a progress line this often
STOP_WAIT_S = 30.0  # an interrupted instance's orderly end, then SIGKILL


def parse_range(text: str | None) -> tuple[int | None, int | None]:
    """``A:B`` (frames A..B-1; either side may be left out) -> (first, count)."""
    if text is None:
        return None, None
    first_s, sep, end_s = text.partition(":")
    try:
        first = int(first_s) if first_s else 0
        end = int(end_s) if end_s else None
    except ValueError:
        raise UsageError(f"--range {text}: expected A:B (frames A to B-1)") from None
    if not sep or first < 0 or (end is not None and end <= first):
        raise UsageError(f"--range {text}: expected A:B with 0 <= A < B")
    return first, None if end is None else end - first


def bar(info: PlayerStreamInfo, width: int = 30) -> str:
    """A progress bar of a render: frames done of all, fps, ETA."""
    done, count = info.frame - info.first, max(1, info.count)
    filled = int(width * done / count)
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] frame {done}/{count}  "
        f"{info.fps:.1f} fps  ETA {info.eta_s:.0f} s"
    )


def main(args: argparse.Namespace) -> int:
    session = Path(args.session)
    if not session.is_file():
        raise UsageError(f"session {session}: no such file")
    output = Path(args.output).absolute()
    if not output.parent.is_dir():
        raise UsageError(f"-o {args.output}: no directory {output.parent}")
    codecs = Registry()
    if args.codec not in codecs.names():
        raise UsageError(f"--codec {args.codec}: one of {', '.join(codecs.names())}")
    first, count = parse_range(args.range)
    if args.farm and args.jobs:
        raise UsageError("--farm and --jobs: one or the other (--jobs makes a farm of its own)")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: at least 1")
    if args.ship_media and not (args.farm or args.jobs):
        raise UsageError("--ship-media: only with --farm (or --jobs)")
    if args.farm or args.jobs:
        if args.segment_frames < 1:
            raise UsageError(f"--segment-frames {args.segment_frames}: at least 1")
        from lumiera.cli import farm_render  # Dask is imported only for a farm render

        return farm_render.main(args, session, output, first, count)
    instance = f"render-{os.getpid()}"
    rd = runtime_dir.resolve(instance, args.runtime_dir)
    job = {"output": str(output), "first": first, "count": count, "codec": args.codec}
    env = {**os.environ, render_job.ENV_JOB: json.dumps(job)}
    cmd = [sys.executable, "-m", "lumiera", "up", str(session.absolute()), "--headless"]
    cmd += ["--script", render_job.__file__, "--instance", instance]
    if args.runtime_dir:
        cmd += ["--runtime-dir", args.runtime_dir]
    if args.config:
        cmd += ["--config", args.config]
    for d in args.defs:
        cmd += ["--def", d]
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            done = _follow(proc, rd, sys.stderr)
        except KeyboardInterrupt:
            print("\nlumiera render: interrupted; no file written", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            if proc.poll() is None:  # interrupted, or following failed: never leave it running
                proc.terminate()  # the supervisor shuts down in order; the partial file goes
                try:
                    proc.wait(STOP_WAIT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()  # its children die with it (parent-death signal)
                    proc.wait()
        code = proc.wait()
        if code != 0 or done is None:
            log.seek(0)
            tail = log.read().splitlines()[-25:]
            print("\n".join(tail), file=sys.stderr)
            print(
                f"lumiera render: failed (exit {code}); {output} was not written", file=sys.stderr
            )
            return code or 1
    seconds = time.monotonic() - started
    print(
        f"rendered {done.frames} frames to {output} in {seconds:.2f} s "
        f"({done.frames / seconds:.1f} fps overall, {done.fps:.1f} fps rendering)"
    )
    return 0


def _follow(
    proc: subprocess.Popen[bytes], rd: runtime_dir.RuntimeDir, out: TextIO
) -> PlayerRenderEnded | None:
    """Show progress until the instance ends; the ``player.render.done`` body, or None."""
    tty = out.isatty()
    events: Subscriber | None = None  # made once the instance has bound its sockets
    done = None
    last_line = 0.0
    try:
        while proc.poll() is None:
            if events is None:
                if not rd.socket("events").exists():
                    time.sleep(0.02)
                    continue
                events = Subscriber(rd, "stats.player", "player.render.")
            event = events.receive(0.2)
            if event is None:
                continue
            body = event.body
            if event.topic == "player.render.done" and isinstance(body, PlayerRenderEnded):
                done = body
                if tty:
                    out.write("\r" + bar(body))  # the bar at its end
                    out.flush()
            elif isinstance(body, StatsPlayer):
                for info in body.streams:
                    if info.mode != "render":
                        continue
                    if tty:
                        out.write("\r" + bar(info))
                        out.flush()
                    elif time.monotonic() - last_line >= PLAIN_EVERY_S:
                        out.write(bar(info) + "\n")
                        last_line = time.monotonic()
    finally:
        if events is not None:
            events.close()
        if tty:
            out.write("\n")
    return done
