"""The ``lumiera`` command line: ``up`` (the supervisor) and the bus tools.

Exit codes: see :mod:`lumiera.exits` and the README. Usage errors
(a bad option, a bad configuration value) exit 64 with a message, before
anything is spawned.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from lumiera import __version__
from lumiera.bus import DEFAULT_TIMEOUT
from lumiera.errors import LumieraError, NotRunning, UsageError
from lumiera.exits import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    stop_signals,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _instance_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--instance", default="default", help="instance name (default: default)")
    p.add_argument(
        "--runtime-dir", help="runtime directory (default: $XDG_RUNTIME_DIR/lumiera/INSTANCE)"
    )


def _lazy(module: str, name: str = "main") -> Callable[[argparse.Namespace], int]:
    """``lumiera.cli.MODULE.NAME``, imported only when the command runs: each command pays
    for its own imports alone (``render`` and ``demo`` need PyAV and numpy, ``up`` the
    supervisor, the tools the bus client), and ``lumiera render`` spawns its instance
    sooner."""

    def run(args: argparse.Namespace) -> int:
        cmd = importlib.import_module(f"lumiera.cli.{module}")
        func: Callable[[argparse.Namespace], int] = getattr(cmd, name)
        return func(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    from lumiera.cli import farm

    parser = _Parser(prog="lumiera", description="The Lumiera application kernel.")
    parser.add_argument("--version", action="version", version=f"lumiera {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("up", help="start the application (the AppState supervisor)")
    p.add_argument("session", nargs="?", help="session file (created when missing)")
    p.add_argument(
        "--headless",
        action="store_true",
        help="run the core (session, player, engine) without a GUI",
    )
    p.add_argument(
        "--script", action="append", default=[], metavar="FILE", help="run a script (repeatable)"
    )
    p.add_argument(
        "--port", type=int, help="run as a render node, its worker on PORT (0: any; no GUI)"
    )
    p.add_argument(
        "--join",
        metavar="tcp://HOST:PORT",
        help="run as a render node joining this Dask scheduler (no GUI)",
    )
    p.add_argument("--def", dest="defs", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--config", help="configuration file layered over config/setup.ini")
    p.add_argument("--debug", metavar="SUBSYSTEM", help="leave SUBSYSTEM to `lumiera run`")
    _instance_args(p)
    p.set_defaults(func=_lazy("up"))

    p = sub.add_parser(
        "demo", help="generate two clips, build a session by script, render it to an MP4"
    )
    p.add_argument("--dir", default="lumiera-demo", help="where (default: ./lumiera-demo)")
    p.add_argument("--def", dest="defs", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--config", help="configuration file layered over config/setup.ini")
    p.add_argument("--instance", default="demo", help="instance name (default: demo)")
    p.add_argument("--runtime-dir", help="runtime directory (default: $XDG_RUNTIME_DIR/...)")
    p.set_defaults(func=_lazy("demo"))

    p = sub.add_parser(
        "render", help="render a session to a file (brings the system up headless, then ends)"
    )
    p.add_argument("session", help="session file")
    p.add_argument("-o", "--output", required=True, help="the file to write")
    p.add_argument("--range", metavar="A:B", help="frames A to B-1 (default: the whole timeline)")
    p.add_argument("--codec", default="h264", help="encoder name (default: h264; ffv1: lossless)")
    p.add_argument("--def", dest="defs", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--config", help="configuration file layered over config/setup.ini")
    p.add_argument("--runtime-dir", help="runtime directory of the render's own instance")
    p.add_argument(
        "--farm", metavar="tcp://HOST:PORT", help="render on the render nodes of this scheduler"
    )
    p.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="render on N render nodes of a farm on this machine, made for this render",
    )
    p.add_argument(
        "--segment-frames", type=int, default=250, metavar="N", help="farm: frames a segment"
    )
    p.add_argument(
        "--ship-media",
        action="store_true",
        help="farm: serve the media to the nodes (no shared storage needed)",
    )
    p.add_argument(
        "--connect-timeout", type=float, default=10.0, metavar="S", help="farm: reach it within S"
    )
    p.set_defaults(func=_lazy("render"))

    farm.add_parser(sub)

    p = sub.add_parser("status", help="show the instance and its subsystems")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds (default: %(default)s)"
    )
    _instance_args(p)
    p.set_defaults(func=_lazy("tools", "status"))

    p = sub.add_parser("tap", help="print bus events as they happen")
    p.add_argument("prefixes", nargs="*", metavar="PREFIX", help="topic prefixes (default: all)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--count", type=int, help="stop after N events")
    p.add_argument("--timeout", type=float, help="stop after this many seconds")
    p.add_argument(
        "--record", metavar="FILE", help="record the bus into FILE too (docs/RECORDING.md)"
    )
    _instance_args(p)
    p.set_defaults(func=_lazy("record", "tap"))

    p = sub.add_parser(
        "replay", help="replay a recording's session commands into a new session, compare"
    )
    p.add_argument("file", metavar="FILE", help="a recording (lumiera tap --record FILE)")
    p.add_argument("--into", required=True, metavar="SESSION", help="the new session file")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds a command (default: %(default)s)",
    )
    p.add_argument("--runtime-dir", help="runtime directory of the replay's own instance")
    p.set_defaults(func=_lazy("record", "replay"))

    p = sub.add_parser("send", help="send one request to a subsystem and print the reply")
    p.add_argument("subsystem", help="subsystem name, or appstate")
    p.add_argument("cmd", metavar="COMMAND")
    p.add_argument(
        "args", nargs="?", default="{}", metavar="JSON", help="arguments as a JSON object"
    )
    p.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds (default: %(default)s)"
    )
    way = p.add_mutually_exclusive_group()
    way.add_argument(
        "--direct",
        action="store_true",
        help="call the subsystem's own socket (svc-NAME), routed if it has none",
    )
    way.add_argument(
        "--routed", dest="direct", action="store_false", help="via the supervisor (default)"
    )
    _instance_args(p)
    p.set_defaults(func=_lazy("tools", "send"))

    p = sub.add_parser(
        "session",
        help="edit the session: COMMAND KEY=VALUE... (e.g. add_clip media=m1 track=t1 position=0)",
    )
    p.add_argument("cmd", metavar="COMMAND", help="add_media, add_track, add_clip, undo, ...")
    p.add_argument(
        "pairs", nargs="*", metavar="KEY=VALUE", help="numbers are numbers, the rest text"
    )
    p.add_argument("--id", help="command id: a retry with the same id is not applied twice")
    p.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds (default: %(default)s)"
    )
    _instance_args(p)
    p.set_defaults(func=_lazy("tools", "session"))
    from lumiera.cli import session_io

    session_io.add_parsers(sub)  # `session export|import SESSION FILE`: OpenTimelineIO

    p = sub.add_parser("stop", help="shut the instance down in order and wait until it is gone")
    p.add_argument("--timeout", type=float, default=30.0)
    _instance_args(p)
    p.set_defaults(func=_lazy("tools", "stop"))

    p = sub.add_parser("run", help="run one subsystem in the foreground (with `up --debug NAME`)")
    p.add_argument("subsystem")
    _instance_args(p)
    p.set_defaults(func=_lazy("run"))
    return parser


_signalled: int | None = None  # the first SIGINT/SIGTERM/SIGHUP a command line got


def _interrupt(signum: int, _frame: object) -> None:
    global _signalled
    _signalled = _signalled or signum
    raise KeyboardInterrupt


def _exit_code(code: int) -> int:
    """An interrupted command's code says which signal it was (128 + the signal)."""
    if code == EXIT_INTERRUPTED and _signalled is not None:
        return 128 + _signalled
    return code


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        # A command line: SIGINT, SIGTERM and SIGHUP each stop it as Ctrl-C does (its
        # own cleanup runs), also when it was started with SIGINT ignored, as a shell
        # starts a background job. `up` (and `render`) install their supervisor's own.
        for sig in stop_signals():  # not a SIGHUP that nohup asked to be ignored
            signal.signal(sig, _interrupt)
    early = argv is None and sys.argv[1:2] == ["render"]
    if early:  # first thing: see zygote.prestart (lumiera.cli.hosted takes it)
        from lumiera.appstate import zygote
        from lumiera.subsystems import Options

        zygote.prestart(Options(session="-", headless=True))
    args: argparse.Namespace | None = None
    try:
        args = build_parser().parse_args(argv)
        code: int = _exit_code(args.func(args))
    except UsageError as e:
        print(f"lumiera: {e}", file=sys.stderr)
        code = EXIT_USAGE
    except NotRunning as e:
        print(f"lumiera: {e}", file=sys.stderr)
        code = EXIT_UNAVAILABLE
    except LumieraError as e:
        print(f"lumiera: {e}", file=sys.stderr)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        code = _exit_code(EXIT_INTERRUPTED)
    finally:
        if early:
            zygote.discard_prestarted()  # not taken (a usage error, an early failure)
    if early and getattr(args, "exit_now", False):  # render.main asks for it (a local render)
        _exit_now(code)
    return code


def _exit_now(code: int) -> NoReturn:
    """End ``lumiera render`` at once, its output flushed: its instance is stopped, its
    files closed and said; the interpreter's own teardown would add 20-25 ms to the
    command (measured with tools/bench_render.py's 1-frame render)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
