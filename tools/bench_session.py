"""Benchmark of the session: durable commands end to end, raw SQLite, journal replay.

Run from the repository root with the project's interpreter::

    .venv/bin/python tools/bench_session.py            # full run (a few minutes)
    .venv/bin/python tools/bench_session.py --quick    # under a minute on 2 cores

Prints a table (figures beside the aims of the issue, pass/MISS) and, as the
very last line of stdout, one JSON object with the headline figures. Progress
and warnings go to stderr.

What is measured, and how:

* raw SQLite: a plain ``sqlite3`` connection (``isolation_level=None``, WAL,
  ``synchronous=FULL``) in the same temporary directory as the session files,
  committing one 200-byte row per ``BEGIN IMMEDIATE``/``INSERT``/``COMMIT``.
  Measured before and after the end-to-end runs; the figure is over both.
* session core in this process (no bus): ``SessionCore.execute`` of
  ``set_output`` (alternating values) on a fresh file, with the journal's
  ``append`` and ``snapshot`` timed, so the cost splits into the commit, the
  snapshots and the rest (validation, apply, memento).
* end to end: ``lumiera up --headless SESSIONFILE``; ``ControlClient.request
  ("session", "set_output", ...)`` with alternating values, each answered only
  after its journal row is committed (client -> supervisor -> session ->
  commit -> reply). One client, then 8 threads each with its own client
  sending at once (total commands / wall time from a common start). Beside
  them: ``session ping`` over the same path (the bus alone, nothing written).
  At the end, ``describe`` must count every command sent as a journal row.
  ``set_output`` rather than ``add_track``: its state and undo memento stay
  the same size, whereas each ``add_track`` memento copies the whole track
  list, which grows with every command.
* edits as the session grows (in this process, no bus): ``add_clip`` of a
  1-frame clip after the last on one track, 3,000 times (1,000 with
  ``--quick``); the median time of each block of 500 (250), and the last
  block's over the first (each command timed whole: validation, apply and its
  journal commit). It grows linearly, slowly: a placing edit reads every clip
  of the session once for its overlap check. Then ``Timeline.from_wire``
  of the whole timeline, the median of 5.
* replay: a journal of N commands built directly with ``SessionCore`` (a fake
  media probe; a cycle of move_clip, set_output, add_track, trim_clip,
  remove_track, undo, redo), then timed ``SessionCore(path)`` opens: as
  written (default ``snapshot_every=1000``), on a copy without its latest
  snapshot (the worst case: 1,000 rows after the one before), and on a copy
  without any snapshot (every row replayed). Each open must reach the same
  state. N is 100,000, or 20,000 with ``--quick`` (then ``replay_100k_s`` is
  the time for 20,000 commands; nothing is extrapolated).

Everything lives in one temporary directory that is removed at the end; the
instance is stopped in ``finally`` (SIGTERM, wait, SIGKILL as a last resort)
and checked for left-over processes, socket files and shm segments.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from harness import (
    BenchContext,
    Table,
    alternate,
    bench_context,
    bench_instance,
    bench_main,
    finish,
    header,
    median,
    parser,
    pct,
    say,
    verdict,
)

from lumiera.bus.client import ControlClient
from lumiera.bus.timeline import Timeline
from lumiera.runtime_dir import RuntimeDir
from lumiera.steam.core import SessionCore

AIM_E2E_OF_RAW = 0.5  # end to end (many clients) at half the raw commit rate or better
AIM_REPLAY_S = 2.0  # a 100,000-command journal opened (with snapshots) in under 2 s
CLIENTS = 8
START_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0
ROW_BYTES = 200

OUTPUTS = (
    {"width": 1920, "height": 1080, "rate": "25"},
    {"width": 1280, "height": 720, "rate": "30000/1001"},
)


def fake_probe(path: str) -> dict[str, Any]:
    """What a probe of a 100-frame clip would say (the replay build opens no file)."""
    return {
        "frames": 100,
        "rate": "25",
        "width": 64,
        "height": 48,
        "pix_fmt": "yuv420p",
        "size": 1,
        "mtime_ns": 1,
    }


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- raw SQLite --------------------------------------------------------------------------


def raw_commits(directory: Path, n: int, warmup: int) -> float:
    """Single-row durable commits per second on a fresh WAL database in ``directory``."""
    path = directory / "raw.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"raw SQLite: journal_mode is {mode}, not wal")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        body = os.urandom(ROW_BYTES)

        def commit() -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t (body) VALUES (?)", (body,))
            db.execute("COMMIT")

        for _ in range(warmup):
            commit()
        t0 = time.perf_counter()
        for _ in range(n):
            commit()
        return n / (time.perf_counter() - t0)
    finally:
        db.close()
        remove_db(path)


# -- the session core in this process ----------------------------------------------------


@dataclass
class CoreResult:
    commands: int
    per_s: float
    append_us: float  # per command: journal.append (pack, INSERT, COMMIT, MAX(seq))
    snapshot_us: float  # per command, amortised: journal.snapshot every 1,000
    total_us: float


def core_rate(directory: Path, n: int) -> CoreResult:
    """``SessionCore.execute`` of set_output, with the journal's share timed."""
    path = directory / "core.lumiera"
    core = SessionCore(path, probe=fake_probe)
    spent = {"append": 0.0, "snapshot": 0.0}
    real_append, real_snapshot = core.journal.append, core.journal.snapshot

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args)
            finally:
                spent[name] += time.perf_counter() - t

        return wrapper

    core.journal.append = timed("append", real_append)  # type: ignore[method-assign]
    core.journal.snapshot = timed("snapshot", real_snapshot)  # type: ignore[method-assign]
    try:
        for i in range(200):  # warm-up
            core.execute("set_output", OUTPUTS[i % 2])
        spent.update(append=0.0, snapshot=0.0)
        t0 = time.perf_counter()
        for i in range(n):
            core.execute("set_output", OUTPUTS[i % 2])
        elapsed = time.perf_counter() - t0
    finally:
        core.close()
        remove_db(path)
    return CoreResult(
        n, n / elapsed, spent["append"] / n * 1e6, spent["snapshot"] / n * 1e6, elapsed / n * 1e6
    )


