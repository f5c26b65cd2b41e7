"""``lumiera farm up | status | down``: a render farm on this machine, left up between renders.

``farm up --workers N`` starts a process of its own (detached; ``--foreground``
keeps it in the terminal, for a service manager) that runs a
:class:`~lumiera.vault.localfarm.LocalFarm`: a Dask scheduler on ``[farm]
host``:``[farm] port`` and N render nodes. It prints the scheduler's address
once every node has joined; ``lumiera render S -o OUT --farm ADDRESS`` then
renders on it, and render nodes on other hosts may join it too (``lumiera up
--headless --port 0 --join ADDRESS``). A node that ends by itself is started
again (at most ``RESTARTS`` times a minute; then it is left down and its log
says why).

The farm's directory is a runtime directory (``farm-NAME``: private, locked by
the farm's process): ``farm.json`` says its address, pid and nodes; each node's
runtime directory and log are inside it. ``farm status`` reads it and asks the
scheduler for its workers; ``farm down`` sends the farm's process SIGTERM (its
nodes stop in order, then the scheduler) and waits until it is gone.

Exits: 0; 1 when the farm cannot start (the reason, a node's log); 69
(``status``/``down``) when no farm of that name runs; 73 when it already runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lumiera import config as config_mod
from lumiera import runtime_dir
from lumiera.errors import InstanceRunning, LumieraError, NotRunning, UsageError
from lumiera.exits import EXIT_ERROR, EXIT_INSTANCE_RUNNING
from lumiera.vault.localfarm import LocalFarm, node_args, write_atomically

STATE_FILE = "farm.json"
LOG_FILE = "farm.log"
RESTARTS = 3  # a node is started again at most this often ...
RESTART_WINDOW_S = 60.0  # ... within this many seconds
UP_TIMEOUT_S = 120.0  # `farm up` waits this long for the farm to say its address
WATCH_S = 0.5


def add_parser(sub: Any) -> None:
    """The ``farm`` command and its three subcommands."""
    p = sub.add_parser("farm", help="a render farm on this machine: up, status, down")
    farm_sub = p.add_subparsers(dest="farm_command", required=True, parser_class=type(p))

    up = farm_sub.add_parser("up", help="start a scheduler and N render nodes; print the address")
    up.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N")
    up.add_argument("--host", help="the scheduler's host (default: [farm] host)")
    up.add_argument("--port", type=int, help="the scheduler's port (default: [farm] port)")
    up.add_argument("--foreground", action="store_true", help="stay in the terminal")
    up.add_argument("--timeout", type=float, default=UP_TIMEOUT_S, metavar="S")
    up.add_argument("--def", dest="defs", action="append", default=[], metavar="SECTION.KEY=VALUE")
    up.add_argument("--config", help="configuration file layered over config/setup.ini")
    up.set_defaults(func=up_main)

    status = farm_sub.add_parser("status", help="the farm's address, nodes and workers")
    status.add_argument("--json", action="store_true")
    status.add_argument("--def", dest="defs", action="append", default=[], metavar="S.KEY=VALUE")
    status.add_argument("--config", help="configuration file (its [farm] tls_* keys)")
    status.set_defaults(func=status_main)

    down = farm_sub.add_parser("down", help="stop the farm: nodes in order, then the scheduler")
    down.add_argument("--timeout", type=float, default=60.0, metavar="S")
    down.set_defaults(func=down_main)

    for q in (up, status, down):
        q.add_argument("--name", default="default", help="the farm's name (default: default)")
        q.add_argument("--runtime-dir", help="its directory (default: .../lumiera/farm-NAME)")


def _rd(args: argparse.Namespace) -> runtime_dir.RuntimeDir:
    return runtime_dir.resolve(f"farm-{args.name}", args.runtime_dir)


def read_state(rd: runtime_dir.RuntimeDir) -> dict[str, Any]:
    """The running farm's ``farm.json``; NotRunning when no farm of that name runs."""
    if not runtime_dir.is_locked(rd):
        raise NotRunning(f"no farm {rd.instance.removeprefix('farm-')!r} is running ({rd.path})")
    try:
        state: dict[str, Any] = json.loads((rd.path / STATE_FILE).read_text())
    except (OSError, ValueError):
        raise NotRunning(f"the farm in {rd.path} is starting or stopping; try again") from None
    return state


# -- up -------------------------------------------------------------------------------


def up_main(args: argparse.Namespace) -> int:
    if args.workers < 0:
        raise UsageError(f"--workers {args.workers}: 0 or more")
    cfg = config_mod.load(Path(args.config) if args.config else None, args.defs)
    rd = _rd(args)
    try:
        if runtime_dir.is_locked(rd):
            raise InstanceRunning(f"farm {args.name!r} is already running ({rd.path})")
        if args.foreground:
            return serve(args, cfg, rd)
        return _detach(args, rd)
    except InstanceRunning as e:
        print(f"lumiera farm up: {e}", file=sys.stderr)
        return EXIT_INSTANCE_RUNNING


