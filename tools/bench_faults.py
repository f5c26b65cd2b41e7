"""Benchmark of the fault matrix: crashes to all gone, nothing acknowledged lost, status under load.

Run from the repository root with the project's interpreter::

    .venv/bin/python tools/bench_faults.py            # 100 rounds, 20 s of load (a few minutes)
    .venv/bin/python tools/bench_faults.py --quick    # within 90 s on 2 cores

Prints a table (figures beside the aims of issue 16, pass/miss) and, as the
very last line of stdout, one JSON object with the headline figures. Progress
and warnings go to stderr.

What is measured, and how:

* crash rounds (``--rounds``, 100; quick 20), all on one session file: a
  fresh ``lumiera up --headless FILE``; it first audits the rounds before
  (below); then 2 client threads of this process send ``add_track`` commands
  with ``command_id``s as fast as they are answered, and after a random
  0.02-0.3 s one subsystem, chosen at random (engine, session, player; pid
  from ``status``), is SIGKILLed. Measured: from just before ``os.kill`` to
  every process of the instance gone (pidfds of the supervisor and of every
  subsystem, all readable), p50 and p99; and ``lumiera up``'s exit code
  (2 or 3 is an emergency as documented, anything else a problem).
  Leftovers: after each round, processes, socket files, the pid file, the
  temp area or shm segments of the instance (``Instance.close_and_check``);
  each is counted (must be 0).
* lost acknowledged commands: a command whose answer arrived is
  acknowledged; one that got an error or no answer is unknown. The next
  round's instance (and one more after the last round) lists the session's
  tracks (each add_track names its track by its id): an acknowledged id
  missing is lost, one present twice is applied twice (both must be 0). Then
  every unknown id and up to 5 acknowledged ones are retried with their ids:
  an acknowledged one answered other than as the duplicate of its first
  answer counts as applied twice too.
* status under load (``--seconds``, 20; quick 8): a fresh instance with a
  session file; 20 tools in helper processes: 10 ``appstate status`` pollers
  (2 processes of 5 threads, each its own ControlClient, back to back, or
  each every ``--status-every`` seconds) and
  10 taps on ``session.*`` (1 process of 10 threads, each its own
  Subscriber, known subscribed before the start); session commands from a
  third helper (4 threads, paced to ``--rate``, 1,000/s in all, or as many
  as the machine takes). Measured: the status round trips, p50/p99/max;
  the commands acknowledged per second; afterwards every acknowledged
  command in the session once and every tap having seen one
  ``session.changed`` per command (lost events and lost commands are
  problems).

Everything runs in one temporary directory, removed at the end; every
instance is stopped and checked for leftovers.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    BenchContext,
    Child,
    Table,
    bench_context,
    bench_main,
    finish,
    header,
    median,
    parser,
    pct,
    say,
    verdict,
)

from lumiera.testing import Instance
from lumiera.testing.ledger import Ledger, audit, check_and_retry, send, tracks

VICTIMS = ("engine", "session", "player")
CLIENTS = 2
RETRY_ACKED = 5
STATUS_PROCS, STATUS_THREADS = 2, 5
TAP_THREADS = 10
SEND_THREADS = 4
GONE_TIMEOUT_S = 15.0

AIM_GONE_MS = 1000.0
AIM_STATUS_P99_MS = 50.0
AIM_RATE = 1000.0

# A helper process of the load phase: MODE status|tap|send with THREADS threads
# for SECONDS after "go" on stdin; says "ready", then "result JSON".
LOAD_SRC = r"""
import json, sys, threading, time
from pathlib import Path
from lumiera.bus.client import ControlClient
from lumiera.errors import LumieraError
from lumiera.runtime_dir import RuntimeDir
from lumiera.testing import synced_tap

path, instance, mode, threads, seconds, rate, every = sys.argv[1:8]
threads, seconds, rate, every = int(threads), float(seconds), float(rate), float(every)
rd = RuntimeDir(Path(path), instance, default_location=False)
go, stop = threading.Event(), threading.Event()
out = {"ms": [], "errors": 0, "acked": {}, "unknown": [], "seen": []}
lock = threading.Lock()

def status(k):
    with ControlClient(rd, timeout=10) as c:
        go.wait()
        last = 0.0
        while not stop.is_set():
            if every > 0:  # a tool polling now and then, not back to back
                time.sleep(max(0.0, last + every - time.perf_counter()))
            t = last = time.perf_counter()
            try:
                c.request("appstate", "status")
            except LumieraError:
                with lock:
                    out["errors"] += 1
                continue
            with lock:
                out["ms"].append((time.perf_counter() - t) * 1000)