def growth(directory: Path, clips: int, block: int) -> tuple[list[float], float]:
    """``add_clip`` as one track fills up: the median us of each ``block`` of commands;
    and the median ms of the full timeline's ``Timeline.from_wire`` at the end (what the
    Player and the Engine decode at each render or play request)."""
    path = directory / "growth.lumiera"
    core = SessionCore(path, probe=fake_probe)
    try:
        mid = core.execute("add_media", {"path": "bench-media.mov"})["applied"]["id"]
        tid = core.execute("add_track", {"name": "V1"})["applied"]["id"]
        spent: list[float] = []
        for i in range(clips):
            args = {"media": mid, "track": tid, "position": i, "source_in": i % 99}
            t = time.perf_counter()
            core.execute("add_clip", {**args, "source_out": i % 99 + 1})
            spent.append((time.perf_counter() - t) * 1e6)
        wire = core.session.timeline().to_wire()
        decode: list[float] = []
        for _ in range(5):
            t = time.perf_counter()
            Timeline.from_wire(wire)
            decode.append((time.perf_counter() - t) * 1e3)
    finally:
        core.close()
        remove_db(path)
    return [median(spent[k : k + block]) for k in range(0, clips, block)], median(decode)


def growth_rows(t: Table, blocks: list[float], block: int, decode_ms: float) -> None:
    t.add(
        f"add_clip, first / last {block} of {block * len(blocks):,} clips, p50",
        f"{blocks[0]:.0f} / {blocks[-1]:.0f} us",
        how=f"in-process; per {block} commands: " + ", ".join(f"{b:.0f}" for b in blocks),
    )
    t.add(
        "  last block / first",
        f"{blocks[-1] / blocks[0]:.2f}x",
        how="linear: the overlap check reads every clip of the session once",
    )
    t.add(
        f"Timeline.from_wire, {block * len(blocks):,} clips",
        f"{decode_ms:.1f} ms",
        how="every field checked; the Player and the Engine each decode it per render or play",
    )


# -- end to end --------------------------------------------------------------------------


@dataclass
class Load:
    """Requests sent by one or more clients at once."""

    clients: int
    requests: int
    elapsed_s: float
    latency_us: list[float]

    @property
    def per_s(self) -> float:
        return self.requests / self.elapsed_s


