"""``lumiera render SESSION -o OUT``: bring the system up headless, render, show progress, end.

This process supervises an instance of its own (``render-<pid>``; Engine,
Session and Player, no Script runner) and renders on it
(:mod:`lumiera.cli.render_local`): a progress bar (frame, fps, ETA) on a
terminal, or a line every few seconds otherwise, the instance's output kept in
a log shown only when something fails. With ``--farm tcp://HOST:PORT`` (or
``--jobs N``) the render is cut into segments that render nodes render
instead (:mod:`lumiera.cli.farm_render`).

Exits 0 when the file is complete; 1 when the render failed (with the reason),
2 on an emergency, 128 + the signal when SIGINT, SIGTERM or SIGHUP stopped it;
then no file is left under the output's name (the encoder writes
``.NAME.partial`` and renames at the end).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lumiera.cli import render_local
from lumiera.errors import CodecError, UsageError
from lumiera.vault.codecspec import Registry


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


def main(args: argparse.Namespace) -> int:
    session = Path(args.session)
    if not session.is_file():
        raise UsageError(f"session {session}: no such file")
    output = Path(args.output).absolute()
    if not output.parent.is_dir():
        raise UsageError(f"-o {args.output}: no directory {output.parent}")
    codecs = Registry()
    try:
        codecs.encoder(args.codec)  # the plugins are looked up only for a name not built in
    except CodecError:
        raise UsageError(f"--codec {args.codec}: one of {', '.join(codecs.names())}") from None
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
        from lumiera.appstate import zygote
        from lumiera.cli import farm_render  # Dask is imported only for a farm render

        zygote.discard_prestarted()  # no instance of this process: no zygote, no subreaper

        return farm_render.main(args, session, output, first, count)
    job = render_local.Job(output, first, count, args.codec)
    # Ended without the interpreter's teardown once this returns (lumiera.cli._exit_now):
    # the instance is down and the file closed. Not a farm render: its clients close
    # as they like.
    args.exit_now = True
    return render_local.run(args, session, job, f"render-{os.getpid()}")
