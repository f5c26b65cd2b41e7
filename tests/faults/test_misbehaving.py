"""Misbehaving subsystems, instances and clocks (issue 16): each ends as documented.

- a crash loop: the gui dies at start every time (its port is taken): each ``up``
  says why in one line and exits 1; the supervisor never respawns it;
- a subsystem that ignores its ``stop`` past ``grace_period``: SIGKILLed, exit 1.
  (The supervisor never sends a subsystem SIGTERM: ``stop`` is its SIGTERM, so
  the Holder ignoring ``stop`` and SIGTERM both is the case.);
- SIGSTOP of a subsystem: the watchdog catches it within ``watchdog_timeout``
  (plus the loop's slack), SIGKILLs the stopped process (SIGKILL ends a stopped
  process; no SIGCONT needed) and nothing is left;
- two ``up`` at the same moment on one runtime directory, stale files of a dead
  instance, runtime directories others can access;
- a wall-clock jump: statically, no deadline in the package reads the wall
  clock; live, an instance whose Python ``time.time()`` jumps an hour forward
  and two back keeps running, and its watchdog still works.

Already covered elsewhere (tests/faults/README.md): a second ``up`` on a running
instance (test_instance_e2e), the stale files of a SIGKILLed supervisor
(test_instance_e2e, test_supervisor_kill), a 0755 runtime directory
(test_instance_e2e), a hung subsystem (test_lifecycle_e2e, without the bound).
"""

from __future__ import annotations

import ast
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lumiera import runtime_dir
from lumiera.exits import EXIT_EMERGENCY, EXIT_ERROR, EXIT_INSTANCE_RUNNING, EXIT_OK
from lumiera.testing import Instance, leftovers, unique_runtime_dir, wait_for
from tests.faults.process_kit import (
    FAST,
    IGNORE_STOP,
    alive,
    assert_clean,
    holding,
    state_of,
    sub_state,
    tapped,
    wait_gone,
)

pytestmark = pytest.mark.integration

WATCHDOG_S = 1.5  # FAST's appstate.watchdog_timeout
WATCHDOG_SLACK_S = 1.0  # the supervisor's loop, and a loaded 2-core machine


def pids_of(inst: Instance) -> list[int]:
    assert inst.proc is not None
    return [s["pid"] for s in inst.status()["subsystems"] if s["pid"]] + [inst.proc.pid]


# -- a crash loop -------------------------------------------------------------------------