Sender = Callable[[ControlClient, int], object]


def set_output(client: ControlClient, i: int) -> object:
    return client.request("session", "set_output", OUTPUTS[i % 2])


def ping(client: ControlClient, i: int) -> object:
    return client.request("session", "ping")


def _send(client: ControlClient, send: Sender, n: int, out: list[float]) -> None:
    clock = time.perf_counter_ns
    for i in range(n):
        t = clock()
        send(client, i)
        out.append((clock() - t) / 1000)


def load(rd: RuntimeDir, send: Sender, clients: int, per_client: int, warmup: int) -> Load:
    """``clients`` threads, each with its own ControlClient, sending at once after a warm-up."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    ready = threading.Barrier(clients + 1, timeout=START_TIMEOUT_S)
    done = threading.Barrier(clients + 1, timeout=REQUEST_TIMEOUT_S * per_client)

    def worker(k: int) -> None:
        try:
            with ControlClient(rd, timeout=REQUEST_TIMEOUT_S) as client:
                _send(client, send, warmup, [])
                ready.wait()
                _send(client, send, per_client, latencies[k])
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)
            ready.abort()
        finally:
            with contextlib.suppress(threading.BrokenBarrierError):
                done.wait()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    try:
        ready.wait()
        t0 = time.perf_counter()
        done.wait()
        elapsed = time.perf_counter() - t0
    except threading.BrokenBarrierError:
        elapsed = float("nan")
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT_S)
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]!r}") from errors[0]
    return Load(clients, clients * per_client, elapsed, [x for xs in latencies for x in xs])


@dataclass
class E2eResult:
    single: Load
    many: Load
    ping_single: Load
    ping_many: Load
    rows: int  # journal rows the session counts at the end
    sent: int  # durable commands sent (warm-up included)
    single_group: float  # journal rows per commit, one client
    many_group: float  # journal rows per commit, many clients (group commit)


def bench_e2e(ctx: BenchContext, n: int, per_client: int, warmup: int) -> E2eResult:
    session_file = ctx.base / "e2e.lumiera"
    with bench_instance(ctx, ["--headless", str(session_file)]) as inst:
        rd = inst.rd
        say(f"  one client: {n} set_output")
        single = load(rd, set_output, 1, n, warmup)
        say(f"    {single.per_s:,.0f} commands/s")
        say(f"  {CLIENTS} clients: {per_client} set_output each")
        many = load(rd, set_output, CLIENTS, per_client, warmup // CLIENTS)
        say(f"    {many.per_s:,.0f} commands/s")
        say("  session ping, one client and many")
        ping_single = load(rd, ping, 1, n, warmup)
        ping_many = load(rd, ping, CLIENTS, per_client, warmup // CLIENTS)
        with ControlClient(rd, timeout=REQUEST_TIMEOUT_S) as client:
            described = client.request("session", "describe")
    sent = warmup + n + CLIENTS * (warmup // CLIENTS) + CLIENTS * per_client
    rows = int(described["session"]["journal_rows"])
    if rows != sent:
        ctx.problems.append(f"end to end: {sent} commands acknowledged, {rows} journal rows")
    single_group = rows_per_commit(session_file, warmup, warmup + n)
    many_group = rows_per_commit(session_file, sent - many.requests, sent)
    remove_db(session_file)
    return E2eResult(single, many, ping_single, ping_many, rows, sent, single_group, many_group)


def rows_per_commit(path: Path, after: int, upto: int) -> float:
    """Journal rows per transaction in seq (after, upto]: rows of one commit share their ts.

    Read from the closed session file; NaN if its layout is not the one expected.
    """
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return float("nan")
    try:
        rows, commits = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT ts) FROM journal WHERE seq > ? AND seq <= ?",
            (after, upto),
        ).fetchone()
    except sqlite3.Error:
        return float("nan")
    finally:
        db.close()
    return float(rows / commits) if commits else float("nan")


# -- replay ------------------------------------------------------------------------------

SETUP: list[tuple[str, dict[str, Any]]] = [
    ("add_media", {"path": "bench-media.mov"}),
    ("add_track", {"name": "V1"}),
    ("add_track", {"name": "V2"}),
    ("add_clip", {"media": "m1", "track": "t1", "position": 0, "source_out": 50}),
]


def replay_command(i: int) -> tuple[str, dict[str, Any]]:
    """The i-th command of the replay journal (a cycle that keeps the state small)."""
    if i < len(SETUP):
        return SETUP[i]
    step = (i - len(SETUP)) % 8
    if step == 0:
        return "move_clip", {"id": "c1", "position": i % 5000, "track": ("t1", "t2")[i // 8 % 2]}
    if step == 1:
        return "set_output", OUTPUTS[i // 8 % 2]
    if step == 2:
        return "add_track", {"name": f"extra {i}"}  # becomes t3, removed again at step 4
    if step == 3:
        return "trim_clip", {"id": "c1", "source_in": i % 10, "source_out": 50 + i % 50}
    if step == 4:
        return "remove_track", {"id": "t3"}
    if step == 5:
        return "undo", {}
    if step == 6:
        return "redo", {}
    return "move_clip", {"id": "c1", "position": (i * 7) % 5000}


@dataclass
class ReplayResult:
    count: int
    build_s: float
    file_bytes: int
    snap_s: list[float]
    snap_rows: int
    worst_s: list[float]
    worst_rows: int
    none_s: list[float]
    none_rows: int


def build_journal(path: Path, count: int) -> None:
    core = SessionCore(path, probe=fake_probe)
    try:
        for i in range(count):
            command, args = replay_command(i)
            core.execute(command, args)
            if i and i % 20000 == 0:
                say(f"    {i:,} commands")
    finally:
        core.close()


def delete_snapshots(src: Path, dst: Path, keep_older: bool) -> None:
    """Copy the closed journal, then delete its latest snapshot (or all of them) in the copy."""
    shutil.copyfile(src, dst)
    db = sqlite3.connect(dst, isolation_level=None)
    try:
        if keep_older:
            db.execute("DELETE FROM snapshot WHERE seq = (SELECT MAX(seq) FROM snapshot)")
        else:
            db.execute("DELETE FROM snapshot")
    finally:
        db.close()


def timed_open(path: Path, snapshot_every: int, expect: dict[str, Any]) -> tuple[float, int]:
    """Seconds to open (replay) ``path``, and the rows replayed; checks the state reached."""
    t0 = time.perf_counter()
    core = SessionCore(path, probe=fake_probe, snapshot_every=snapshot_every)
    elapsed = time.perf_counter() - t0
    try:
        got = {k: v for k, v in core.describe().items() if k != "file"}
        if got != expect:
            raise RuntimeError(f"replay of {path.name} reached a different state")
        return elapsed, core.replayed
    finally:
        core.close()


def bench_replay(ctx: BenchContext, count: int, repeats: int) -> ReplayResult:
    built = ctx.base / "replay.lumiera"
    say(f"  building a journal of {count:,} commands")
    t0 = time.perf_counter()
    build_journal(built, count)
    build_s = time.perf_counter() - t0
    if Path(f"{built}-wal").exists():
        raise RuntimeError("the journal's WAL is still there after close (copy would be partial)")
    say(f"    {build_s:.1f} s ({count / build_s:,.0f} commands/s)")
    worst, none = ctx.base / "replay-worst.lumiera", ctx.base / "replay-none.lumiera"
    delete_snapshots(built, worst, keep_older=True)
    delete_snapshots(built, none, keep_older=False)
    probe = SessionCore(built, probe=fake_probe)
    try:
        expect = {k: v for k, v in probe.describe().items() if k != "file"}
    finally:
        probe.close()
    res = ReplayResult(count, build_s, built.stat().st_size, [], 0, [], 0, [], 0)

    def snapshot(_: int) -> None:
        s, res.snap_rows = timed_open(built, 1000, expect)
        res.snap_s.append(s)

    def worst_case(_: int) -> None:
        s, res.worst_rows = timed_open(worst, 1000, expect)
        res.worst_s.append(s)

    def no_snapshot(r: int) -> None:
        s, res.none_rows = timed_open(none, count + 1, expect)
        res.none_s.append(s)
        say(
            f"  open {r + 1}/{repeats}: snapshot {res.snap_s[-1]:.3f} s, "
            f"worst {res.worst_s[-1]:.3f} s, none {res.none_s[-1]:.3f} s"
        )

    # in turn, so drift of the machine hits all three
    alternate({"snap": snapshot, "worst": worst_case, "none": no_snapshot}, repeats, mirror=False)
    for path in (built, worst, none):
        remove_db(path)
    return res


# -- report ------------------------------------------------------------------------------


def lat(load_: Load) -> str:
    return f"{median(load_.latency_us):.0f} / {pct(load_.latency_us, 99):.0f} us"


def e2e_rows(t: Table, e2e: E2eResult, raw_rate: float) -> None:
    aim_rate = AIM_E2E_OF_RAW * raw_rate
    many_ratio = e2e.many.per_s / raw_rate
    note = "" if many_ratio >= AIM_E2E_OF_RAW else "; BELOW THE AIM (see rows per commit)"
    t.add(
        "e2e durable commands, 1 client",
        f"{e2e.single.per_s:,.0f} /s",
        how=f"{e2e.single.requests} set_output; {e2e.single.per_s / raw_rate:.2f}x raw",
    )
    t.add("  latency p50 / p99", lat(e2e.single), how="per command, client side")
    t.add(
        f"e2e durable commands, {CLIENTS} clients",
        f"{e2e.many.per_s:,.0f} /s",
        f">= {aim_rate:,.0f} /s",
        verdict(e2e.many.per_s, aim_rate),
        how=f"{e2e.many.requests} total; {many_ratio:.2f}x raw (aim >= {AIM_E2E_OF_RAW:g}x){note}",
    )
    t.add("  latency p50 / p99", lat(e2e.many), how="per command, client side")
    t.add(
        "  journal rows per commit, 1 / many clients",
        f"{e2e.single_group:.2f} / {e2e.many_group:.2f}",
        how="from the file afterwards: rows of one transaction share their ts",
    )
    t.add(
        "  journal rows counted by the session",
        f"{e2e.rows:,}",
        f"{e2e.sent:,}",
        "pass" if e2e.rows == e2e.sent else "MISS",
        how="every acknowledged command (warm-up included) is a row",
    )
    t.add(
        "session ping (bus only), 1 client",
        f"{e2e.ping_single.per_s:,.0f} /s",
        how=f"p50 / p99 {lat(e2e.ping_single)}; the same path, nothing written",
    )
    t.add(
        f"session ping (bus only), {CLIENTS} clients",
        f"{e2e.ping_many.per_s:,.0f} /s",
        how="the ceiling of e2e without any journal",
    )


def core_rows(t: Table, core: CoreResult, raw_rate: float) -> None:
    t.add(
        "SessionCore.execute in-process",
        f"{core.per_s:,.0f} /s",
        how=f"{core.commands} set_output, no bus; {core.total_us:.0f} us per command:",
    )
    t.add(
        "  journal.append (pack+INSERT+COMMIT+MAX)",
        f"{core.append_us:.0f} us",
        how=f"raw commit alone: {1e6 / raw_rate:.0f} us",
    )
    t.add("  journal.snapshot (amortised)", f"{core.snapshot_us:.1f} us", how="every 1,000")
    rest = core.total_us - core.append_us - core.snapshot_us
    t.add("  the rest (validate, apply, memento)", f"{rest:.0f} us")


def replay_rows(t: Table, rp: ReplayResult) -> None:
    n_label = f"{rp.count:,}" + (" (quick: not 100k)" if rp.count != 100_000 else "")
    for title, times, how in (
        (
            f"replay {n_label} commands, snapshots",
            rp.snap_s,
            f"as written (snapshot_every=1000): {rp.snap_rows} rows after the snapshot",
        ),
        (
            "  worst case: latest snapshot gone",
            rp.worst_s,
            f"{rp.worst_rows} rows after the snapshot before",
        ),
    ):
        m = median(times)
        t.add(
            title,
            f"{m:.3f} s",
            f"< {AIM_REPLAY_S:g} s",
            verdict(m, AIM_REPLAY_S, below=True),
            how=how,
        )
    t.add(
        "  no snapshots",
        f"{median(rp.none_s):.3f} s",
        how=f"{rp.none_rows:,} rows replayed ({rp.none_rows / median(rp.none_s):,.0f} rows/s)",
    )
    t.add(
        "  journal built with SessionCore",
        f"{rp.build_s:.1f} s",
        how=f"{rp.count / rp.build_s:,.0f} commands/s; file {rp.file_bytes / 1e6:.1f} MB; "
        f"median of {len(rp.snap_s)} opens each",
    )


def report(
    ctx: BenchContext,
    *,
    dev: int,
    raw: list[float],
    core: CoreResult,
    e2e: E2eResult,
    rp: ReplayResult,
    grown: tuple[list[float], float],
    block: int,
) -> int:
    raw_rate = len(raw) / sum(1 / r for r in raw)  # over all commits of both blocks
    t = Table("figure", "value", "aim", "ok?", "how")
    t.add(
        "raw SQLite WAL FULL, 1 row/commit",
        f"{raw_rate:,.0f} /s",
        how=f"blocks before/after e2e: {raw[0]:,.0f} / {raw[1]:,.0f} /s; {ROW_BYTES} B rows",
    )
    e2e_rows(t, e2e, raw_rate)
    core_rows(t, core, raw_rate)
    growth_rows(t, grown[0], block, grown[1])
    replay_rows(t, rp)
    versions = (
        f"sqlite {sqlite3.sqlite_version}, pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}"
    )
    lines = [
        *header("lumiera session benchmark", versions),
        f"files (raw SQLite and session files alike) under {ctx.base} (st_dev {dev}), removed",
        f"mode: {'quick' if ctx.quick else 'full'}; {ctx.elapsed():.1f} s",
        f"aims: e2e ({CLIENTS} clients) >= {AIM_E2E_OF_RAW:g}x raw SQLite; "
        f"replay of 100,000 commands < {AIM_REPLAY_S:g} s with snapshots",
    ]
    fig = {
        "e2e_cmds_per_s": e2e.single.per_s,
        "e2e_cmds_per_s_many_clients": e2e.many.per_s,
        "raw_sqlite_commits_per_s": raw_rate,
        "replay_100k_s": median(rp.snap_s),
        "add_clip_growth_x": grown[0][-1] / grown[0][0],
        "timeline_from_wire_ms": grown[1],
    }
    return finish(lines, t, ctx.problems, fig, 6)


# -- main --------------------------------------------------------------------------------


@dataclass
class Plan:
    raw: int
    core: int
    clips: int
    e2e: int
    per_client: int
    warmup: int
    replay: int
    repeats: int


QUICK = Plan(
    raw=2000, core=2000, clips=1000, e2e=2000, per_client=250, warmup=200, replay=20_000, repeats=2
)
FULL = Plan(
    raw=8000,
    core=8000,
    clips=3000,
    e2e=8000,
    per_client=1000,
    warmup=400,
    replay=100_000,
    repeats=3,
)


def main(argv: Sequence[str] | None = None) -> int:
    parse = parser(__doc__, "smaller counts (< 60 s)")
    parse.add_argument("--replay", type=int, help="commands in the replay journal")
    args = parse.parse_args(argv)
    p = dataclasses.replace(QUICK if args.quick else FULL)
    if args.replay is not None:
        p.replay = args.replay
    if p.replay < len(SETUP) + 1000:
        parse.error(f"--replay must be at least {len(SETUP) + 1000}")

    with bench_context("lumbench-", args.quick) as ctx:
        base = ctx.base
        dev = base.stat().st_dev
        say(f"raw SQLite: {p.raw} commits")
        raw = [raw_commits(base, p.raw, 100)]
        say(f"  {raw[0]:,.0f} commits/s")
        say(f"session core in-process: {p.core} commands")
        core = core_rate(base, p.core)
        block = 250 if args.quick else 500
        say(f"edits as the session grows: {p.clips} add_clip")
        grown = growth(base, p.clips, block)
        say("end to end")
        e2e = bench_e2e(ctx, p.e2e, p.per_client, p.warmup)
        say(f"raw SQLite again: {p.raw} commits")
        raw.append(raw_commits(base, p.raw, 100))
        say(f"  {raw[1]:,.0f} commits/s")
        say(f"replay: {p.replay:,} commands, {p.repeats} opens per variant")
        rp = bench_replay(ctx, p.replay, p.repeats)
    return report(ctx, dev=dev, raw=raw, core=core, e2e=e2e, rp=rp, grown=grown, block=block)


if __name__ == "__main__":
    bench_main(main)
