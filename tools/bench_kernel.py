"""Benchmark of the application kernel: startup, crash detection, request round trip.

Run from the repository root with the project's interpreter::

    .venv/bin/python tools/bench_kernel.py            # full run (a few minutes)
    .venv/bin/python tools/bench_kernel.py --quick    # under a minute on 2 cores

Prints a table (figures beside the aims of the issue, pass/miss) and, as the
very last line of stdout, one JSON object with the headline figures. Progress
and warnings go to stderr.

What is measured, and how:

* startup: ``lumiera up --headless`` on a fresh runtime directory, from just
  before the process is spawned to the moment a SUB socket on the instance's
  ``events`` receives ``appstate.phase`` = ``running``. The SUB is connected
  *before* the spawn with a 2 ms reconnect interval, so it attaches as soon
  as the supervisor binds, long before the phase changes. Should an event be
  missed anyway, status polling over ``control`` takes over (and the method
  column says so). Beside it: the spawn of a bare ``python -c pass`` and a few
  import costs, all with the same interpreter.
* crash detection: an instance up (the same SUB, so the subscription is known
  to be effective: it already delivered the startup events); SIGKILL of one
  subsystem (engine, session, player in turn; pid from ``status``); from just
  before ``os.kill`` to receiving ``lifecycle.ON_EMERGENCY_EXIT``, and to all
  processes gone: pidfds of the supervisor and of every subsystem, polled in
  the same ``zmq.Poller`` as the SUB socket, all readable. A fresh instance
  per run.
* round trip: ``ControlClient.request("session", "ping")`` in this process
  (client -> supervisor -> session -> supervisor -> client), beside a raw
  pyzmq DEALER -> ROUTER echo over ipc in a separate process with the same
  request bytes and a reply of the same shape (msgpack packed and unpacked on
  both sides). The two are measured in alternating blocks in the same run.
  ``appstate`` ping (one hop: client -> supervisor -> client) is shown too.
  Beside them, the direct call: ``ControlClient(direct=True)`` to the
  session's own ROUTER (``svc-session``, one hop: client -> session ->
  client), aim <= 1.5x the raw echo of the same run.

Everything started is stopped in ``finally`` blocks (SIGTERM, wait, SIGKILL as
a last resort); runtime and log directories live in one temporary directory
that is removed at the end, and each instance is checked for left-over
processes, socket files and shm segments.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import zmq
from harness import (
    BenchContext,
    Child,
    Table,
    alternate,
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

from lumiera.bus import messages as m
from lumiera.bus.client import ControlClient
from lumiera.bus.events import decode_event
from lumiera.bus.topics import EmergencyExit, PhaseChanged
from lumiera.runtime_dir import RuntimeDir
from lumiera.testing import Instance

SUBSYSTEMS = ("engine", "session", "player")
START_TIMEOUT_S = 30.0
CRASH_TIMEOUT_S = 15.0

AIM_STARTUP_S = 0.5
AIM_CRASH_EVENT_MS = 10.0
AIM_CRASH_GONE_MS = 1000.0
AIM_RTT_RATIO = 2.0
AIM_DIRECT_RATIO = 1.5

# The raw round trip's other end: a ROUTER that answers each request with a
# reply shaped like lumiera's (so both directions carry the same bytes).
ECHO_SRC = r"""
import os, sys, time
import msgpack, zmq
ctx = zmq.Context()
sock = ctx.socket(zmq.ROUTER)
sock.setsockopt(zmq.LINGER, 0)
old = os.umask(0o077)
sock.bind(sys.argv[1])
os.umask(old)
parent = os.getppid()
print("ready", flush=True)
while True:
    if not sock.poll(500):
        if os.getppid() != parent:
            break
        continue
    *envelope, body = sock.recv_multipart()  # [ident] direct, [proxy, client] via the proxy
    if body == b"quit":
        break
    req = msgpack.unpackb(body)
    result = {"pong": True, "name": "session", "pid": os.getpid(), "ts": time.time()}
    reply = {"v": 1, "kind": "reply", "id": req["id"], "result": result}
    sock.send_multipart([*envelope, msgpack.packb(reply, use_bin_type=True)])