def _detach(args: argparse.Namespace, rd: runtime_dir.RuntimeDir) -> int:
    """Start ``farm up --foreground`` in a session of its own; print its address when up."""
    runtime_dir.prepare(rd)
    log_path = rd.path / LOG_FILE
    cmd = [sys.executable, "-m", "lumiera", "farm", "up", "--foreground"]
    cmd += ["--workers", str(args.workers), "--name", args.name, "--timeout", str(args.timeout)]
    cmd += ["--runtime-dir", str(rd.path)]
    if args.host:
        cmd += ["--host", args.host]
    if args.port is not None:
        cmd += ["--port", str(args.port)]
    cmd += node_args(args.config, args.defs)
    with open(log_path, "ab") as out:
        # A farm killed outright left its farm.json: never take that for this one's.
        (rd.path / STATE_FILE).unlink(missing_ok=True)
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + args.timeout + 30.0
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            print(log_path.read_text(errors="replace").rstrip(), file=sys.stderr)
            print(f"lumiera farm up: the farm did not start (exit {code})", file=sys.stderr)
            return EXIT_INSTANCE_RUNNING if code == EXIT_INSTANCE_RUNNING else EXIT_ERROR
        try:
            state = json.loads((rd.path / STATE_FILE).read_text())
        except (OSError, ValueError):
            time.sleep(0.05)
            continue
        print(state["address"])
        print(
            f"farm {args.name!r}: scheduler {state['address']}, {len(state['nodes'])} render "
            f"nodes, pid {state['pid']}; log {log_path}. Stop it with: lumiera farm down"
            + ("" if args.name == "default" else f" --name {args.name}"),
            file=sys.stderr,
        )
        return 0
    proc.send_signal(signal.SIGTERM)
    print(f"lumiera farm up: no address within {args.timeout:g} s; see {log_path}", file=sys.stderr)
    return EXIT_ERROR


def serve(args: argparse.Namespace, cfg: config_mod.Config, rd: runtime_dir.RuntimeDir) -> int:
    """The farm's own process: start it, keep its nodes up, stop it on SIGTERM or SIGINT."""
    from lumiera.vault import security as security_mod

    runtime_dir.prepare(rd)
    lock = runtime_dir.InstanceLock(rd)
    try:
        lock.acquire()
    except InstanceRunning:
        raise InstanceRunning(f"farm {args.name!r} is already running ({rd.path})") from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    security = security_mod.load(cfg)
    farm = LocalFarm(
        args.workers,
        rd.path,
        name=rd.instance,
        host=args.host or cfg.get_str("farm.host"),
        port=cfg.get_int("farm.port") if args.port is None else args.port,
        security=security,
        node_args=node_args(args.config, args.defs),
    )
    state_path = rd.path / STATE_FILE
    try:
        address = farm.start(args.timeout)
        state = {"name": args.name, "pid": os.getpid(), "address": address, "started": time.time()}
        write_atomically(state_path, json.dumps({**state, "nodes": _nodes(farm)}))
        print(f"farm {args.name!r} up: scheduler {address}, {len(farm.nodes)} nodes", flush=True)
        while not stop.wait(WATCH_S):
            before = [n.pid for n in farm.nodes]
            farm.restart_ended(RESTARTS, RESTART_WINDOW_S)
            if [n.pid for n in farm.nodes] != before:
                write_atomically(state_path, json.dumps({**state, "nodes": _nodes(farm)}))
        print(f"farm {args.name!r}: stopping", flush=True)
        return 0
    except LumieraError as e:
        print(f"lumiera farm up: {e}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    finally:
        farm.stop()
        state_path.unlink(missing_ok=True)
        for node in farm.nodes:
            shutil.rmtree(node.runtime_dir, ignore_errors=True)
        lock.release()


def _nodes(farm: LocalFarm) -> list[dict[str, Any]]:
    return [{**n.to_dict(), "log": str(n.log_path)} for n in farm.nodes]


# -- status, down -----------------------------------------------------------------------


def status_main(args: argparse.Namespace) -> int:
    state = read_state(_rd(args))
    cfg = config_mod.load(Path(args.config) if args.config else None, args.defs)
    workers = _workers(state["address"], cfg)
    if args.json:
        print(json.dumps({**state, "workers": workers}, indent=2))
        return 0
    print(f"farm {state['name']!r}: scheduler {state['address']}, pid {state['pid']}")
    for node in state["nodes"]:
        restarted = node["starts"] - 1
        print(
            f"  node {node['instance']}: pid {node['pid']}"
            + (f", started again {restarted}x" if restarted else "")
        )
    if workers is None:
        print("  the scheduler does not answer")
        return 0
    print(f"  {len(workers)} workers joined:")
    for w in workers:
        print(f"    {w['name']} at {w['address']}: {w['nthreads']} threads, {w['tasks']} tasks")
    return 0


def _workers(address: str, cfg: config_mod.Config) -> list[dict[str, Any]] | None:
    """The scheduler's workers (name, address, threads, tasks processing); None: no answer."""
    from distributed import Client

    from lumiera.vault import security as security_mod

    try:
        with Client(  # type: ignore[no-untyped-call]
            address, timeout=5, set_as_default=False, security=security_mod.load(cfg)
        ) as client:
            info = client.scheduler_info()
            processing = client.processing()
    except (OSError, TimeoutError, LumieraError):
        return None
    return [
        {
            "name": str(w.get("name")),
            "address": addr,
            "nthreads": w.get("nthreads"),
            "tasks": len(processing.get(addr, ())),
        }
        for addr, w in sorted(info["workers"].items(), key=lambda kv: str(kv[1].get("name")))
    ]


def down_main(args: argparse.Namespace) -> int:
    rd = _rd(args)
    state = read_state(rd)
    pid = int(state["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise NotRunning(f"farm {args.name!r} (pid {pid}) is gone") from None
    deadline = time.monotonic() + args.timeout
    while runtime_dir.is_locked(rd):
        if time.monotonic() > deadline:
            print(f"lumiera farm down: still running after {args.timeout:g} s", file=sys.stderr)
            return EXIT_ERROR
        time.sleep(0.05)
    print(f"farm {args.name!r} at {state['address']} stopped")
    return 0
