"""``lumiera up``: check everything that can be checked, then run the supervisor."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lumiera import config as config_mod
from lumiera import runtime_dir
from lumiera.errors import ConfigError, InstanceRunning, UsageError
from lumiera.exits import EXIT_INSTANCE_RUNNING
from lumiera.subsystems import SUBSYSTEMS, Options

if TYPE_CHECKING:
    from lumiera.appstate.zygote import Zygote


def options_from(args: argparse.Namespace) -> Options:
    """Validate what the command line asks for (before anything is spawned)."""
    for script in args.script:
        if not Path(script).is_file():
            raise UsageError(f"--script {script}: no such file")
    if args.port is not None and not 0 <= args.port < 65536:
        raise UsageError(f"--port {args.port}: must be 0-65535 (0: a free one)")
    if args.join is not None:
        try:
            config_mod.scheduler_address(args.join)
        except ValueError as e:
            raise UsageError(f"--join {args.join!r}: {e}") from None
    if args.debug is not None and args.debug not in SUBSYSTEMS:
        raise UsageError(f"--debug {args.debug}: no such subsystem (have: {', '.join(SUBSYSTEMS)})")
    options = Options(
        session=str(Path(args.session).absolute()) if args.session else None,
        headless=args.headless,
        scripts=tuple(str(Path(s).absolute()) for s in args.script),
        port=args.port,
        debug=args.debug,
        join=args.join,
    )
    from lumiera.subsystems import start_order

    if args.debug is not None and args.debug not in start_order(options):
        raise UsageError(f"--debug {args.debug}: this command line does not start {args.debug}")
    return options


def check_node(options: Options, cfg: config_mod.Config) -> None:
    """What a render node needs (a scheduler to join, TLS for a tls:// one, a join in time).

    Raises UsageError (ConfigError) before anything is spawned.
    """
    if not options.node:
        return
    if options.join is None and not cfg.get_str("netnode.scheduler"):
        raise UsageError(
            "a render node needs a scheduler to join: give --join tcp://HOST:PORT "
            "(or [netnode] scheduler in the configuration)"
        )
    from lumiera.vault import security  # Dask's import, only for a render node

    security.for_address(cfg, options.join or cfg.get_str("netnode.scheduler"))
    join, start = cfg.get_float("netnode.join_timeout"), cfg.get_float("appstate.start_timeout")
    if join >= start:  # else the supervisor's start window ends first, saying less
        raise ConfigError(
            f"netnode.join_timeout ({join:g}) must be less than appstate.start_timeout ({start:g})"
        )


def start_zygote(cfg: config_mod.Config, options: Options) -> tuple[Zygote | None, str]:
    """The zygote (``[appstate] spawn = fork``), or None and why not (then: exec).

    Call first of all, before a ZeroMQ context, a lock or a thread exists in this
    process: it imports the subsystems' modules while the supervisor sets up.
    """
    if cfg.get_str("appstate.spawn") != "fork":
        return None, ""
    from lumiera.appstate.zygote import Zygote, preload

    try:
        return Zygote.start(preload(options)), ""
    except OSError as e:
        return None, f"no zygote ({e}): subsystems are started with exec"


def main(args: argparse.Namespace) -> int:
    cfg = config_mod.load(Path(args.config) if args.config else None, args.defs)
    options = options_from(args)
    check_node(options, cfg)
    rd = runtime_dir.resolve(args.instance, args.runtime_dir)
    zygote, why_not = start_zygote(cfg, options)
    logging.basicConfig(
        level=cfg.get_str("log.level"),
        stream=sys.stderr,
        format="appstate| %(levelname)s %(message)s",
    )
    if why_not:
        logging.getLogger("lumiera.appstate").warning("%s", why_not)
    from lumiera.appstate.supervisor import Supervisor

    try:
        return Supervisor(rd, cfg, options, sys.stderr, zygote).run()
    except InstanceRunning as e:
        print(f"lumiera: {e}", file=sys.stderr)
        return EXIT_INSTANCE_RUNNING
    finally:
        if zygote is not None:
            zygote.close()  # again (a no-op) after the supervisor's teardown closed it
