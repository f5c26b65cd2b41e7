"""``lumiera run SUBSYSTEM``: run one subsystem in the foreground, for debugging.

The instance must have been started with ``lumiera up --debug SUBSYSTEM``; the
supervisor runs everything else and waits for this process to attach. Its
watchdog is suspended, so breakpoints are fine; when this process ends, the
supervisor keeps the rest running and waits for it to attach again.
``python -m pdb -m lumiera run session`` runs it under the debugger.
"""

from __future__ import annotations

import argparse

from lumiera import runtime_dir
from lumiera.errors import NotRunning, UsageError
from lumiera.subsystems import SUBSYSTEMS


def main(args: argparse.Namespace) -> int:
    spec = SUBSYSTEMS.get(args.subsystem)
    if spec is None:
        raise UsageError(f"no subsystem {args.subsystem!r} (have: {', '.join(SUBSYSTEMS)})")
    rd = runtime_dir.resolve(args.instance, args.runtime_dir)
    if not runtime_dir.is_locked(rd):
        raise NotRunning(f"no lumiera instance {rd.instance!r} is running at {rd.path}")
    from lumiera.actors.process import main as run_subsystem

    return run_subsystem(spec.name, spec.module, rd, attached=True)
