"""``lumiera render`` on this machine: the render's own instance, supervised by this process.

This process *is* the instance's supervisor (AppState, in its main thread, as
``lumiera up SESSION --headless`` runs it: Engine, Session and Player, no
Script runner), and a driver thread asks the Player to render once the
instance runs (a direct call, :class:`lumiera.api.App`), draws the progress,
and asks the supervisor to stop in order at the end. One process less than
``lumiera up`` in a child: its interpreter start and imports (0.1-0.15 s of
CPU, measured by ``tools/bench_render.py``), and the zygote is forked sooner.

Signals: the supervisor's handlers take SIGINT, SIGTERM and SIGHUP sent to this
process (a terminal's Ctrl-C, ``kill``, systemd, a job runner) and stop the
instance in order: the Player aborts the render and removes its partial
file; the command then exits 128 + the signal (130, 143, 129). The instance's
output goes to a temporary log, shown only when something fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lumiera import config as config_mod
from lumiera import runtime_dir
from lumiera.errors import LumieraError
from lumiera.exits import EXIT_INSTANCE_RUNNING
from lumiera.subsystems import Options

if TYPE_CHECKING:
    from lumiera.appstate.zygote import Zygote

PLAIN_EVERY_S = 5.0  # without a terminal: a progress line this often
STATUS_EVERY_S = 0.25  # while the instance starts: ask its phase this often
DRIVER_END_WAIT_S = 10.0  # after the supervisor ended: the driver's own end
LOG_TAIL = 25  # lines of the instance's output shown on a failure


@dataclass
class Job:
    """What to render, and where the progress goes."""

    output: Path
    first: int | None
    count: int | None
    codec: str
    out: TextIO = field(default_factory=lambda: sys.stderr)


class Driver:
    """The render, run in a thread beside the supervisor: wait, render, stop the instance."""

    def __init__(self, rd: runtime_dir.RuntimeDir, job: Job) -> None:
        self.rd = rd
        self.job = job
        self.ended = threading.Event()  # set once the supervisor's run returned
        self.done: dict[str, Any] | None = None  # the player.render.done body
        self.failure = ""  # why not, when the render failed
        self._last_line = 0.0

    def run(self) -> None:
        try:
            self.done = self._render()
        except LumieraError as e:  # the render failed, or the instance went away
            self.failure = f"{type(e).__name__}: {e}"
        except Exception as e:  # noqa: BLE001 - said, and the instance still stops in order
            self.failure = f"{type(e).__name__}: {e}"
        finally:
            self._stop()

    def _render(self) -> dict[str, Any] | None:
        from lumiera import api

        if not self._wait_sockets():
            return None
        try:
            with api.App(self.rd) as app:
                if not self._wait_running(app):
                    return None
                job = self.job
                return app.render(
                    job.output,
                    first=job.first,
                    count=job.count,
                    codec=job.codec,
                    progress=self._progress,
                )
        finally:
            if self.job.out.isatty():
                self.job.out.write("\n")

    def _progress(self, info: dict[str, Any]) -> None:
        out = self.job.out
        if out.isatty():
            out.write("\r" + bar(info))
            out.flush()
        elif time.monotonic() - self._last_line >= PLAIN_EVERY_S:
            out.write(bar(info) + "\n")
            self._last_line = time.monotonic()

    def _wait_sockets(self) -> bool:
        """Until this process's supervisor has bound its sockets; False when it ended first.

        It writes the pid file after it took the instance's lock and bound them: never
        the sockets of another instance that happens to have the same name.
        """
        me = os.getpid()
        while not self.ended.is_set():
            if runtime_dir.read_pid(self.rd) == me:
                return True
            time.sleep(0.005)
        return False

    def _wait_running(self, app: Any) -> bool:
        """Until the phase is ``running``; False when the instance ends (or is ending) first.

        The phase event wakes this at once; asking ``status`` now and then covers an
        event sent before this subscription took effect.
        """
        app.subscribe("appstate.phase")
        while not self.ended.is_set():
            try:
                phase = app.request("appstate", "status")["phase"]
            except LumieraError:  # not answering yet (or no longer)
                phase = None
            if phase == "running":
                return True
            if phase not in (None, "init", "starting", "opening"):
                return False  # on its way down: its log says why
            try:
                event = app.wait_event("appstate.phase", STATUS_EVERY_S)
            except TimeoutError:
                continue
            if event.data().get("phase") == "running":
                return True
        return False

    def _stop(self) -> None:
        """Ask the supervisor to stop in order (nothing to do if it is ending already)."""
        if self.ended.is_set():
            return
        from lumiera.bus.client import ControlClient

        with contextlib.suppress(LumieraError, OSError), ControlClient(self.rd, 5.0) as client:
            client.request("appstate", "stop")


def bar(info: dict[str, Any], width: int = 30) -> str:
    """A progress bar of a render (a ``stats.player`` stream): frames done of all, fps, ETA."""
    done, count = int(info["frame"]) - int(info["first"]), max(1, int(info["count"]))
    filled = max(0, min(width, int(width * done / count)))
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] frame {done}/{count}  "
        f"{float(info['fps']):.1f} fps  ETA {float(info['eta_s']):.0f} s"
    )


def _zygote(cfg: config_mod.Config, options: Options) -> tuple[Zygote | None, str]:
    """The prestarted zygote, or one started now (or none: exec, and why)."""
    from lumiera.appstate import zygote as zygote_mod

    zygote = zygote_mod.take_prestarted()
    if zygote is not None and cfg.get_str("appstate.spawn") == "fork":
        return zygote, ""
    if zygote is not None:
        zygote.close()
    from lumiera.cli.up import start_zygote

    return start_zygote(cfg, options)


def run(args: Any, session: Path, job: Job, instance: str) -> int:
    """Render ``job`` from ``session`` on an instance of this process; the exit code."""
    cfg = config_mod.load(Path(args.config) if args.config else None, args.defs)
    rd = runtime_dir.resolve(instance, args.runtime_dir)
    options = Options(session=str(session.absolute()), headless=True)
    zygote, why_not = _zygote(cfg, options)  # before any thread or ZeroMQ context
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("appstate| %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(cfg.get_str("log.level"))
        if why_not:
            logging.getLogger("lumiera.appstate").warning("%s", why_not)
        driver = Driver(rd, job)
        thread = threading.Thread(target=driver.run, name="render", daemon=True)
        try:
            from lumiera.appstate.supervisor import Supervisor
            from lumiera.errors import InstanceRunning

            supervisor = Supervisor(rd, cfg, options, log, zygote)
            thread.start()
            try:
                code = supervisor.run()
            except InstanceRunning as e:
                print(f"lumiera render: {e}", file=sys.stderr)
                return EXIT_INSTANCE_RUNNING
        finally:
            driver.ended.set()
            if zygote is not None:
                zygote.close()
            if thread.is_alive():
                thread.join(DRIVER_END_WAIT_S)
            root.removeHandler(handler)
        return _report(driver, supervisor, code, log, started)


def _report(driver: Driver, supervisor: Any, code: int, log: TextIO, started: float) -> int:
    """Say how it ended; the command's exit code."""
    output = driver.job.output
    if supervisor.signalled is not None:
        sig = supervisor.signalled
        said = f"{driver.job.output} is complete" if driver.done is not None else "no file written"
        print(f"\nlumiera render: interrupted; {said} ({sig.name})", file=sys.stderr)
        return 128 + int(sig)
    done = driver.done
    if done is None or code != 0:
        log.seek(0)
        print("\n".join(log.read().splitlines()[-LOG_TAIL:]), file=sys.stderr)
        if driver.failure:
            print(f"lumiera render: {driver.failure}", file=sys.stderr)
        if done is None:
            print(
                f"lumiera render: failed (exit {code or 1}); {output} was not written",
                file=sys.stderr,
            )
            return code or 1
        print(  # the file is complete; the instance's end was not orderly
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
