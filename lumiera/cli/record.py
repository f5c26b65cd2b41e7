"""``lumiera tap --record FILE`` and ``lumiera replay FILE --into SESSION``.

The recorder is a ``tap`` that also writes what it sees into a recording
(:mod:`lumiera.bus.recording`, docs/RECORDING.md): every event it receives,
and for each ``session.changed`` that carries its arguments the session
command as a ``request`` and its answer as a ``reply``. While it records, a
``recording-<pid>`` file in the runtime directory names the recording, so
that ``lumiera up`` names it in an emergency's report.

The replay supervises a headless instance of its own on a new session file
(:mod:`lumiera.cli.hosted`, in this process, as ``lumiera render`` does),
sends the recorded session commands in order (each with its recorded id as
``command_id``), and compares each answer with the recorded one: the command,
the revision (counted from where the recording began) and what it applied.
It stops at the first difference and says where it is. Exits 0 when the
replay is identical, 1 when it differs or its instance failed (with the
instance's last lines of output), 128 + the signal when SIGINT, SIGTERM or
SIGHUP stopped it; a bad recording, or a SESSION that exists, is refused
before anything runs (64).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lumiera import __version__, runtime_dir
from lumiera.bus import recording as rec
from lumiera.bus.client import ControlClient
from lumiera.bus.events import Event, ExtBody, Publisher, Subscriber
from lumiera.errors import (
    LumieraError,
    NotRunning,
    RequestTimeout,
    ShuttingDown,
    SubsystemGone,
    Unavailable,
    Unreachable,
    UsageError,
)
from lumiera.exits import stop_signals

if TYPE_CHECKING:
    from lumiera.api import App

# Recorded whatever the prefixes: the commands to replay, and the instance's end.
ALWAYS = ("session.changed", "appstate.phase")
SYNC_TOPIC = "ext.record.sync"  # the recorder's probe: its subscription is in place
SYNC_TIMEOUT_S = 5.0
LOCK_CHECK_S = 1.0  # how often the recorder looks whether the instance still runs
# What an instance that ended, is ending or does not answer raises: not a refusal of a
# command (said as the instance's failure, with its last output).
GONE = (NotRunning, RequestTimeout, ShuttingDown, SubsystemGone, Unavailable, Unreachable)


# -- tap --record ---------------------------------------------------------------------


def tap(args: argparse.Namespace) -> int:
    """``lumiera tap``: with ``--record FILE`` a recording too; else the plain tap."""
    from lumiera.cli import tools

    if args.record is None:
        return tools.tap(args)
    rd = runtime_dir.resolve(args.instance, args.runtime_dir)
    path = Path(args.record)
    if path.exists():
        raise UsageError(f"--record {path}: exists (a recording never replaces a file)")
    if not path.absolute().parent.is_dir():
        raise UsageError(f"--record {path}: no directory {path.absolute().parent}")
    if not runtime_dir.is_locked(rd):
        raise NotRunning(f"no lumiera instance {rd.instance!r} is running at {rd.path}")
    prefixes = list(args.prefixes or [""])
    stop: list[int] = []  # SIGTERM, SIGHUP: the recording ends in order, exit 128 + the signal
    old = {
        s: signal.signal(s, lambda n, _f: stop.append(n))
        for s in stop_signals(signal.SIGTERM, signal.SIGHUP)
    }
    try:
        with Subscriber(rd, *prefixes, *ALWAYS, SYNC_TOPIC) as events:
            _sync(rd, events)
            head = rec.header(
                rd.instance,
                str(rd.path),
                prefixes,
                session_revision=_session_revision(rd),
                lumiera_version=__version__,
            )
            with rec.RecordingWriter(path, head) as writer:
                marker = rec.write_marker(rd, path)
                try:
                    _record(args, rd, events, writer, prefixes=prefixes, stop=stop)
                finally:
                    rec.remove_marker(marker)
                    if not runtime_dir.is_locked(rd):  # its instance ended first, and left
                        runtime_dir.remove_dir_if_empty(rd)  # the directory for this marker
                    print(
                        f"lumiera tap: recorded {writer.count} records to {path}", file=sys.stderr
                    )
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return 128 + stop[0] if stop else 0


def _sync(rd: runtime_dir.RuntimeDir, events: Subscriber) -> None:
    """Until our subscription is in place (a probe event of ours comes back)."""
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    with Publisher(rd, "record") as pub:
        while time.monotonic() < deadline:
            pub.publish(SYNC_TOPIC, ExtBody(fields={"pid": os.getpid()}))
            event = events.receive(0.05)
            while event is not None:
                if event.topic == SYNC_TOPIC:
                    return
                event = events.receive(0.0)
    raise NotRunning(f"instance {rd.instance!r}: no events within {SYNC_TIMEOUT_S:g} s")


def _session_revision(rd: runtime_dir.RuntimeDir) -> int | None:
    """The session's revision as the recording begins (None: no session answers)."""
    try:
        with ControlClient(rd, timeout=5.0) as client:
            described = client.request("session", "describe")
    except LumieraError:
        return None
    session = described.get("session") or {}
    revision = session.get("revision")
    return revision if isinstance(revision, int) else None


