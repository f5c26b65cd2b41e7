"""``lumiera render SESSION -o OUT``: bring the system up headless, render, show progress, end.

It starts ``lumiera up SESSION --headless`` on an instance of its own
(``render-<pid>``; Engine, Session and Player, no Script runner), with the
instance's output kept in a log file and shown only when something fails.
Once the instance runs, this process asks its Player to render (a direct
call, :class:`lumiera.api.App`), follows the render on the bus
(``stats.player``, ``player.render.*``), draws a progress bar (frame, fps,
ETA) on a terminal, or a line every few seconds otherwise, and stops the
instance in order at the end. The instance gets a parent-death signal: this
command killed, it stops too. With
``--farm tcp://HOST:PORT`` the render is cut into segments that the farm's
render nodes render instead (:mod:`lumiera.cli.farm_render`).

Exits 0 when the file is complete; otherwise the instance's exit code (1: the
render failed, with the reason; 2: an emergency), and no file is left under
the output's name (the encoder writes ``.NAME.partial`` and renames at the end).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from lumiera import runtime_dir
from lumiera.errors import LumieraError, UsageError
from lumiera.exits import EXIT_INTERRUPTED
from lumiera.parentdeath import signal_on_parent_death
from lumiera.vault.codecspec import Registry

PLAIN_EVERY_S = 5.0  # without a terminal: a progress line this often
STOP_WAIT_S = 30.0  # the instance's orderly end, then SIGKILL
STATUS_EVERY_S = 0.25  # while the instance starts: ask its phase this often


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


def bar(info: Mapping[str, Any], width: int = 30) -> str:
    """A progress bar of a render (a ``stats.player`` stream): frames done of all, fps, ETA."""
    done, count = int(info["frame"]) - int(info["first"]), max(1, int(info["count"]))
    filled = max(0, min(width, int(width * done / count)))
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] frame {done}/{count}  "
        f"{float(info['fps']):.1f} fps  ETA {float(info['eta_s']):.0f} s"
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
    cmd = [sys.executable, "-m", "lumiera", "up", str(session.absolute()), "--headless"]
    cmd += ["--instance", instance]
    if args.runtime_dir:
        cmd += ["--runtime-dir", args.runtime_dir]
    if args.config:
        cmd += ["--config", args.config]
    for d in args.defs:
        cmd += ["--def", d]
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Killed with this command (SIGKILL, a crash), the instance stops in order.
            preexec_fn=signal_on_parent_death(signal.SIGTERM),  # noqa: PLW1509 - prctl only
        )
        failure = ""
        done: dict[str, Any] | None = None
        try:
            done = _render(
                proc, rd, output=output, first=first, count=count, codec=args.codec, out=sys.stderr
            )
        except KeyboardInterrupt:
            print("\nlumiera render: interrupted; no file written", file=sys.stderr)
            return EXIT_INTERRUPTED
        except LumieraError as e:  # the render failed, or the instance went away
            failure = f"{type(e).__name__}: {e}"
        finally:
            _stop(proc, rd)  # in every case: the instance never outlives the command
        code = proc.wait()
        if done is None:
            log.seek(0)
            print("\n".join(log.read().splitlines()[-25:]), file=sys.stderr)
            if failure:
                print(f"lumiera render: {failure}", file=sys.stderr)
            print(
                f"lumiera render: failed (exit {code or 1}); {output} was not written",
                file=sys.stderr,
            )
            return code or 1
        if code != 0:  # the file is complete; the instance's end was not orderly
            log.seek(0)
            print("\n".join(log.read().splitlines()[-25:]), file=sys.stderr)
            print(
                f"lumiera render: the instance ended with exit {code} after the render "
                f"({output} is complete)",
                file=sys.stderr,
            )
            return code
    seconds = time.monotonic() - started
    frames = int(done["frames"])
    print(
        f"rendered {frames} frames to {output} in {seconds:.2f} s "
        f"({frames / seconds:.1f} fps overall, {float(done['fps']):.1f} fps rendering)"
    )
    return 0


def _render(
    proc: subprocess.Popen[bytes],
    rd: runtime_dir.RuntimeDir,
    *,
    output: Path,
    first: int | None,
    count: int | None,
    codec: str,
    out: TextIO,
) -> dict[str, Any] | None:
    """Once the instance runs, ask its Player to render; show progress; the ``done`` body.

    None when the instance ended before it was running (its log says why).
    Raises RenderFailed (a LumieraError) when the Player reports a failure.
    """
    from lumiera import api  # after the instance was spawned: its start overlaps this import

    if not _wait_sockets(proc, rd):
        return None
    tty = out.isatty()
    last_line = 0.0

    def progress(info: dict[str, Any]) -> None:
        nonlocal last_line
        if tty:
            out.write("\r" + bar(info))
            out.flush()
        elif time.monotonic() - last_line >= PLAIN_EVERY_S:
            out.write(bar(info) + "\n")
            last_line = time.monotonic()

    with api.App(rd) as app:
        if not _wait_running(proc, app):
            return None
        try:
            done = app.render(output, first=first, count=count, codec=codec, progress=progress)
        finally:
            if tty:
                out.write("\n")
    return done


def _wait_sockets(proc: subprocess.Popen[bytes], rd: runtime_dir.RuntimeDir) -> bool:
    """Until the supervisor has bound its sockets; False when it ended first."""
    while proc.poll() is None:
        if rd.socket("control").exists() and rd.socket("events").exists():
            return True
        time.sleep(0.01)
    return False


def _wait_running(proc: subprocess.Popen[bytes], app: Any) -> bool:
    """Until the instance's phase is ``running``; False when it ended (or is ending) first.

    The phase event wakes this at once; asking ``status`` now and then covers an
    event sent before this subscription took effect.
    """
    app.subscribe("appstate.phase")
    while proc.poll() is None:
        try:
            phase = app.request("appstate", "status")["phase"]
        except LumieraError:  # not answering yet (or no longer)
            phase = None
        if phase == "running":
            return True
        if phase not in (None, "starting", "opening"):
            return False  # it is on its way down: its log says why
        try:
            event = app.wait_event("appstate.phase", STATUS_EVERY_S)
        except TimeoutError:
            continue
        if event.data().get("phase") == "running":
            return True
    return False


def _stop(proc: subprocess.Popen[bytes], rd: runtime_dir.RuntimeDir) -> None:
    """Stop the instance in order (``appstate stop``, else SIGTERM), SIGKILL as a last resort."""
    if proc.poll() is not None:
        return
    from lumiera.bus.client import ControlClient

    try:
        with ControlClient(rd, timeout=2.0) as client:
            client.request("appstate", "stop")
    except (LumieraError, OSError):
        proc.terminate()  # the supervisor shuts down in order; a partial file goes
    try:
        proc.wait(STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()  # its children die with it (parent-death signal)
        proc.wait()
