"""The bus tools: ``status``, ``tap``, ``send``, ``stop``.

Everything here goes through the documented protocol (docs/PROTOCOL.md), so a
client in another language can do the same. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import time
from typing import Any

from lumiera import runtime_dir
from lumiera.bus.client import ControlClient
from lumiera.bus.events import Event, Subscriber
from lumiera.errors import (
    LumieraError,
    NotRunning,
    ShuttingDown,
    Unreachable,
    UsageError,
)
from lumiera.exits import EXIT_UNAVAILABLE


def _rd(args: argparse.Namespace) -> runtime_dir.RuntimeDir:
    return runtime_dir.resolve(args.instance, args.runtime_dir)


def _client(args: argparse.Namespace) -> ControlClient:
    # ``send --direct``: straight to the subsystem's svc-NAME (PROTOCOL.md 8.1.1)
    return ControlClient(_rd(args), timeout=args.timeout, direct=getattr(args, "direct", False))


def _unreachable(e: Unreachable) -> int:
    print(f"lumiera: {e}", file=sys.stderr)
    return EXIT_UNAVAILABLE


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


# -- status ---------------------------------------------------------------------------


GUI_DESCRIBE_TIMEOUT_S = 2.0  # status asks the gui for its address; a slow gui is left out


def status(args: argparse.Namespace) -> int:
    try:
        with _client(args) as client:
            st = client.request("appstate", "status")
            gui = _gui(client, st, min(args.timeout, GUI_DESCRIBE_TIMEOUT_S))
    except Unreachable as e:
        return _unreachable(e)
    if gui is not None:
        st["gui"] = gui
    if args.json:
        print(json.dumps(st, default=_json_default))
        return 0
    head = f"instance {st['instance']}  pid {st['pid']}  phase {st['phase']}"
    print(f"{head}  up {st['uptime_s']:.1f} s")
    print(f"runtime dir {st['runtime_dir']}")
    print(
        f"{'NAME':<9}{'LAYER':<7}{'STATE':<10}{'PID':>8}{'UPTIME':>9}"
        f"{'BEAT':>7}{'CPU s':>8}{'RSS MiB':>9}"
    )
    for s in st["subsystems"]:
        print(
            f"{s['name']:<9}{s['layer']:<7}{s['state']:<10}{_fmt(s['pid'], '{}'):>8}"
            f"{_fmt(s['uptime_s'], '{:.1f}'):>9}{_fmt(s['heartbeat_age_s'], '{:.2f}'):>7}"
            f"{_fmt(s['cpu_s'], '{:.2f}'):>8}"
            f"{_fmt(s['rss_bytes'] and s['rss_bytes'] / 2**20, '{:.1f}'):>9}"
            + (f"  last failure: {s['last_failure']}" if s["last_failure"] else "")
        )
    if st.get("rings"):
        print(
            f"{'RING':<13}{'POLICY':<7}{'SLOTS':>6}{'SLOT MiB':>9}{'FILL':>5}"
            f"{'WRITTEN':>9}{'DROPS':>7}  CONSUMERS (pid: read, drops)"
        )
        for r in st["rings"]:
            readers = ", ".join(
                f"{c['pid']}: {c['frames_read']}, {c['drops']}" + ("" if c["alive"] else " (dead)")
                for c in r["consumers"]
            )
            print(
                f"{r['name']:<13}{r['policy']:<7}{r['slots']:>6}{r['slot_bytes'] / 2**20:>9.1f}"
                f"{r['fill']:>5}{r['frames_written']:>9}{r['drops']:>7}  {readers or '-'}"
            )
    for err in st["errors"]:
        print(f"error: {err}")
    if gui is not None:
        print(f"gui {gui['url'] or '-'}" + (f"  ({gui['error']})" if gui.get("error") else ""))
    return 0


def _gui(client: ControlClient, st: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """The running gui's address (``url``: its front-end's, with the token), or None."""
    if not any(s["name"] == "gui" and s["state"] == "running" for s in st["subsystems"]):
        return None
    try:
        described = client.request("gui", "describe", timeout=timeout)
    except LumieraError as e:  # Unreachable included: the status is still worth showing
        return {"url": None, "error": f"{e.code}: {e}"}
    return {"url": described.get("url"), "ui": described.get("ui"), "pages": described.get("pages")}


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else spec.format(value)


# -- send -----------------------------------------------------------------------------


def send(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.args)
    except json.JSONDecodeError as e:
        raise UsageError(f"arguments must be a JSON object: {e}") from None
    if not isinstance(payload, dict):
        raise UsageError("arguments must be a JSON object")
    return _request(args, args.subsystem, args.cmd, payload)


def session(args: argparse.Namespace) -> int:
    """``lumiera session COMMAND KEY=VALUE...``: an edit without writing JSON."""
    payload: dict[str, Any] = {}
    for item in args.pairs:
        key, eq, text = item.partition("=")
        if not eq or not key:
            raise UsageError(f"{item!r}: expected KEY=VALUE")
        payload[key] = _value(text)
    if args.id is not None:
        payload["command_id"] = args.id
    return _request(args, "session", args.cmd, payload)


def _value(text: str) -> Any:
    """Whole numbers and decimals become numbers; everything else stays text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _request(args: argparse.Namespace, to: str, command: str, payload: dict[str, Any]) -> int:
    try:
        with _client(args) as client:
            result = client.request(to, command, payload)
    except Unreachable as e:
        return _unreachable(e)
    except NotRunning:
        raise
    except LumieraError as e:
        print(json.dumps({"ok": False, "error": {"code": e.code, "message": str(e)}}))
        return 1
    print(json.dumps({"ok": True, "result": result}, default=_json_default))
    return 0


