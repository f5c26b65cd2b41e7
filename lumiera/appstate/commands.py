"""The commands of the supervisor itself: requests addressed ``to: "appstate"``.

Runs in the supervisor process, in its poll loop. A handler returns the reply
or raises a LumieraError; ``stop`` only records the request, and the
supervisor starts the shutdown after the reply went out.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from lumiera.appstate import children
from lumiera.appstate.model import Phase
from lumiera.bus.commands import Commands, command
from lumiera.errors import BadArguments, ShuttingDown
from lumiera.shm.spec import parse_specs

if TYPE_CHECKING:
    from lumiera.appstate.supervisor import Supervisor

APPSTATE = "appstate"  # the name requests use to address the supervisor


class AppStateCommands(Commands):
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
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
        sup, now = self.sup, time.monotonic()
        subsystems = sup.runner.snapshot(now)
        for entry in subsystems:
            usage = children.proc_usage(entry["pid"]) if entry["pid"] else {}
            entry["cpu_s"] = usage.get("cpu_s")
            entry["rss_bytes"] = usage.get("rss_bytes")
        return {
            "instance": sup.rd.instance,
            "pid": os.getpid(),
            "phase": sup.runner.phase.value,
            "runtime_dir": str(sup.rd.path),
            "uptime_s": round(now - sup.started, 3),
            "options": sup.options.to_dict(),
            "errors": list(sup.runner.errors),
            "emergency": sup.runner.emergency,
            "subsystems": subsystems,
            "rings": sup.rings.describe(),
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
        cfg = self.sup.config
        decl = f"{name}:{policy}:{slots or cfg.get_int('rings.slots')}"
        decl += f":{slot_mb or cfg.get_int('rings.slot_mb')}"
        try:
            (spec,) = parse_specs(decl, 1, 1)
        except ValueError as e:
            raise BadArguments(f"create_ring: {e}") from None
        return self.sup.rings.create(spec)

    @command
    def on_stop(self) -> dict[str, Any]:
        """Shut down in order; the reply comes first. ``lumiera stop`` then waits for the pid."""
        phase = self.sup.runner.phase
        if self.stop_requested or phase in (
            Phase.CLOSING,
            Phase.STOPPING,
            Phase.EMERGENCY,
            Phase.DONE,
        ):
            raise ShuttingDown(f"instance {self.sup.rd.instance!r} is already {phase}")
        self.stop_requested = True
        return {"stopping": True, "pid": os.getpid()}
