"""``lumiera up``: check everything that can be checked, then run the supervisor."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lumiera import config as config_mod
from lumiera import runtime_dir
from lumiera.errors import InstanceRunning, UsageError
from lumiera.exits import EXIT_INSTANCE_RUNNING
from lumiera.subsystems import SUBSYSTEMS, Options


def options_from(args: argparse.Namespace) -> Options:
    """Validate what the command line asks for (before anything is spawned)."""
    for script in args.script:
        if not Path(script).is_file():
            raise UsageError(f"--script {script}: no such file")
    if args.port is not None and not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: must be 1-65535")
    if args.debug is not None and args.debug not in SUBSYSTEMS:
        raise UsageError(f"--debug {args.debug}: no such subsystem (have: {', '.join(SUBSYSTEMS)})")
    options = Options(
        session=str(Path(args.session).absolute()) if args.session else None,
        headless=args.headless,
        scripts=tuple(str(Path(s).absolute()) for s in args.script),
        port=args.port,
        debug=args.debug,
    )
    from lumiera.subsystems import start_order

    if args.debug is not None and args.debug not in start_order(options):
        raise UsageError(f"--debug {args.debug}: this command line does not start {args.debug}")
    return options


def main(args: argparse.Namespace) -> int:
    cfg = config_mod.load(Path(args.config) if args.config else None, args.defs)
    options = options_from(args)
    rd = runtime_dir.resolve(args.instance, args.runtime_dir)
    logging.basicConfig(
        level=cfg.get_str("log.level"),
        stream=sys.stderr,
        format="appstate| %(levelname)s %(message)s",
    )
    from lumiera.appstate.supervisor import Supervisor

    try:
        return Supervisor(rd, cfg, options, sys.stderr).run()
    except InstanceRunning as e:
        print(f"lumiera: {e}", file=sys.stderr)
        return EXIT_INSTANCE_RUNNING
