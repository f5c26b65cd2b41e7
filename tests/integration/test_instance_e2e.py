"""One instance per runtime directory: the lock, stale files, supervisor death, usage errors."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from lumiera import shm
from lumiera.errors import SubsystemGone
from lumiera.testing import Instance, unique_runtime_dir, wait_for
from lumiera.testing import run_cli as lumiera

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_second_up_on_the_same_instance_is_refused_and_the_first_keeps_running():
    with Instance(["--headless"]) as first:
        first.wait_running()
        second = Instance(["--headless"], rd=first.rd).start()
        assert second.wait(timeout=10) == 73
        assert "already running" in second.output()
        second.close()
        assert first.status()["phase"] == "running"
        assert first.request("session", "ping")["pong"] is True


def test_a_sigkilled_supervisor_takes_its_children_along_and_the_next_up_cleans_up():
    rd = unique_runtime_dir()
    with Instance(["--headless"], rd=rd) as inst:
        st = inst.wait_running()
        children = [s["pid"] for s in st["subsystems"]]
        inst.proc.kill()  # type: ignore[union-attr]
        inst.wait()
        wait_for(lambda: not any(alive(p) for p in children), 5, "children to die with it")
    stale = {p.name for p in rd.path.iterdir()}
    assert {"control", "events", "publish", "appstate.pid", "tmp"} <= stale
    (rd.temp_dir / "intermediate.bin").write_bytes(b"render data")
    segment = Path("/dev/shm") / shm.segment_name(rd.instance, "stale-ring")
    segment.write_bytes(b"\0" * 64)  # what a crashed instance's ring would leave
    with Instance(["--headless"], rd=rd) as again:
        again.wait_running()
        assert not segment.exists()
        assert again.request("engine", "ping")["pong"] is True
        assert (
            lumiera("stop", "--instance", rd.instance, "--runtime-dir", str(rd.path)).returncode
            == 0
        )
        assert again.wait() == 0
        assert "removed what a dead instance left behind" in again.output()
        assert "tmp" in again.output()
        assert list(rd.path.iterdir()) == []


def test_an_unsafe_runtime_directory_is_refused():
    rd = unique_runtime_dir()
    os.chmod(rd.path, 0o755)
    with Instance(["--headless"], rd=rd) as inst:
        assert inst.wait() != 0
        assert "accessible by group or others" in inst.output()
        assert list(rd.path.iterdir()) == []  # refused before anything was written


@pytest.mark.parametrize(
    "args, message",
    [
        (["--def", "appstate.nope=1"], "unknown key appstate.nope"),
        (["--def", "appstate.grace_period=soon"], "appstate.grace_period"),
        (["--def", "nonsense"], "expected SECTION.KEY=VALUE"),
        (["--config", "/nonexistent/setup.ini"], "cannot read configuration file"),
        (["--script", "/nonexistent/script.py"], "no such file"),
        (["--debug", "nosuch"], "no such subsystem"),
        (["--debug", "gui"], "does not start gui"),
        (["--port", "65536", "--join", "tcp://h:1"], "must be 0-65535"),
        (["--port", "0"], "a render node needs a scheduler to join: give --join"),
        (["--join", "127.0.0.1:8786"], "must be a scheduler address tcp://HOST:PORT"),
        (["--def", "netnode.scheduler=h:1"], "must be a scheduler address tcp://HOST:PORT"),
        (
            ["--join", "tcp://h:1", "--def", "netnode.join_timeout=10"],
            "netnode.join_timeout (10) must be less than appstate.start_timeout (10)",
        ),
        (["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_usage_errors_exit_64_before_anything_is_spawned(args, message):
    rd = unique_runtime_dir()
    rd.path.rmdir()
    result = lumiera(
        "up", "--headless", *args, "--instance", rd.instance, "--runtime-dir", str(rd.path)
    )
    assert result.returncode == 64, result.stderr
    assert message in result.stderr
    assert not rd.path.exists()


def test_tools_exit_69_when_no_instance_runs():
    rd = unique_runtime_dir()
    where = ["--instance", rd.instance, "--runtime-dir", str(rd.path)]
    for tool in (["status"], ["send", "session", "ping"], ["stop"], ["tap", "--count", "1"]):
        result = lumiera(*tool, *where)
        assert result.returncode == 69, (tool, result.stderr)
        assert rd.instance in result.stderr and "running" in result.stderr


def test_sigint_shuts_down_in_order():
    with Instance(["--headless"]) as inst:
        inst.wait_running()
        inst.proc.send_signal(signal.SIGINT)  # type: ignore[union-attr]
        assert inst.wait() == 0
        out = inst.output()
        assert "SIGINT: shutting down in order" in out


def test_a_runtime_directory_where_the_bus_cannot_bind_fails_clearly_with_exit_1():
    rd = unique_runtime_dir()
    (rd.path / "control").mkdir()  # something that is not a socket file where one must go
    with Instance(["--headless"], rd=rd) as inst:
        assert inst.wait() == 1
        assert "cannot set up the bus" in inst.output()
        assert sorted(p.name for p in rd.path.iterdir()) == ["control"]  # left as it was
        (rd.path / "control").rmdir()


def test_the_temp_area_is_private_and_removed_with_its_contents_even_after_an_emergency():
    with Instance(["--headless"], defs=["debug.faults=yes"]) as inst:
        inst.wait_running()
        temp = inst.rd.temp_dir
        assert temp.is_dir() and temp.stat().st_mode & 0o777 == 0o700
        (temp / "render-1").mkdir()
        (temp / "render-1" / "part.mkv").write_bytes(b"x" * 4096)
        with pytest.raises(SubsystemGone):
            inst.request("engine", "fault", {"kind": "exit", "code": 9})
        assert inst.wait() == 2  # the emergency exit
    assert not temp.exists()
