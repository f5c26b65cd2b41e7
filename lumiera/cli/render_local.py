"""``lumiera render`` on this machine: a render on an instance of this process's own.

The instance is :mod:`lumiera.cli.hosted`'s (this process supervises it; Engine,
Session and Player, no Script runner); the job asks the Player to render with
a direct call and draws the progress. SIGINT, SIGTERM or SIGHUP stop the
instance in order: the Player aborts the render and removes its partial file,
and the command exits 128 + the signal (130, 143, 129). The instance's output
is shown only when something fails.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lumiera import config as config_mod
from lumiera import runtime_dir
from lumiera.cli import hosted
from lumiera.errors import InstanceRunning
from lumiera.exits import EXIT_INSTANCE_RUNNING
from lumiera.subsystems import Options

if TYPE_CHECKING:
    from lumiera.api import App

PLAIN_EVERY_S = 5.0  # without a terminal: a progress line this often


@dataclass
class Job:
    """What to render, and where the progress goes."""

    output: Path
    first: int | None
    count: int | None
    codec: str
    out: TextIO = field(default_factory=lambda: sys.stderr)
    _last_line: float = field(default=0.0, init=False, repr=False)

    def __call__(self, app: App) -> dict[str, Any]:
        """Render on ``app``'s instance: the ``player.render.done`` body."""
        try:
            done: dict[str, Any] = app.render(
                self.output,
                first=self.first,
                count=self.count,
                codec=self.codec,
                progress=self._progress,
            )
            return done
        finally:
            if self.out.isatty():
                self.out.write("\n")

    def _progress(self, info: dict[str, Any]) -> None:
        out = self.out
        if out.isatty():
            out.write("\r" + bar(info))
            out.flush()
        elif time.monotonic() - self._last_line >= PLAIN_EVERY_S:
            out.write(bar(info) + "\n")
            self._last_line = time.monotonic()


def bar(info: dict[str, Any], width: int = 30) -> str:
    """A progress bar of a render (a ``stats.player`` stream): frames done of all, fps, ETA."""
    done, count = int(info["frame"]) - int(info["first"]), max(1, int(info["count"]))
    filled = max(0, min(width, int(width * done / count)))
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] frame {done}/{count}  "
        f"{float(info['fps']):.1f} fps  ETA {float(info['eta_s']):.0f} s"
    )


def run(args: Any, session: Path, job: Job, instance: str) -> int:
    """Render ``job`` from ``session`` on an instance of this process; the exit code."""
    cfg = config_mod.load(Path(args.config) if args.config else None, args.defs)
    rd = runtime_dir.resolve(instance, args.runtime_dir)
    # The same subsystems as the zygote's prestart (lumiera.cli.main) preloaded for.
    options = Options(session=str(session.absolute()), headless=True)
    try:
        outcome = hosted.run(cfg, rd, options, job)
    except InstanceRunning as e:
        print(f"lumiera render: {e}", file=sys.stderr)
        return EXIT_INSTANCE_RUNNING
    return _report(job, outcome)


def _report(job: Job, outcome: hosted.Outcome) -> int:
    """Say how it ended; the command's exit code."""
    output, code, done = job.output, outcome.code, outcome.result
    if outcome.signalled is not None:
        sig = outcome.signalled
        said = f"{output} is complete" if done is not None else "no file written"
        print(f"\nlumiera render: interrupted; {said} ({sig.name})", file=sys.stderr)
        return 128 + int(sig)
    if done is None or code != 0:
        print("\n".join(outcome.log), file=sys.stderr)
        if outcome.failure:
            print(f"lumiera render: {outcome.failure}", file=sys.stderr)
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
    seconds = time.monotonic() - outcome.started
    frames = int(done["frames"])
    print(
        f"rendered {frames} frames to {output} in {seconds:.2f} s "
        f"({frames / seconds:.1f} fps overall, {float(done['fps']):.1f} fps rendering)"
    )
    return 0
