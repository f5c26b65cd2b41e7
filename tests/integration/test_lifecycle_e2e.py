"""`lumiera up` with real processes: start, status, orderly and emergency ends."""

from __future__ import annotations

import json
import os
import signal

import pytest

from lumiera import shm
from lumiera.testing import Instance, Tap, leftovers, wait_for
from lumiera.testing import run_cli as lumiera

pytestmark = pytest.mark.integration

FAST = ["appstate.heartbeat_interval=0.05", "appstate.watchdog_timeout=0.6"]


def rd_args(inst: Instance) -> list[str]:
    return ["--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)]


def gone(pids: list[int]) -> bool:
    return not [p for p in pids if os.path.exists(f"/proc/{p}") and _state(p) != "Z"]


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_headless_start_runs_the_core_and_status_reports_every_subsystem():
    with Instance(["--headless"]) as inst:
        st = inst.wait_running()
        assert st["instance"] == inst.rd.instance
        assert st["phase"] == "running"
        assert [s["name"] for s in st["subsystems"]] == ["engine", "session", "player"]
        assert all(s["state"] == "running" and s["pid"] for s in st["subsystems"])
        out = lumiera("status", "--json", *rd_args(inst))
        assert out.returncode == 0, out.stderr
        as_json = json.loads(out.stdout)
        assert {"instance", "pid", "phase", "subsystems"} <= set(as_json)
        assert as_json["pid"] == inst.proc.pid  # type: ignore[union-attr]
        for sub in as_json["subsystems"]:
            assert {"name", "pid", "state"} <= set(sub)
        files = sorted(p.name for p in inst.rd.path.iterdir())
        assert {"control", "events", "publish", "appstate.pid", "lock"} <= set(files)
        assert oct(inst.rd.path.stat().st_mode & 0o777) == "0o700"
        assert all(oct((inst.rd.path / n).stat().st_mode & 0o077) == "0o0" for n in files)
        stop = lumiera("stop", *rd_args(inst))
        assert stop.returncode == 0, stop.stderr
        assert inst.wait() == 0
        assert leftovers(inst.rd) == []


def test_each_subsystem_answers_ping_and_describe_through_the_supervisor():
    with Instance(["--headless"]) as inst:
        st = inst.wait_running()
        for sub in st["subsystems"]:
            pong = inst.request(sub["name"], "ping")
            assert pong["pong"] is True and pong["pid"] == sub["pid"]
            desc = inst.request(sub["name"], "describe")
            assert desc["name"] == sub["name"] and "ping" in desc["commands"]
            # says plainly whether its real work is built yet (gui and netnode: not yet)
            assert desc["built"] is (sub["name"] in ("session", "engine", "player", "script"))


def test_sigterm_gives_ordered_events_stops_dependents_first_and_exits_0():
    with Instance(["--headless"]) as inst:
        inst.wait_running()
        tap = Tap(inst.rd, ["lifecycle.", "subsystem."])
        try:
            wait_for(lambda: tap.poll(0.05) or inst.request("appstate", "ping"), 5, "tap")
            inst.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            assert inst.wait() == 0
            tap.poll(0.3)
        finally:
            tap.close()
        lifecycle = tap.topics("lifecycle.")
        assert lifecycle == [
            "lifecycle.ON_SESSION_CLOSE",
            "lifecycle.ON_SESSION_END",
            "lifecycle.ON_GLOBAL_SHUTDOWN",
        ]
        stopped = [t.split(".")[1] for t in tap.topics("subsystem.") if t.endswith(".stopped")]
        assert stopped == ["player", "session", "engine"]  # reverse dependency order
        assert leftovers(inst.rd) == []


@pytest.mark.parametrize("victim", ["engine", "session", "player"])
def test_sigkill_of_a_subsystem_is_an_emergency_that_leaves_nothing_behind(victim):
    with Instance(["--headless"]) as inst:
        st = inst.wait_running()
        pids = [s["pid"] for s in st["subsystems"]] + [inst.proc.pid]  # type: ignore[union-attr]
        shm_before = shm.list_segments(inst.rd.instance)
        tap = Tap(inst.rd, ["lifecycle."])
        try:
            wait_for(lambda: inst.request("appstate", "ping"), 5, "ping")
            tap.poll(0.1)
            os.kill(inst.pid_of(victim), signal.SIGKILL)
            body = tap.wait_topic("lifecycle.ON_EMERGENCY_EXIT", 5)
            assert inst.wait() == 2
            tap.poll(0.2)
        finally:
            tap.close()
        assert body["subsystem"] == victim
        assert body["signal"] == signal.SIGKILL and body["exit_code"] is None
        assert "SIGKILL" in body["reason"]
        assert "lifecycle.ON_GLOBAL_SHUTDOWN" not in tap.topics()
        wait_for(lambda: gone(pids), 5, "all processes gone")
        assert leftovers(inst.rd) == [] and shm_before == []
        assert list(inst.rd.path.iterdir()) == []


def test_a_hung_subsystem_is_caught_by_its_watchdog():
    with Instance(["--headless"], defs=FAST) as inst:
        inst.wait_running()
        pid = inst.pid_of("session")
        tap = Tap(inst.rd, ["lifecycle."])
        try:
            wait_for(lambda: inst.request("appstate", "ping"), 5, "ping")
            os.kill(pid, signal.SIGSTOP)
            body = tap.wait_topic("lifecycle.ON_EMERGENCY_EXIT", 10)
        finally:
            tap.close()
        assert body["subsystem"] == "session"
        assert body["reason"].startswith("hung")
        assert inst.wait() == 2
        assert leftovers(inst.rd) == []


def test_an_exception_in_a_handler_is_answered_then_reported_as_an_emergency():
    with Instance(["--headless"], defs=["debug.faults=yes"]) as inst:
        inst.wait_running()
        with pytest.raises(Exception, match="RuntimeError: fault injected") as err:
            inst.request("player", "fault", {"kind": "raise"})
        assert getattr(err.value, "code", None) == "internal"
        assert inst.wait() == 2
        out = inst.output()
        assert "Traceback" in out and "player" in out


def test_a_subsystem_that_cannot_start_in_time_stops_the_rest_in_order_with_exit_1():
    with Instance(["--headless"], defs=["appstate.start_timeout=0.01"]) as inst:
        assert inst.wait() == 1
        out = inst.output()
        assert "failed to start" in out
        assert "ON_EMERGENCY_EXIT" not in out
        assert leftovers(inst.rd) == []


def test_a_regular_end_of_a_subsystem_shuts_down_in_order_with_exit_0():
    with Instance([], defs=["debug.faults=yes"]) as inst:  # default: the gui and the core
        st = inst.wait_running()
        assert [s["name"] for s in st["subsystems"]] == ["session", "engine", "player", "gui"]
        assert inst.request("gui", "close") == {"closing": True}
        assert inst.wait() == 0


def test_a_regular_end_with_an_error_exits_1_without_emergency():
    with Instance(["--headless"], defs=["debug.faults=yes"]) as inst:
        inst.wait_running()
        inst.request("player", "fault", {"kind": "end_error"})
        assert inst.wait() == 1
        assert "ON_EMERGENCY_EXIT" not in inst.output()


def test_subsystem_output_is_shown_with_its_name_logged_to_a_file_and_published():
    with Instance(["--headless"]) as inst:
        inst.wait_running()
        tap = Tap(inst.rd, ["log.engine"])
        try:
            wait_for(lambda: inst.request("appstate", "ping"), 5, "ping")
            tap.poll(0.2)
            assert lumiera("stop", *rd_args(inst)).returncode == 0
            assert inst.wait() == 0
            body = tap.wait_topic("log.engine", 5)
        finally:
            tap.close()
        assert body["sender"] == "engine" and "stopping" in body["line"]
        assert "engine  | INFO lumiera.actors: engine: stopping" in inst.output()
        logged = (inst.log_dir / "engine.log").read_text()
        assert "stderr INFO lumiera.actors: engine: stopping (shutdown)" in logged


def test_an_emergency_where_a_survivor_must_be_killed_exits_3():
    defs = ["appstate.emergency_timeout=0.5", *FAST]
    with Instance(["--headless"], defs=defs) as inst:
        st = inst.wait_running()
        pids = {s["name"]: s["pid"] for s in st["subsystems"]}
        os.kill(pids["player"], signal.SIGSTOP)  # a survivor that cannot answer stop
        os.kill(pids["engine"], signal.SIGKILL)
        assert inst.wait() == 3
        wait_for(lambda: gone(list(pids.values())), 5, "all processes gone")
        assert "killing player" in inst.output()
        assert leftovers(inst.rd) == []


def test_sighup_from_a_closed_terminal_shuts_down_in_order():
    with Instance(["--headless"]) as inst:
        inst.wait_running()
        inst.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        assert inst.wait() == 0
        assert "SIGHUP: shutting down in order" in inst.output()


def test_an_unwritable_log_directory_is_reported_and_the_instance_runs_on(tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the log directory should be")
    with Instance(["--headless"], defs=[f"log.dir={blocked}/logs"]) as inst:
        inst.wait_running()
        assert inst.request("engine", "ping")["pong"] is True
        assert lumiera("stop", *rd_args(inst)).returncode == 0
        assert inst.wait() == 0
        assert "no log files: cannot create" in inst.output()
