"""The commands of the supervisor itself: requests addressed ``to: "appstate"``.

Runs in the supervisor process, in its poll loop. A handler returns the reply
or raises a LumieraError; ``stop`` only records the request, and the control
plane (:mod:`.control`) starts the shutdown after the reply went out. The
commands read the supervisor's parts (runner, rings) but know nothing of it.
"""

from __future__ import annotations

import os
import time
from typing import Any

from lumiera.appstate import children
from lumiera.appstate.rings import Rings
from lumiera.appstate.runner import Runner
from lumiera.bus.commands import Commands, command
from lumiera.config import Config
from lumiera.errors import BadArguments, ShuttingDown
from lumiera.runtime_dir import RuntimeDir
from lumiera.shm.spec import parse_specs
from lumiera.subsystems import Options

APPSTATE = "appstate"  # the name requests use to address the supervisor


class AppStateCommands(Commands):
    """The supervisor's own commands, over the instance's runner and rings."""

    def __init__(
        self,
        *,
        rd: RuntimeDir,
        config: Config,
        options: Options,
        runner: Runner,
        rings: Rings,
        started: float,
    ) -> None:
        self.rd = rd
        self.config = config
        self.options = options
        self.runner = runner
        self.rings = rings
        self.started = started  # time.monotonic() when the supervisor started
        self.stop_requested = False

    @property
    def owner(self) -> str:
        return APPSTATE

    @command
    def on_ping(self) -> dict[str, Any]:
        """Answer at once: the supervisor is alive."""
        return {"pong": True, "name": APPSTATE, "pid": os.getpid(), "ts": time.time()}

    @command
    def on_status(self) -> dict[str, Any]:
        """The instance, its phase, and each subsystem with state, pid, uptime, CPU and memory."""
        now = time.monotonic()
        subsystems = self.runner.snapshot(now)
        for entry in subsystems:
            usage = children.proc_usage(entry["pid"]) if entry["pid"] else {}
            entry["cpu_s"] = usage.get("cpu_s")
            entry["rss_bytes"] = usage.get("rss_bytes")
        return {
            "instance": self.rd.instance,
            "pid": os.getpid(),
            "phase": self.runner.phase.value,
            "runtime_dir": str(self.rd.path),
            "uptime_s": round(now - self.started, 3),
            "options": self.options.to_dict(),
            "errors": list(self.runner.errors),
            "emergency": self.runner.emergency,
            "subsystems": subsystems,
            "rings": self.rings.describe(),
        }

    @command
    def on_create_ring(
        self,
        *,
        name: str,
        policy: str = "drop",
        slots: int | None = None,
        slot_mb: int | None = None,
    ) -> dict[str, Any]:
        """Create a frame ring (as `[rings] declared` does at start); returns its description."""
        cfg = self.config
        decl = f"{name}:{policy}:{slots or cfg.get_int('rings.slots')}"
        decl += f":{slot_mb or cfg.get_int('rings.slot_mb')}"
        try:
            (spec,) = parse_specs(decl, 1, 1)
        except ValueError as e:
            raise BadArguments(f"create_ring: {e}") from None
        return self.rings.create(spec)

    @command
    def on_stop(self) -> dict[str, Any]:
        """Shut down in order; the reply comes first. ``lumiera stop`` then waits for the pid."""
        phase = self.runner.phase
        if self.stop_requested or phase.ending:
            raise ShuttingDown(f"instance {self.rd.instance!r} is already {phase}")
        self.stop_requested = True
        return {"stopping": True, "pid": os.getpid()}