def _record(
    args: argparse.Namespace,
    rd: runtime_dir.RuntimeDir,
    events: Subscriber,
    writer: rec.RecordingWriter,
    *,
    prefixes: list[str],
    stop: list[int],
) -> None:
    from lumiera.cli.tools import _print_event

    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    next_check = time.monotonic() + LOCK_CHECK_S
    seen = 0
    while not stop and (args.count is None or seen < args.count):
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        if now >= next_check:
            if not runtime_dir.is_locked(rd):
                break  # the instance is gone (killed before it could say `done`)
            next_check = now + LOCK_CHECK_S
        event = events.receive(0.1)
        if event is None or event.topic == SYNC_TOPIC:
            continue
        if event.topic.startswith(tuple(prefixes)):
            _print_event(event, args.json)
            seen += 1
        _write_event(writer, event)
        if event.topic == "appstate.phase" and event.data().get("phase") == "done":
            break  # the instance's last event


def _write_event(writer: rec.RecordingWriter, event: Event) -> None:
    body = {"sender": event.sender, "ts": event.ts, **event.data()}
    t = writer.now()  # a command's event, request and reply share it (docs/RECORDING.md)
    writer.write("event", event.topic, body, t)
    if event.topic != "session.changed" or "args" not in body:
        return
    cid = body["id"]
    request = {"id": cid, "to": "session", "command": body["command"], "args": body["args"]}
    writer.write("request", "session", request, t)
    result = {k: body[k] for k in ("id", "command", "revision", "applied") if k in body}
    writer.write("reply", "session", {"id": cid, "result": result}, t)


# -- replay ---------------------------------------------------------------------------


def replay(args: argparse.Namespace) -> int:
    recording = rec.read_recording(Path(args.file))
    session = Path(args.into).absolute()
    if session.exists() or session.is_symlink():
        raise UsageError(f"--into {args.into}: exists (a replay makes a new session file)")
    if not session.parent.is_dir():
        raise UsageError(f"--into {args.into}: no directory {session.parent}")
    base = recording.header.get("session_revision") or 0
    commands, gap = commands_of(recording, base)
    if not recording.complete:
        print(f"lumiera replay: {args.file} has no end record (its recorder was killed)")
    from lumiera import config as config_mod
    from lumiera.cli import hosted
    from lumiera.subsystems import Options

    rd = runtime_dir.resolve(f"replay-{os.getpid()}", args.runtime_dir)
    options = Options(session=str(session), headless=True)
    outcome = hosted.run(
        config_mod.load(None, ()),
        rd,
        options,
        lambda app: _replay(app, commands, base),
        timeout=args.timeout,
    )
    if outcome.signalled is not None:
        print(f"lumiera replay: interrupted ({outcome.signalled.name})", file=sys.stderr)
        return 128 + int(outcome.signalled)
    if not outcome.done or outcome.code != 0:
        print("\n".join(outcome.log), file=sys.stderr)
        if outcome.done:
            said = f"ended with exit {outcome.code}"
        elif outcome.running:
            said = "failed during the replay"
        else:
            said = "did not start"
        why = f": {outcome.failure}" if outcome.failure else ""
        print(f"lumiera replay: the replay's instance {said}{why}", file=sys.stderr)
        return 1
    difference = outcome.result if outcome.result is not None else (gap or None)
    if difference is not None:
        print(f"lumiera replay: {difference}")
        print(f"lumiera replay: the replayed session is {session}")
        return 1
    print(f"replayed {len(commands)} commands into {session}, identical")
    return 0