sock.close()
ctx.term()
"""

# The structural floor of a routed request: one more process in the middle that
# forwards frames in C (zmq.proxy), no Python per message. Lumiera's supervisor
# does the same hop in Python, validating and re-addressing each message.
PROXY_SRC = r"""
import os, sys, zmq
ctx = zmq.Context()
front = ctx.socket(zmq.ROUTER)
back = ctx.socket(zmq.DEALER)
for s in (front, back):
    s.setsockopt(zmq.LINGER, 0)
old = os.umask(0o077)
front.bind(sys.argv[1])
os.umask(old)
back.connect(sys.argv[2])
print("ready", flush=True)
zmq.proxy(front, back)
"""


# -- an instance and its events ----------------------------------------------------------


@dataclass
class Started:
    inst: Instance
    sub: zmq.Socket[bytes]
    t0: float  # perf_counter just before the spawn
    running_s: float
    bound_s: float | None  # the events socket file seen
    subsystem_s: dict[str, float]  # subsystem.<name>.running received
    method: str  # "events" or "status"


def _sub_socket(rd: RuntimeDir) -> zmq.Socket[bytes]:
    """A SUB of our own, not a ``bus.events.Subscriber``: it must reconnect every 2 ms
    (the Subscriber's socket keeps zmq's 100 ms), and the crash loop polls it in one
    zmq.Poller with pidfds. Its frames are decoded by ``events.decode_event`` all the same."""
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, 2)  # attach within ~2 ms of the supervisor's bind
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2)
    sock.setsockopt(zmq.SUBSCRIBE, b"")  # lifecycle, phase and subsystem events are few
    sock.connect(rd.endpoint("events"))
    return sock


def _status_running(rd: RuntimeDir) -> bool:
    try:
        with ControlClient(rd, timeout=1.0) as c:
            return bool(c.request("appstate", "status")["phase"] == "running")
    except Exception:  # noqa: BLE001 - not up yet
        return False


@contextlib.contextmanager
def running_instance(ctx: BenchContext) -> Iterator[Started]:
    """Start ``lumiera up --headless``, wait until running, yield; stop it in any case."""
    rd = ctx.runtime_dir()
    inst = Instance(("--headless",), rd=rd, env=ctx.env)
    sub = _sub_socket(rd)
    try:
        t0 = time.perf_counter()
        inst.start()
        assert inst.proc is not None
        events_socket = rd.socket("events")
        bound_s: float | None = None
        subsystem_s: dict[str, float] = {}
        next_status = float("inf")
        while True:
            now = time.perf_counter()
            if now - t0 > START_TIMEOUT_S:
                raise TimeoutError(f"{rd.instance} not running within {START_TIMEOUT_S} s")
            if sub.poll(2):
                frames = sub.recv_multipart()
                now = time.perf_counter()
                event = decode_event(frames)
                topic = event.topic
                if topic.startswith("subsystem.") and topic.endswith(".running"):
                    subsystem_s[topic.split(".")[1]] = now - t0
                elif isinstance(event.body, PhaseChanged):
                    phase = event.body.phase
                    if phase == "running":
                        method = "events"
                        break
                    if phase in ("emergency", "done", "stopping", "closing"):
                        raise RuntimeError(f"{rd.instance} went to phase {phase} while starting")
                continue
            if inst.proc.poll() is not None:
                raise RuntimeError(f"lumiera up exited {inst.proc.returncode}:\n{inst.output()}")
            if bound_s is None and events_socket.exists():
                bound_s = now - t0
                next_status = now + 1.0  # a safety net only: the SUB should see the phase
            if now >= next_status:
                if _status_running(rd):
                    now = time.perf_counter()
                    method = "status"
                    break
                next_status = time.perf_counter() + 0.1
        running_s = now - t0
        if method == "status":
            time.sleep(0.05)  # let a late subscription take effect
        yield Started(inst, sub, t0, running_s, bound_s, subsystem_s, method)
    finally:
        sub.close(linger=0)
        ctx.problems.extend(inst.close_and_check())


# -- startup -----------------------------------------------------------------------------


def spawn_time(args: Sequence[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - t0


@dataclass
class StartupResult:
    running: list[float] = field(default_factory=list)
    bound: list[float] = field(default_factory=list)
    subsystem: dict[str, list[float]] = field(default_factory=dict)
    methods: dict[str, int] = field(default_factory=dict)
    spawn: dict[str, list[float]] = field(default_factory=dict)


SPAWN_PROBES: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "python -c 'import zmq, msgpack'": ["-c", "import zmq, msgpack"],
    "python -c 'import lumiera.actors.process'": ["-c", "import lumiera.actors.process"],
    "python -m lumiera --help": ["-m", "lumiera", "--help"],
}


def bench_startup(ctx: BenchContext, runs: int, probe_runs: int) -> StartupResult:
    res = StartupResult()
    for label, args in SPAWN_PROBES.items():
        spawn_time(args)  # warm the page cache
        res.spawn[label] = [spawn_time(args) for _ in range(probe_runs)]
    for i in range(runs):
        with running_instance(ctx) as st:
            res.running.append(st.running_s)
            if st.bound_s is not None:
                res.bound.append(st.bound_s)
            for name, t in st.subsystem_s.items():
                res.subsystem.setdefault(name, []).append(t)
            res.methods[st.method] = res.methods.get(st.method, 0) + 1
        say(f"  startup {i + 1}/{runs}: {st.running_s:.3f} s ({st.method})")
    return res


# -- crash detection ---------------------------------------------------------------------


@dataclass
class CrashResult:
    to_event_ms: list[float] = field(default_factory=list)
    to_gone_ms: list[float] = field(default_factory=list)
    exit_codes: dict[int, int] = field(default_factory=dict)


def _subsystem_pids(rd: RuntimeDir) -> dict[str, int]:
    with ControlClient(rd, timeout=5.0) as c:
        st = c.request("appstate", "status")
    return {s["name"]: int(s["pid"]) for s in st["subsystems"] if s["pid"]}


def crash_once(ctx: BenchContext, victim: str) -> tuple[float, float, int]:
    """One fresh instance, SIGKILL of ``victim``: (ms to the event, ms to all gone, exit code)."""
    with running_instance(ctx) as st:
        proc = st.inst.proc
        assert proc is not None
        pids = _subsystem_pids(st.inst.rd)
        fds: list[int] = []
        try:
            poller = zmq.Poller()
            poller.register(st.sub, zmq.POLLIN)
            for pid in [proc.pid, *pids.values()]:
                fd = os.pidfd_open(pid)
                fds.append(fd)
                poller.register(fd, zmq.POLLIN)
            pending = set(fds)
            event_at = gone_at = None
            t0 = time.perf_counter()
            os.kill(pids[victim], signal.SIGKILL)
            while event_at is None or pending:
                left = t0 + CRASH_TIMEOUT_S - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(
                        f"after SIGKILL of {victim}: event seen {event_at is not None}, "
                        f"{len(pending)} process(es) still there after {CRASH_TIMEOUT_S} s"
                    )
                ready = poller.poll(int(left * 1000) + 1)
                now = time.perf_counter()
                for item, _ in ready:
                    if item is st.sub:
                        while st.sub.poll(0):
                            event = decode_event(st.sub.recv_multipart())
                            if isinstance(event.body, EmergencyExit) and event_at is None:
                                event_at = now
                                who = event.body.subsystem
                                if who != victim:
                                    ctx.problems.append(f"emergency names {who}, killed {victim}")
                    elif item in pending:
                        pending.discard(item)
                        poller.unregister(item)
                        if not pending:
                            gone_at = now
            assert event_at is not None and gone_at is not None
            code = proc.wait(timeout=5)
        finally:
            for fd in fds:
                os.close(fd)
        return (event_at - t0) * 1000, (gone_at - t0) * 1000, code


def bench_crash(ctx: BenchContext, runs: int) -> CrashResult:
    res = CrashResult()
    for i in range(runs):
        victim = SUBSYSTEMS[i % len(SUBSYSTEMS)]
        ev, gone, code = crash_once(ctx, victim)
        res.to_event_ms.append(ev)
        res.to_gone_ms.append(gone)
        res.exit_codes[code] = res.exit_codes.get(code, 0) + 1
        say(f"  crash {i + 1}/{runs} ({victim}): event {ev:.2f} ms, all gone {gone:.1f} ms")
    return res


# -- round trip --------------------------------------------------------------------------


@dataclass
class RttResult:
    lumiera_us: list[float] = field(default_factory=list)
    direct_us: list[float] = field(default_factory=list)
    appstate_us: list[float] = field(default_factory=list)
    raw_us: list[float] = field(default_factory=list)
    raw2_us: list[float] = field(default_factory=list)
    request_bytes: int = 0
    reply_bytes: int = 0


class RawEcho:
    """A DEALER here, a ROUTER echo process on an ipc socket in a private temp dir."""

    def __init__(self, base: Path, via_proxy: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="raw-", dir=base))
        self.endpoint = f"ipc://{self.dir / 'echo'}"
        self.helpers: list[Child] = []
        self.sock: zmq.Socket[bytes] | None = None
        try:
            self._start("echo", ECHO_SRC, self.endpoint)
            target = self.endpoint
            if via_proxy:
                target = f"ipc://{self.dir / 'proxy'}"
                self._start("proxy", PROXY_SRC, target, self.endpoint)
            self.sock = zmq.Context.instance().socket(zmq.DEALER)
            self.sock.setsockopt(zmq.LINGER, 0)
            self.sock.connect(target)
        except BaseException:
            self.close()
            raise

    def _start(self, name: str, src: str, *args: str) -> None:
        self.helpers.append(Child(name, [sys.executable, "-c", src, *args]))
        self.helpers[-1].expect("ready", START_TIMEOUT_S)

    def request(self, body: bytes) -> dict[str, Any]:
        assert self.sock is not None
        self.sock.send(body)
        if not self.sock.poll(5000):
            raise TimeoutError("no reply from the echo process within 5 s")
        reply: dict[str, Any] = msgpack.unpackb(self.sock.recv())
        return reply

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(zmq.ZMQError):
                self.sock.send(b"quit")  # the echo ends; the proxy is terminated below
            self.sock.close(linger=0)
            self.sock = None
        for helper in reversed(self.helpers):
            helper.close(grace=0.5 if helper is self.helpers[0] else 0)
        shutil.rmtree(self.dir, ignore_errors=True)


def timed_us(fn: Callable[[], object], n: int) -> list[float]:
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t = clock()
        fn()
        out.append((clock() - t) / 1000)
    return out


def bench_rtt(ctx: BenchContext, requests: int, warmup: int, blocks: int = 4) -> RttResult:
    res = RttResult()
    seq = iter(range(1, 1 << 62))

    def raw_body() -> bytes:
        return m.encode(m.Request(f"{os.getpid()}-{next(seq)}", "session", "ping", {}))

    with running_instance(ctx) as st:
        echo = RawEcho(ctx.base)
        echo2 = RawEcho(ctx.base, via_proxy=True)
        try:
            with (
                ControlClient(st.inst.rd, timeout=5.0) as client,
                ControlClient(st.inst.rd, timeout=5.0, direct=True) as direct,
            ):
                sample = client.request("session", "ping")
                res.request_bytes = len(raw_body())
                res.reply_bytes = len(m.encode(m.Reply(f"{os.getpid()}-99999", sample)))
                paths: dict[str, Callable[[], object]] = {
                    "lumiera": lambda: client.request("session", "ping"),
                    "direct": lambda: direct.request("session", "ping"),
                    "raw": lambda: echo.request(raw_body()),
                    "raw2": lambda: echo2.request(raw_body()),
                    "appstate": lambda: client.request("appstate", "ping"),
                }
                for fn in paths.values():  # warm-up, not recorded
                    timed_us(fn, warmup)
                per_block = max(1, requests // blocks)
                counts = {"appstate": per_block // 2}

                def block(name: str) -> Callable[[int], list[float]]:
                    return lambda _: timed_us(paths[name], counts.get(name, per_block))

                # in blocks, alternating, so drift of the machine hits all paths
                runs = alternate({name: block(name) for name in paths}, blocks, mirror=False)
        finally:
            echo.close()
            echo2.close()
    names = ("lumiera", "direct", "raw", "raw2", "appstate")
    res.lumiera_us, res.direct_us, res.raw_us, res.raw2_us, res.appstate_us = (
        [x for b in runs[name] for x in b] for name in names
    )
    return res


# -- report ------------------------------------------------------------------------------


def report(*, su: StartupResult, cr: CrashResult, rt: RttResult, ctx: BenchContext) -> int:
    fig = {
        "startup_s": median(su.running),
        "bare_python_s": median(su.spawn["python -c pass"]),
        "crash_to_event_ms_p50": median(cr.to_event_ms),
        "crash_to_event_ms_p99": pct(cr.to_event_ms, 99),
        "crash_to_gone_ms_p50": median(cr.to_gone_ms),
        "rtt_us_p50": median(rt.lumiera_us),
        "rtt_us_p99": pct(rt.lumiera_us, 99),
        "raw_rtt_us_p50": median(rt.raw_us),
        "raw_2hop_rtt_us_p50": median(rt.raw2_us),
        "direct_rtt_us_p50": median(rt.direct_us),
        "direct_rtt_us_p99": pct(rt.direct_us, 99),
    }
    direct_ratio = fig["direct_rtt_us_p50"] / fig["raw_rtt_us_p50"]
    direct_ok = verdict(direct_ratio, AIM_DIRECT_RATIO + 1e-9, below=True)
    ratio = fig["rtt_us_p50"] / fig["raw_rtt_us_p50"]
    rtt_ok = verdict(ratio, AIM_RTT_RATIO + 1e-9, below=True)
    t = Table("figure", "value", "aim", "ok?", "how")
    methods = ", ".join(f"{k} x{v}" for k, v in sorted(su.methods.items()))
    t.add(
        "startup (spawn -> phase running), median",
        f"{fig['startup_s']:.3f} s",
        f"< {AIM_STARTUP_S} s",
        verdict(fig["startup_s"], AIM_STARTUP_S, below=True),
        how=f"{len(su.running)} runs; seen via {methods}",
    )
    t.add(
        "  bare python -c pass, median",
        f"{fig['bare_python_s']:.3f} s",
        how=f"{len(su.spawn['python -c pass'])} runs, sys.executable",
    )
    t.add("  startup p90 / max", f"{pct(su.running, 90):.3f} / {max(su.running):.3f} s")
    t.add(
        "  events socket bound, median",
        f"{median(su.bound):.3f} s",
        how="supervisor imported, config read, bound",
    )
    for name in SUBSYSTEMS:
        if name in su.subsystem:
            t.add(
                f"  {name} running, median",
                f"{median(su.subsystem[name]):.3f} s",
                how="subsystem.<name>.running received",
            )
    for label, samples in su.spawn.items():
        if label != "python -c pass":
            t.add(f"  {label}, median", f"{median(samples):.3f} s")
    codes = ", ".join(f"exit {k} x{v}" for k, v in sorted(cr.exit_codes.items()))
    for p, how in (
        ("p50", f"{len(cr.to_event_ms)} runs, engine/session/player in turn"),
        ("p99", "SUB on events; few runs: p99 ~ max"),
    ):
        value = fig[f"crash_to_event_ms_{p}"]
        t.add(
            f"crash: SIGKILL -> ON_EMERGENCY_EXIT, {p}",
            f"{value:.2f} ms",
            f"< {AIM_CRASH_EVENT_MS:g} ms",
            verdict(value, AIM_CRASH_EVENT_MS, below=True),
            how=how,
        )
    t.add(
        "crash: SIGKILL -> all processes gone, p50",
        f"{fig['crash_to_gone_ms_p50']:.1f} ms",
        f"< {AIM_CRASH_GONE_MS:g} ms",
        verdict(fig["crash_to_gone_ms_p50"], AIM_CRASH_GONE_MS, below=True),
        how=f"pidfds of supervisor + subsystems; {codes}",
    )
    t.add(
        "crash: all gone p99 / max",
        f"{pct(cr.to_gone_ms, 99):.1f} / {max(cr.to_gone_ms):.1f} ms",
    )
    t.add(
        "rtt ControlClient -> session ping, p50",
        f"{fig['rtt_us_p50']:.0f} us",
        f"<= {AIM_RTT_RATIO:g}x raw",
        rtt_ok,
        how=f"{len(rt.lumiera_us)} requests; 2 hops via the supervisor",
    )
    t.add("rtt ControlClient -> session ping, p99", f"{fig['rtt_us_p99']:.0f} us")
    t.add(
        "rtt raw DEALER/ROUTER echo, p50",
        f"{fig['raw_rtt_us_p50']:.0f} us",
        how=f"{len(rt.raw_us)} requests; ipc, separate process, msgpack",
    )
    t.add("rtt raw DEALER/ROUTER echo, p99", f"{pct(rt.raw_us, 99):.0f} us")
    t.add("rtt ratio lumiera / raw (p50)", f"{ratio:.2f}x", f"<= {AIM_RTT_RATIO:g}x", rtt_ok)
    t.add(
        "rtt direct (svc-session) ping, p50 / p99",
        f"{fig['direct_rtt_us_p50']:.0f} / {fig['direct_rtt_us_p99']:.0f} us",
        f"<= {AIM_DIRECT_RATIO:g}x raw",
        direct_ok,
        how=f"{len(rt.direct_us)} requests; ControlClient(direct=True), 1 hop",
    )
    t.add(
        "rtt ratio direct / raw (p50)",
        f"{direct_ratio:.2f}x",
        f"<= {AIM_DIRECT_RATIO:g}x",
        direct_ok,
    )
    t.add(
        "rtt raw 2-hop via zmq.proxy (C), p50 / p99",
        f"{fig['raw_2hop_rtt_us_p50']:.0f} / {pct(rt.raw2_us, 99):.0f} us",
        how="the floor of any routed request: DEALER -> proxy -> ROUTER echo",
    )
    t.add(
        "rtt ratio lumiera / raw 2-hop (p50)",
        f"{fig['rtt_us_p50'] / fig['raw_2hop_rtt_us_p50']:.2f}x",
        how="what the Python supervisor and subsystem add over C forwarding",
    )
    t.add(
        "rtt ControlClient -> appstate ping, p50 / p99",
        f"{median(rt.appstate_us):.0f} / {pct(rt.appstate_us, 99):.0f} us",
        how=f"{len(rt.appstate_us)} requests; 1 hop (supervisor answers)",
    )
    versions = (
        f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()},"
        f" msgpack {'.'.join(map(str, msgpack.version))}"
    )
    lines = [
        *header("lumiera kernel benchmark", versions),
        f"mode: {'quick' if ctx.quick else 'full'}; {ctx.elapsed():.1f} s; message sizes:"
        f" request {rt.request_bytes} B, reply {rt.reply_bytes} B (msgpack)",
    ]
    return finish(lines, t, ctx.problems, fig, 6)


# -- main --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parse = parser(__doc__, "fewer repetitions (< 60 s)")
    parse.add_argument(
        "--runs", type=int, help="instance runs for startup and for crash detection each"
    )
    parse.add_argument("--requests", type=int, help="timed round trips per path")
    args = parse.parse_args(argv)
    startup_runs = args.runs or (10 if args.quick else 20)
    crash_runs = args.runs or (9 if args.quick else 20)
    probe_runs = 5 if args.quick else 10
    requests = args.requests or (500 if args.quick else 2000)
    warmup = 100 if args.quick else 300
    if min(startup_runs, crash_runs, requests) < 1:
        parse.error("--runs and --requests must be at least 1")

    with bench_context("lumbench-", args.quick) as ctx:
        say(f"startup: {startup_runs} runs")
        su = bench_startup(ctx, startup_runs, probe_runs)
        say(f"crash detection: {crash_runs} runs")
        cr = bench_crash(ctx, crash_runs)
        say(f"round trip: {requests} requests per path")
        rt = bench_rtt(ctx, requests, warmup)
    return report(su=su, cr=cr, rt=rt, ctx=ctx)


if __name__ == "__main__":
    bench_main(main)
