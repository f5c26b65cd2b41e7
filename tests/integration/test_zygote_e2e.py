"""Subsystems forked by the zygote (``[appstate] spawn = fork``, the default) and exec'd
(``spawn = exec``): both are the supervisor's children, named as exec names them."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from lumiera.testing import Instance, unique_runtime_dir, wait_for

pytestmark = pytest.mark.integration

CORE = ("engine", "session", "player")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()


def zygotes_of(supervisor: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if parent_of(int(entry.name)) == supervisor and "zygote" in cmdline(
                    int(entry.name)
                ):
                    found.append(int(entry.name))
            except (OSError, IndexError):
                continue
    return found


@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_subsystems_are_the_supervisors_children_named_as_exec_names_them(spawn):
    with Instance(["--headless"], defs=[f"appstate.spawn={spawn}"]) as inst:
        inst.wait_running()
        assert inst.proc is not None
        supervisor = inst.proc.pid
        for name in CORE:
            pid = inst.pid_of(name)
            assert parent_of(pid) == supervisor
            assert f"-m lumiera.actors {name} {inst.rd.path} {inst.rd.instance}" in cmdline(pid)
        assert len(zygotes_of(supervisor)) == (1 if spawn == "fork" else 0)
        assert inst.request("session", "add_track", {"name": "V1"})["applied"]["name"] == "V1"
        inst.request("appstate", "stop")
        assert inst.wait(20) == 0
        out = inst.output()
    assert "started with exec instead" not in out
    assert "session | INFO lumiera.session:" in out  # a forked one's output reaches us too


def test_a_forked_subsystem_killed_is_an_emergency_like_any_other():
    with Instance(["--headless"]) as inst:
        inst.wait_running()
        os.kill(inst.pid_of("engine"), signal.SIGKILL)
        assert inst.wait(20) == 2
        out = inst.output()
    assert "engine ended: killed by SIGKILL" in out


def test_a_sigkilled_supervisor_takes_its_zygote_and_forked_children_along():
    rd = unique_runtime_dir()
    with Instance(["--headless"], rd=rd) as inst:
        inst.wait_running()
        assert inst.proc is not None
        supervisor = inst.proc.pid
        pids = [inst.pid_of(n) for n in CORE] + zygotes_of(supervisor)
        assert len(pids) == 4
        os.kill(supervisor, signal.SIGKILL)
        inst.wait(10)

        def all_gone() -> bool:
            return not any(Path(f"/proc/{p}").exists() and _running(p) for p in pids)

        wait_for(all_gone, 10, "the zygote and the subsystems gone")
    with Instance(["--headless"], rd=rd) as again:  # cleans up what the killed one left
        again.wait_running()
        again.request("appstate", "stop")
        assert again.wait(20) == 0


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