def commands_of(
    recording: rec.Recording, base: int
) -> tuple[list[tuple[rec.Record, dict[str, Any]]], str]:
    """The recorded session commands after ``base`` (request, reply), and a gap if any.

    A gap: a revision the recording lacks (announced without its arguments, or
    an event the recorder lost), said as the first difference it makes.
    """
    replies = {r.body.get("id"): r.body for r in recording.of_kind("reply") if r.topic == "session"}
    out = []
    for request in recording.of_kind("request"):
        reply = replies.get(request.body.get("id"))
        if request.topic != "session" or reply is None:
            continue
        result = reply.get("result") or {}
        if isinstance(result.get("revision"), int) and result["revision"] <= base:
            continue  # applied before the recording began: in the session it started from
        out.append((request, result))
    expected = base
    for n, (request, result) in enumerate(out, start=1):
        expected += 1
        if result.get("revision") != expected:
            return out[: n - 1], (
                f"command {n} ({request.body.get('command')}): the recording lacks revision "
                f"{expected} (it has {result.get('revision')!r} next): a session.changed without "
                "its arguments, or one the recorder lost"
            )
    return out, ""


def _replay(app: App, commands: list[tuple[rec.Record, dict[str, Any]]], base: int) -> str | None:
    """Send each command; the first difference, said in words, or None.

    A command the session refuses is a difference; an instance that no longer
    answers (it ended, or hangs) is not, and raises.
    """
    for n, (request, recorded) in enumerate(commands, start=1):
        body = request.body
        name = body.get("command")
        args = dict(body.get("args") or {})
        if isinstance(body.get("id"), str):
            args["command_id"] = body["id"]
        where = f"command {n} of {len(commands)} ({name}, recorded at {request.t:.3f} s)"
        try:
            got = app.request("session", str(name), **args)
        except GONE:
            raise
        except LumieraError as e:
            return f"{where}: recorded as applied, the replay refused it: {e.code}: {e}"
        replayed = {**got, "revision": got.get("revision", 0) + base}
        for key in ("command", "revision", "applied"):
            if key in recorded:
                diff = first_difference(recorded[key], replayed.get(key), key)
                if diff is not None:
                    return f"{where}: {diff}"
    return None


def first_difference(recorded: Any, replayed: Any, path: str) -> str | None:
    """Where two plain values first differ (``applied.position: recorded 0, replayed 50``)."""
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        for key in sorted(recorded.keys() | replayed.keys(), key=str):
            if key not in replayed or key not in recorded:
                side = "the replay" if key not in replayed else "the recording"
                return f"{path}.{key}: missing in {side}"
            diff = first_difference(recorded[key], replayed[key], f"{path}.{key}")
            if diff is not None:
                return diff
        return None
    if isinstance(recorded, list) and isinstance(replayed, list):
        if len(recorded) != len(replayed):
            return f"{path}: recorded {len(recorded)} items, replayed {len(replayed)}"
        for i, (a, b) in enumerate(zip(recorded, replayed, strict=True)):
            diff = first_difference(a, b, f"{path}[{i}]")
            if diff is not None:
                return diff
        return None
    if recorded != replayed or type(recorded) is not type(replayed):
        return f"{path}: recorded {_show(recorded)}, replayed {_show(replayed)}"
    return None


def _show(value: Any) -> str:
    return json.dumps(value, default=str)[:200]