def send(k):
    each = rate / threads
    with ControlClient(rd, timeout=10) as c:
        go.wait()
        t0 = time.monotonic()
        i = 0
        while not stop.is_set():
            ahead = t0 + i / each - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            cid = f"L{k}-{i}"
            i += 1
            try:
                answer = c.request("session", "add_track", {"name": cid, "command_id": cid})
            except LumieraError:
                with lock:
                    out["unknown"].append(cid)
                continue
            with lock:
                out["acked"][cid] = answer["revision"]

taps = []
def tap(k):
    t = taps[k]
    seen = set()
    go.wait()
    while not stop.is_set():
        for topic, body in t.poll(0.05):
            if topic == "session.changed":
                seen.add(body["revision"])
    end = time.monotonic() + 5
    while time.monotonic() < end and len(t.poll(0.2)):
        pass
    seen.update(b["revision"] for tp, b in t.events if tp == "session.changed")
    t.close()
    with lock:
        out["seen"].append(len(seen))

if mode == "tap":
    taps.extend(synced_tap(rd, ["session."]) for _ in range(threads))
work = [threading.Thread(target={"status": status, "send": send, "tap": tap}[mode], args=(k,))
        for k in range(threads)]
for w in work:
    w.start()
print("ready", flush=True)
sys.stdin.readline()
go.set()
time.sleep(seconds)
stop.set()
for w in work:
    w.join()
print("result", json.dumps(out), flush=True)
"""


# -- the audit of a session file ---------------------------------------------------------


def check(inst: Instance, ledger: Ledger, rng: random.Random) -> None:
    """The audit of the rounds before, then the retries (see the module's doc)."""
    sample = rng.sample(sorted(ledger.acked), min(RETRY_ACKED, len(ledger.acked)))
    check_and_retry(inst, ledger, sample)


# -- crash rounds ------------------------------------------------------------------------


@dataclass
class CrashResult:
    gone_ms: list[float] = field(default_factory=list)
    victims: Counter[str] = field(default_factory=Counter)
    exit_codes: Counter[int] = field(default_factory=Counter)
    leftovers: int = 0
    ledger: Ledger = field(default_factory=Ledger)


def all_gone_ms(pids: Sequence[int], victim: int) -> float:
    """SIGKILL ``victim``; ms until every one of ``pids`` has exited (pidfds readable)."""
    fds = []
    try:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                fds.append(os.pidfd_open(pid))
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        pending = set(fds)
        t0 = time.perf_counter()
        os.kill(victim, signal.SIGKILL)
        while pending:
            left = t0 + GONE_TIMEOUT_S - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"{len(pending)} process(es) still there after SIGKILL")
            for fd, _ in poller.poll(int(left * 1000) + 1):
                pending.discard(fd)
                poller.unregister(fd)
        return (time.perf_counter() - t0) * 1000
    finally:
        for fd in fds:
            os.close(fd)


def crash_round(
    ctx: BenchContext, path: Path, r: int, res: CrashResult, rng: random.Random
) -> None:
    inst = Instance(["--headless", str(path)], rd=ctx.runtime_dir(), env=ctx.env)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        inst.start()
        inst.wait_running(timeout=30)
        check(inst, res.ledger, rng)
        st = inst.status()
        pids = {s["name"]: int(s["pid"]) for s in st["subsystems"] if s["pid"]}
        threads = [
            threading.Thread(target=send, args=(inst, f"r{r}c{k}", res.ledger, stop))
            for k in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.02, 0.3))
        victim = rng.choice(VICTIMS)
        assert inst.proc is not None
        gone = all_gone_ms([inst.proc.pid, *pids.values()], pids[victim])
        stop.set()
        code = inst.wait(timeout=5)
        res.gone_ms.append(gone)
        res.victims[victim] += 1
        res.exit_codes[code] += 1
        if code not in (2, 3):
            ctx.problems.append(f"round {r}: SIGKILL of {victim}, lumiera up exited {code}")
        say(f"  round {r + 1}: {victim} killed, all gone in {gone:.1f} ms, exit {code}")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
        left = inst.close_and_check()
        res.leftovers += len(left)
        ctx.problems.extend(left)


