"""Where subsystem output goes: the ``up`` terminal, one log file per subsystem, the bus.

As compose and honcho do, every line a subsystem prints is shown in the
terminal with its name in front; it is also appended to ``<log dir>/<name>.log``
(kept after the instance ends, crash included) and published on ``log.<name>``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from lumiera.bus.topics import EventBody, LogLine
from lumiera.config import Config

Publish = Callable[[str, EventBody, str], None]  # (topic, body, sender)


def log_dir_for(config: Config, instance: str) -> Path:
    """``log.dir`` if set, else ``$XDG_STATE_HOME/lumiera/<instance>`` (~/.local/state/...)."""
    configured = config.get_str("log.dir")
    if configured:
        return Path(configured).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "lumiera" / instance


class Output:
    """Subsystem output lines, shown, logged and published. Runs in the supervisor's loop."""

    def __init__(self, terminal: TextIO, log_dir: Path, publish: Publish) -> None:
        self.terminal = terminal
        self.log_dir = log_dir
        self.publish = publish
        self._files: dict[str, TextIO] = {}
        self._broken: set[str] = set()  # logs we could not write: shown and published only

    def open(self) -> None:
        """Create the log directory; failing that, go on without log files (said once)."""
        try:
            self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            self.show(f"appstate| ERROR no log files: cannot create {self.log_dir}: {e}")

    def line(self, name: str, stream: str, line: str) -> None:
        self.show(f"{name:<8}| {line}")
        self.publish(f"log.{name}", LogLine(stream=stream, line=line), name)
        if name in self._broken:
            return
        try:
            f = self._files.get(name)
            if f is None:
                f = self._files[name] = (self.log_dir / f"{name}.log").open("a", encoding="utf-8")
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {stream} {line}\n")
            f.flush()
        except OSError as e:  # a full disk must not take the supervisor down
            self._broken.add(name)
            self.show(f"appstate| ERROR cannot write the log of {name} in {self.log_dir}: {e}")

    def show(self, text: str) -> None:
        """Write to the terminal; a closed terminal (the user went away) is not an error."""
        with contextlib.suppress(OSError, ValueError):
            self.terminal.write(text + "\n")
            self.terminal.flush()

    def close(self) -> None:
        for f in self._files.values():
            with contextlib.suppress(OSError):
                f.close()
        self._files.clear()

    def show_running(self, instance: str, path: Path, rows: list[dict[str, Any]]) -> None:
        """The instance runs: its subsystems (``rows``: the runner's snapshot), and what next."""
        lines = [f"lumiera: instance {instance!r} running (pid {os.getpid()}, {path})"]
        for s in rows:
            lines.append(f"  {s['name']:<8} {s['layer']:<6} {s['state']:<9} pid {s['pid']}")
        lines.append("  (lumiera status | lumiera tap | lumiera stop, or Ctrl-C)")
        self.show("\n".join(lines))

    def name_recordings(self, recordings: list[Path]) -> None:
        """An emergency's report names the recordings of the bus running now (RECORDING.md)."""
        for rec in recordings:
            self.show(
                f"lumiera: emergency while the bus was being recorded to {rec} "
                f"(lumiera replay {rec} --into NEW-SESSION)"
            )