def test_a_subsystem_dying_at_start_every_time_fails_each_up_clearly_and_is_never_respawned():
    """The gui's port is taken: it dies in on_start, every time. No respawn within an `up`
    (one gui process, one failure), and three `up`s in a row (a job runner's retries)
    each end the same way, quickly, with the reason on one line."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        reason = f"cannot listen on 127.0.0.1:{port}: Address already in use"
        for attempt in range(3):
            with Instance([], defs=[*FAST, f"gui.port={port}"]) as inst:
                t0 = time.monotonic()
                with tapped(inst) as tap:
                    code = inst.wait(20)
                    tap.poll(0.2)
                took = time.monotonic() - t0
                out = inst.output()
                assert code == EXIT_ERROR, out
                assert took < 5, took
                gui = [(t, b) for t, b in tap.events if t.startswith("subsystem.gui.")]
                assert [t for t, _ in gui] == ["subsystem.gui.failed"], gui
                assert reason in gui[0][1]["reason"]
                assert out.count("gui ended:") == 1  # spawned once, never again
                assert f"gui failed to start: Unavailable: the web UI cannot start: {reason}" in (
                    out
                ), attempt
                assert "lifecycle.ON_EMERGENCY_EXIT" not in tap.topics()
                assert leftovers(inst.rd) == []


# -- ignoring stop ------------------------------------------------------------------------


def test_a_subsystem_ignoring_its_stop_is_killed_after_its_grace_and_up_exits_1():
    """The script (a Holder ignoring an orderly stop and SIGTERM) is stopped first and
    killed ``grace_period`` later; the rest stop in order; exit 1 with the reason."""
    script = unique_runtime_dir().path / "unused.py"
    script.write_text("")
    args = ["--headless", "--script", str(script), "--debug", "script"]
    with Instance(args, defs=[*FAST, "appstate.grace_period=0.5"]) as inst, tapped(inst) as tap:
        with holding(inst, "script", IGNORE_STOP) as holder:
            inst.wait_running()
            pids = [*pids_of(inst), holder.proc.pid]
            t0 = time.monotonic()
            holder.proc.send_signal(signal.SIGTERM)  # ignored
            inst.request("appstate", "stop")
            code = inst.wait(20)
            took = time.monotonic() - t0
            assert holder.close() == -signal.SIGKILL
        tap.poll(0.2)
        assert code == EXIT_ERROR, inst.output()
        assert 0.5 <= took < 0.5 + 3, took
        problems = [b["message"] for t, b in tap.events if t == "appstate.problem"]
        assert problems == ["script did not stop within 0.5 s; killed"]
        assert "lifecycle.ON_GLOBAL_SHUTDOWN" in tap.topics()
        assert "lifecycle.ON_EMERGENCY_EXIT" not in tap.topics()
        assert_clean(inst, pids)
    script.unlink()
    script.parent.rmdir()


# -- SIGSTOP: the watchdog ----------------------------------------------------------------


@pytest.mark.parametrize("when", ["running", "starting"])
def test_a_sigstopped_subsystem_is_caught_by_the_watchdog_within_its_bound(when: str) -> None:
    """Running: an emergency, ``hung: no heartbeat for N s`` (exit 2). Waiting for its
    turn to start (``--debug engine`` never attached holds the start): a start
    failure (exit 1). Either way the stopped process is SIGKILLed and gone."""
    args = ["--headless"] if when == "running" else ["--headless", "--debug", "engine"]
    with Instance(args, defs=FAST) as inst, tapped(inst) as tap:
        if when == "running":
            inst.wait_running()
        else:
            wait_for(
                lambda: sub_state(inst, "session")["heartbeat_age_s"] is not None,
                10,
                "session connected, waiting for its turn",
            )
        pids = pids_of(inst)
        victim = inst.pid_of("session")
        t0 = time.monotonic()
        os.kill(victim, signal.SIGSTOP)
        wait_for(lambda: state_of(victim) == "T", 2, "the victim stopped", every=0.001)
        if when == "running":
            body = tap.wait_topic("lifecycle.ON_EMERGENCY_EXIT", WATCHDOG_S + 5)
        else:
            body = tap.wait_topic("subsystem.session.failed", WATCHDOG_S + 5)
        caught = time.monotonic() - t0
        assert caught < WATCHDOG_S + WATCHDOG_SLACK_S, caught
        assert body["reason"].startswith("hung: no heartbeat for "), body
        silent = float(body["reason"].split()[-2])
        assert WATCHDOG_S <= silent < WATCHDOG_S + WATCHDOG_SLACK_S, body
        gone = wait_gone([victim], 3)  # SIGKILLed while stopped
        assert not alive(victim) and gone < 3
        code = inst.wait(20)
        if when == "running":
            assert code == EXIT_EMERGENCY, inst.output()
            assert (body["subsystem"], body["exit_code"], body["signal"]) == ("session", None, None)
        else:
            assert code == EXIT_ERROR, inst.output()
            assert "lifecycle.ON_EMERGENCY_EXIT" not in tap.topics()
        assert_clean(inst, pids)


# -- two `up` at once -----------------------------------------------------------------------


def test_two_ups_at_the_same_moment_on_one_runtime_directory_one_runs_the_other_exits_73():
    rd = unique_runtime_dir()
    first = Instance(["--headless"], rd=rd)
    second = Instance(["--headless"], rd=rd)
    second.out_path = rd.path.with_name(rd.path.name + ".second.out")
    try:
        first.start()
        second.start()

        def exited() -> Instance | None:
            return next((i for i in (first, second) if i.proc and i.proc.poll() is not None), None)

        loser = wait_for(exited, 20, "one of the two to exit")
        winner = second if loser is first else first
        assert loser.wait() == EXIT_INSTANCE_RUNNING, loser.output()
        assert "already running" in loser.output()
        st = winner.wait_running()
        assert st["phase"] == "running" and winner.request("session", "ping")["pong"] is True
        pids = pids_of(winner)
        winner.request("appstate", "stop")
        assert winner.wait(20) == EXIT_OK
        assert "removed what a dead instance left behind" not in winner.output()
        wait_gone(pids)
        assert list(rd.path.iterdir()) == []
    finally:
        first.close()
        second.close()


# -- stale files of a dead instance --------------------------------------------------------


def test_stale_files_of_a_dead_instance_are_swept_and_only_they():
    """What a dead instance can leave (sockets incl. svc-/ring-, both pid files, the lock,
    the temp area), its pid file naming a live process (pid reuse: the lock decides,
    not the pid), and files that are not the instance's (kept)."""
    rd = unique_runtime_dir()
    made = []
    for name in ("control", "events", "publish", "svc-session", "ring-viewer.frames"):
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(rd.path / name))
        s.close()
        made.append(name)
    (rd.path / "appstate.pid").write_text(f"{os.getpid()}\n")  # a live process, not ours
    (rd.path / ".appstate.pid.tmp").write_text("123")
    (rd.path / "lock").touch(mode=0o600)
    rd.temp_dir.mkdir(mode=0o700)
    (rd.temp_dir / "render-1.part").write_bytes(b"x" * 100)
    (rd.path / "notes.txt").write_text("the user's own")
    (rd.path / "svc-not-a-socket").write_text("a regular file: not ours to remove")
    with Instance(["--headless"], rd=rd) as inst:
        inst.wait_running()
        assert inst.status()["pid"] == inst.proc.pid != os.getpid()  # type: ignore[union-attr]
        assert not (rd.temp_dir / "render-1.part").exists()
        pids = pids_of(inst)
        inst.request("appstate", "stop")
        assert inst.wait(20) == EXIT_OK, inst.output()
        assert "removed what a dead instance left behind" in inst.output()
        wait_gone(pids)
    assert sorted(p.name for p in rd.path.iterdir()) == ["notes.txt", "svc-not-a-socket"]
    for p in rd.path.iterdir():
        p.unlink()