def bench_crashes(ctx: BenchContext, rounds: int, seed: int) -> CrashResult:
    res = CrashResult()
    rng = random.Random(seed)
    path = ctx.base / "crashy.lum"
    for r in range(rounds):
        crash_round(ctx, path, r, res, rng)
    with contextlib.ExitStack() as stack:  # the last round's audit
        inst = Instance(["--headless", str(path)], rd=ctx.runtime_dir(), env=ctx.env)
        stack.callback(lambda: ctx.problems.extend(inst.close_and_check()))
        inst.start()
        inst.wait_running(timeout=30)
        check(inst, res.ledger, rng)
        lost, doubled = audit(res.ledger.acked, tracks(inst))  # after the retries too
        res.ledger.lost |= lost
        res.ledger.doubled |= doubled
    return res


# -- status under load -------------------------------------------------------------------


@dataclass
class LoadResult:
    status_ms: list[float] = field(default_factory=list)
    status_errors: int = 0
    acked: int = 0
    unknown: int = 0
    seconds: float = 0.0
    lost: set[str] = field(default_factory=set)  # acknowledged, not in the session
    taps_min_seen: int = 0


def bench_load(ctx: BenchContext, seconds: float, rate: float, every: float = 0.0) -> LoadResult:
    res = LoadResult(seconds=seconds)
    inst = Instance(["--headless", str(ctx.base / "load.lum")], rd=ctx.runtime_dir(), env=ctx.env)
    helpers: list[Child] = []
    try:
        inst.start()
        inst.wait_running(timeout=30)

        def helper(name: str, mode: str, threads: int) -> Child:
            argv = [sys.executable, "-c", LOAD_SRC, str(inst.rd.path), inst.rd.instance]
            argv += [mode, str(threads), str(seconds), str(rate), str(every)]
            child = Child(name, argv, env={**os.environ, **ctx.env})
            helpers.append(child)
            return child

        for k in range(STATUS_PROCS):
            helper(f"status{k}", "status", STATUS_THREADS)
        helper("taps", "tap", TAP_THREADS)
        helper("sender", "send", SEND_THREADS)
        for child in helpers:
            child.expect("ready", 60)
        for child in helpers:
            child.send("go")
        results = [child.result(seconds + 60) for child in helpers]
        for child in helpers:
            child.finish(ctx.problems)
        for out in results[:STATUS_PROCS]:
            res.status_ms += out["ms"]
            res.status_errors += out["errors"]
        taps, sent = results[STATUS_PROCS], results[STATUS_PROCS + 1]
        res.acked, res.unknown = len(sent["acked"]), len(sent["unknown"])
        res.taps_min_seen = min(taps["seen"])
        seen = tracks(inst)
        res.lost = audit(sent["acked"], seen)[0]
    finally:
        for child in helpers:
            child.close()
        ctx.problems.extend(inst.close_and_check())
    return res


# -- report ------------------------------------------------------------------------------


def figures(cr: CrashResult, ld: LoadResult) -> dict[str, float | int]:
    return {
        "rounds": len(cr.gone_ms),
        "lost_acked": len(cr.ledger.lost) + len(ld.lost),
        "applied_twice": len(cr.ledger.doubled),
        "leftovers": cr.leftovers,
        "gone_ms_p50": median(cr.gone_ms),
        "gone_ms_p99": pct(cr.gone_ms, 99),
        "acked_in_rounds": len(cr.ledger.acked),
        "status_ms_p50_under_load": median(ld.status_ms),
        "status_ms_p99_under_load": pct(ld.status_ms, 99),
        "status_errors_under_load": ld.status_errors,
        "commands_per_s_under_load": ld.acked / ld.seconds if ld.seconds else float("nan"),
        "events_lost_under_load": max(0, ld.acked - ld.taps_min_seen),
    }