# -- stop -----------------------------------------------------------------------------


def stop(args: argparse.Namespace) -> int:
    rd = _rd(args)
    pid = runtime_dir.read_pid(rd)
    try:
        with ControlClient(rd, timeout=min(args.timeout, 5.0)) as client:
            pid = client.request("appstate", "stop")["pid"]
    except ShuttingDown:
        pass  # already on its way down: wait for it like any other
    except Unreachable as e:
        return _unreachable(e)
    if not wait_gone(rd, pid, args.timeout):
        print(
            f"lumiera: instance {rd.instance!r} is still running after {args.timeout:g} s",
            file=sys.stderr,
        )
        return 1
    print(f"lumiera: instance {rd.instance!r} stopped")
    return 0


def wait_gone(rd: runtime_dir.RuntimeDir, pid: int | None, timeout: float) -> bool:
    """Wait until the supervisor has exited and its lock is released."""
    deadline = time.monotonic() + timeout
    if pid is not None:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            fd = None
        if fd is not None:
            try:
                select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            finally:
                os.close(fd)
    while runtime_dir.is_locked(rd):  # the kernel drops the lock as the process exits
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


# -- tap ------------------------------------------------------------------------------


def tap(args: argparse.Namespace) -> int:
    rd = _rd(args)
    if not runtime_dir.is_locked(rd):
        raise NotRunning(f"no lumiera instance {rd.instance!r} is running at {rd.path}")
    seen = 0
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    # A malformed event is dropped by the Subscriber, with a warning on stderr.
    with Subscriber(rd, *(args.prefixes or [""])) as events:
        while args.count is None or seen < args.count:
            if deadline is not None and time.monotonic() >= deadline:
                break
            event = events.receive(0.1)
            if event is not None:
                _print_event(event, args.json)
                seen += 1
    return 0


def _print_event(event: Event, as_json: bool) -> None:
    """One line: JSON ``{topic, sender, ts, body}``, or ``time topic [sender] body``."""
    body = event.data()
    if as_json:
        line = json.dumps(
            {"topic": event.topic, "sender": event.sender, "ts": event.ts, "body": body},
            default=_json_default,
        )
    else:
        stamp = time.strftime("%H:%M:%S", time.localtime(event.ts))
        line = f"{stamp} {event.topic} [{event.sender}] {json.dumps(body, default=_json_default)}"
    print(line, flush=True)