# -- runtime directories others can access ---------------------------------------------------


def _unsafe(kind: str) -> tuple[list[str], dict[str, str], Path, str]:
    """args, env, the directory that must stay untouched, and the message, for one kind."""
    rd = unique_runtime_dir()
    where = ["--instance", rd.instance, "--runtime-dir", str(rd.path)]
    if kind == "group-readable":
        rd.path.chmod(0o750)
        return where, {}, rd.path, "accessible by group or others (mode 0750)"
    if kind == "others-searchable":
        rd.path.chmod(0o701)
        return where, {}, rd.path, "accessible by group or others (mode 0701)"
    if kind == "symlink":
        link = rd.path.with_name(rd.path.name + ".link")
        link.symlink_to(rd.path)
        return ["--instance", rd.instance, "--runtime-dir", str(link)], {}, rd.path, "symlink"
    if kind == "owned-by-another-user":
        if os.geteuid() != 0:
            pytest.skip("only root can give a directory to another user")
        os.chown(rd.path, 65534, 65534)
        return where, {}, rd.path, "is owned by uid 65534, not us"
    assert kind == "default-parent-open"  # $XDG_RUNTIME_DIR/lumiera, made 0755 by someone
    parent = rd.path / "lumiera"
    parent.mkdir(mode=0o755)
    parent.chmod(0o755)
    env = {"XDG_RUNTIME_DIR": str(rd.path)}
    return ["--instance", rd.instance], env, parent, "accessible by group or others (mode 0755)"