def report(
    cr: CrashResult, ld: LoadResult, ctx: BenchContext, rate: float, every: float = 0.0
) -> int:
    fig = figures(cr, ld)
    if fig["lost_acked"]:
        lost = sorted(cr.ledger.lost | ld.lost)  # in the crash rounds, under the load
        ctx.problems.append(f"acknowledged commands lost: {lost[:10]}")
    if fig["applied_twice"]:
        ctx.problems.append(f"commands applied twice: {sorted(cr.ledger.doubled)[:10]}")
    if ld.unknown or ld.status_errors or fig["events_lost_under_load"]:
        ctx.problems.append(
            f"under load: {ld.unknown} commands unanswered, {ld.status_errors} status errors,"
            f" {fig['events_lost_under_load']} session.changed missed by a tap"
        )
    t = Table("figure", "value", "aim", "ok?", "how")
    victims = ", ".join(f"{k} x{v}" for k, v in sorted(cr.victims.items()))
    codes = ", ".join(f"exit {k} x{v}" for k, v in sorted(cr.exit_codes.items()))
    t.add(
        "crash: SIGKILL -> all gone, p50",
        f"{fig['gone_ms_p50']:.1f} ms",
        how=f"{fig['rounds']} rounds; {victims}",
    )
    t.add(
        "crash: SIGKILL -> all gone, p99",
        f"{fig['gone_ms_p99']:.1f} ms",
        f"< {AIM_GONE_MS:g} ms",
        verdict(fig["gone_ms_p99"], AIM_GONE_MS, below=True),
        how=codes,
    )
    t.add(
        "acknowledged commands lost",
        str(fig["lost_acked"]),
        "0",
        verdict(fig["lost_acked"], 1, below=True),
        how=f"{fig['acked_in_rounds']} acknowledged in the rounds, {ld.acked} under load",
    )
    t.add(
        "commands applied twice",
        str(fig["applied_twice"]),
        "0",
        verdict(fig["applied_twice"], 1, below=True),
        how=f"tracks listed; unknown and {RETRY_ACKED} acknowledged ids retried per round",
    )
    t.add(
        "leftovers after the rounds",
        str(fig["leftovers"]),
        "0",
        verdict(fig["leftovers"], 1, below=True),
        how="processes, socket files, pid file, temp area, shm segments",
    )
    t.add(
        "status under load, p50",
        f"{fig['status_ms_p50_under_load']:.2f} ms",
        how=f"{len(ld.status_ms)} requests; {STATUS_PROCS * STATUS_THREADS} pollers"
        f" ({f'each every {every:g} s' if every > 0 else 'back to back'}), {TAP_THREADS} taps",
    )
    t.add(
        "status under load, p99",
        f"{fig['status_ms_p99_under_load']:.2f} ms",
        f"< {AIM_STATUS_P99_MS:g} ms",
        verdict(fig["status_ms_p99_under_load"], AIM_STATUS_P99_MS, below=True),
        how=f"max {max(ld.status_ms, default=float('nan')):.1f} ms",
    )
    t.add(
        "session commands acknowledged under load",
        f"{fig['commands_per_s_under_load']:.0f} /s",
        f">= {AIM_RATE:g} /s",
        verdict(fig["commands_per_s_under_load"], min(rate, AIM_RATE) * 0.98),
        how=f"paced to {rate:g}/s by {SEND_THREADS} threads; {ld.seconds:g} s",
    )
    t.add(
        "session.changed missed by a tap under load",
        str(fig["events_lost_under_load"]),
        "0",
        verdict(fig["events_lost_under_load"], 1, below=True),
    )
    lines = [
        *header("lumiera fault benchmark", f"{len(VICTIMS)} victims, {CLIENTS} clients a round"),
        f"mode: {'quick' if ctx.quick else 'full'}; {ctx.elapsed():.1f} s",
    ]
    return finish(lines, t, ctx.problems, fig, 3)


def main(argv: Sequence[str] | None = None) -> int:
    parse = parser(__doc__, "20 rounds, 8 s of load (within 90 s on 2 cores)")
    parse.add_argument("--rounds", type=int, help="crash rounds (default 100, quick 20)")
    parse.add_argument("--seconds", type=float, help="seconds of load (default 20, quick 8)")
    parse.add_argument("--rate", type=float, default=AIM_RATE, help="commands/s aimed at")
    parse.add_argument("--seed", type=int, default=16, help="of the random kills")
    parse.add_argument(
        "--status-every",
        type=float,
        default=0.0,
        metavar="S",
        help="each status tool polls every S seconds (default 0: back to back, the harshest)",
    )
    args = parse.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (20 if args.quick else 100)
    seconds = args.seconds if args.seconds is not None else (8.0 if args.quick else 20.0)
    if rounds < 1 or seconds <= 0 or args.rate <= 0:
        parse.error("--rounds, --seconds and --rate must be positive")
    with bench_context("lumfault-", args.quick) as ctx:
        say(f"crash rounds: {rounds}")
        cr = bench_crashes(ctx, rounds, args.seed)
        say(f"load: {seconds:g} s, commands paced to {args.rate:g}/s")
        ld = bench_load(ctx, seconds, args.rate, args.status_every)
    return report(cr, ld, ctx, args.rate, args.status_every)


if __name__ == "__main__":
    bench_main(main)
