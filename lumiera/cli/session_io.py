"""``lumiera session export SESSION OUT`` and ``lumiera session import SESSION IN``: OTIO files.

Both work on a session FILE, offline (the session's journal, as ``lumiera
render`` reads it), not on a running instance: the other ``lumiera session
COMMAND KEY=VALUE`` edits go to the running instance as before. A session file
that a running instance holds is refused (its journal is locked).

- ``export`` writes the session's timeline in the format of OUT's suffix: any
  installed OpenTimelineIO adapter that writes (``.otio`` is built in); an
  unknown suffix is a usage error (exit 64) listing those there are.
- ``import`` adds a timeline file's media, tracks, clips and transitions to the
  session file (created when missing) as ordinary journaled commands, so each
  can be undone. It refuses a session that already has media, tracks or clips
  unless ``--append`` is given (then tracks go on top, the output settings
  stay the session's, ids already taken are replaced by new ones). Nothing is
  imported when a media file is missing (each is named) or anything breaks the
  session's rules. What lumiera cannot represent (nested stacks, effects, speed
  changes, markers, non-file media, non-dissolve transitions, times between
  frames) is printed, and then nothing is imported (exit 1) unless ``--lossy``
  is given: then the rest is imported and the list printed all the same.

See docs/OTIO.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lumiera.errors import BadArguments, UsageError
from lumiera.exits import EXIT_ERROR

IO_COMMANDS = ("export", "import")
EPILOG = (
    "Offline, on a session FILE: `lumiera session export SESSION OUT.otio` writes its "
    "timeline as OpenTimelineIO; `lumiera session import SESSION IN.otio [--append] "
    "[--lossy]` adds one to it (see docs/OTIO.md)."
)


def add_parsers(sub: Any) -> None:
    """Make ``export`` and ``import`` commands of the ``session`` parser (after it is added)."""
    p: argparse.ArgumentParser = sub.choices["session"]
    p.epilog = EPILOG
    p.add_argument(
        "--append", action="store_true", help="import: into a session that has an edit already"
    )
    p.add_argument(
        "--lossy",
        action="store_true",
        help="import: leave out (and list) what lumiera cannot represent, rather than refuse",
    )
    live: Callable[[argparse.Namespace], int] = p.get_default("func")

    def dispatch(args: argparse.Namespace) -> int:
        if args.cmd in IO_COMMANDS:
            return main(args)
        if args.append or args.lossy:
            raise UsageError("--append and --lossy are options of `lumiera session import`")
        return live(args)

    p.set_defaults(func=dispatch)


def main(args: argparse.Namespace) -> int:
    if len(args.pairs) != 2:
        what = "OUT" if args.cmd == "export" else "IN"
        raise UsageError(f"usage: lumiera session {args.cmd} SESSION {what}")
    session, other = (Path(p) for p in args.pairs)
    if args.cmd == "export":
        if args.append or args.lossy:
            raise UsageError("--append and --lossy are options of `lumiera session import`")
        return export(session, other)
    return import_(session, other, append=args.append, lossy=args.lossy)


def _format(path: Path, feature: str) -> None:
    """UsageError unless an installed otio adapter can ``feature`` (read/write) ``path``."""
    from lumiera.steam.otio import adapters

    known = adapters(feature)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in known:
        listed = ", ".join(f".{s} ({name})" for s, name in sorted(known.items()))
        verb = "write" if feature == "write" else "read"
        raise UsageError(f"{path}: no OpenTimelineIO adapter to {verb} {path.suffix or 'it'} "
                         f"(installed: {listed})")  # fmt: skip


def export(session: Path, out: Path) -> int:
    from lumiera.steam.core import SessionCore
    from lumiera.steam.otio import write

    _format(out, "write")
    if not session.is_file():
        raise UsageError(f"no session file {session}")
    core = SessionCore(session)
    try:
        timeline = core.session.timeline()
    finally:
        core.close()
    try:
        write(timeline, out, name=session.stem)
    except Exception as e:  # noqa: BLE001 - an adapter's or the file system's: say which
        print(f"lumiera: cannot write {out}: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_ERROR
    print(
        f"{out}: {len(timeline.tracks)} tracks, {len(timeline.clips)} clips, "
        f"{len(timeline.transitions)} transitions, {len(timeline.media)} media of {session}"
    )
    return 0


def read(path: Path) -> Any:
    """The timeline of an OTIO file (any installed adapter that reads its suffix)."""
    import opentimelineio as otio

    _format(path, "read")
    if not path.is_file():
        raise UsageError(f"no file {path}")
    try:
        found = otio.adapters.read_from_file(str(path))
    except Exception as e:  # noqa: BLE001 - an adapter's: a malformed file
        raise BadArguments(f"{path}: cannot read it: {type(e).__name__}: {e}") from None
    if isinstance(found, otio.schema.SerializableCollection):
        timelines = list(found.find_children(descended_from_type=otio.schema.Timeline))
        if len(timelines) != 1:
            raise BadArguments(f"{path}: {len(timelines)} timelines; lumiera imports one")
        found = timelines[0]
    return found


def import_(session: Path, source: Path, *, append: bool, lossy: bool) -> int:
    from lumiera.steam.core import SessionCore
    from lumiera.steam.model import Session
    from lumiera.steam.otio_import import CachedProbe, execute_plan, plan_import
    from lumiera.steam.probe import probe_media

    timeline = read(source)
    probe = CachedProbe(probe_media)
    base = source.resolve().parent
    core = SessionCore(session, probe=probe) if session.exists() else None
    try:
        current = core.session if core is not None else Session()
        plan = plan_import(timeline, current, probe, base_dir=base, append=append)
        for line in plan.report:
            print(f"lumiera: not represented: {line}", file=sys.stderr)
        if plan.report and not lossy:
            print(
                f"lumiera: nothing imported: {len(plan.report)} thing(s) of {source} lumiera "
                "cannot represent (--lossy imports the rest)",
                file=sys.stderr,
            )
            return EXIT_ERROR
        if core is None:  # created only now that the import is known to work
            core = SessionCore(session, probe=probe)
        revision = execute_plan(core, plan)
    finally:
        if core is not None:
            core.close()
    print(
        f"{session}: imported {plan.count('add_track')} tracks, {plan.count('add_clip')} clips, "
        f"{plan.count('add_transition')} transitions, {plan.count('add_media')} media "
        f"from {source} (revision {revision})"
    )
    return 0