@pytest.mark.parametrize(
    "kind",
    [
        "group-readable",
        "others-searchable",
        "symlink",
        "owned-by-another-user",
        "default-parent-open",
    ],
)
def test_a_runtime_directory_others_can_reach_is_refused_with_exit_1(kind: str) -> None:
    args, env, untouched, message = _unsafe(kind)
    before = sorted(p.name for p in untouched.iterdir())
    result = subprocess.run(
        [sys.executable, "-m", "lumiera", "up", "--headless", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == EXIT_ERROR, result.stderr
    assert message in result.stderr, result.stderr
    assert sorted(p.name for p in untouched.iterdir()) == before  # nothing written
    if kind == "owned-by-another-user":
        os.chown(untouched, os.getuid(), os.getgid())
    if kind == "symlink":
        untouched.with_name(untouched.name + ".link").unlink()


# -- a wall-clock jump --------------------------------------------------------------------

LUMIERA = Path(runtime_dir.__file__).parent
WALL_CLOCK = {("time", "time"), ("time", "time_ns"), ("datetime", "now"), ("datetime", "utcnow")}
# Every read of the wall clock in the package, and why it is no deadline: a label only.
WALL_CLOCK_LABELS = {
    ("actors/actor.py", "on_ping"): "the ping reply's ts",
    ("appstate/commands.py", "on_ping"): "the ping reply's ts",
    ("bus/event_codec.py", "encode_event"): "an event's ts",
    ("bus/recording.py", "header"): "a recording's started",
    ("shm/creation.py", "create"): "a ring header's creation time",
    ("steam/journal.py", "_create"): "the journal's created row",
    ("steam/journal.py", "append"): "a journal row's ts",
    ("vault/mediacache.py", "_get"): "a cached file's atime (LRU order)",
    ("vault/mediacache.py", "_touch"): "a cached file's atime (LRU order)",
    ("cli/farm.py", "serve"): "the farm state file's started",
}


def wall_clock_reads() -> dict[tuple[str, str], int]:
    """(file, function) -> how many wall-clock reads (time.time(), datetime.now(), …) it has."""
    found: dict[tuple[str, str], int] = {}
    for path in sorted(LUMIERA.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        rel = str(path.relative_to(LUMIERA))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                f = node.func if isinstance(node, ast.Call) else None
                if (
                    isinstance(f, ast.Attribute)
                    and isinstance(f.value, ast.Name)
                    and (f.value.id, f.attr) in WALL_CLOCK
                ):
                    found[(rel, func.name)] = found.get((rel, func.name), 0) + 1
        for node in ast.walk(tree):  # `from time import time` would hide a read from the above
            if isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
                names = {a.name for a in node.names}
                assert not names & {"time", "time_ns", "datetime"}, f"{rel}: from {node.module}"
    return found


def test_no_deadline_reads_the_wall_clock_every_read_of_it_is_a_label():
    """Static: every ``time.time()``/``time_ns()``/``datetime.now()`` in lumiera/ is a
    known label, never a deadline (timeouts use ``time.monotonic``); a new one fails
    here until it is reviewed and listed. (A read in a nested function counts for
    every enclosing one too.) Not seen: a wall-clock time reached another way
    (``os.stat`` times compared to a deadline, a C library's clock)."""
    reads = wall_clock_reads()
    unknown = set(reads) - set(WALL_CLOCK_LABELS)
    assert unknown == set(), f"wall-clock reads to review (a deadline must be monotonic): {unknown}"
    assert set(WALL_CLOCK_LABELS) - set(reads) == set()  # the list is kept current


JUMPER = """
import os, time
_real, _real_ns = time.time, time.time_ns
_t0 = float(os.environ["LUMIERA_TEST_CLOCK_T0"])
def _offset():
    t = time.clock_gettime(time.CLOCK_REALTIME)
    return 0.0 if t < _t0 + 0.5 else 3600.0 if t < _t0 + 1.5 else -3600.0
time.time = lambda: _real() + _offset()
time.time_ns = lambda: _real_ns() + int(_offset() * 1e9)
"""


def test_a_wall_clock_jump_forward_and_back_disturbs_no_timeout(tmp_path: Path) -> None:
    """Live, as far as Python goes: every process of the instance (a ``sitecustomize``)
    sees ``time.time()`` jump an hour forward 0.5 s after the start and an hour back
    (two hours' jump) a second later. A wall-clock deadline would fire at the first
    (an emergency, a barrier timeout) or never after the second (the watchdog). Not
    covered: clocks read in C (libzmq's timers are monotonic; the real system clock
    is not changed on a shared machine)."""
    (tmp_path / "sitecustomize.py").write_text(JUMPER)
    env = {
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "LUMIERA_TEST_CLOCK_T0": repr(time.clock_gettime(time.CLOCK_REALTIME)),
    }
    t0 = time.monotonic()
    with Instance(["--headless"], defs=FAST, env=env) as inst, tapped(inst) as tap:
        inst.wait_running()
        time.sleep(max(0.0, 0.7 - (time.monotonic() - t0)))
        ahead = inst.request("session", "ping")["ts"] - time.time()
        assert 3500 < ahead < 3700, ahead  # the subsystem's clock did jump forward
        time.sleep(max(0.0, 1.5 + WATCHDOG_S - (time.monotonic() - t0)))  # past both jumps
        st = inst.status()
        assert st["phase"] == "running" and st["errors"] == [] and st["emergency"] is None
        assert all(s["state"] == "running" for s in st["subsystems"])
        behind = inst.request("session", "ping")["ts"] - time.time()
        assert -3700 < behind < -3500, behind  # and back
        pids = pids_of(inst)
        victim = inst.pid_of("player")
        os.kill(victim, signal.SIGSTOP)  # after the backward jump the watchdog must still bite
        body = tap.wait_topic("lifecycle.ON_EMERGENCY_EXIT", WATCHDOG_S + 5)
        assert body["subsystem"] == "player" and body["reason"].startswith("hung"), body
        assert inst.wait(20) == EXIT_EMERGENCY
        assert "appstate.problem" not in tap.topics()
        assert_clean(inst, pids)
