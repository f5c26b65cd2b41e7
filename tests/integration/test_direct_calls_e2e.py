"""Direct service calls: each subsystem's own ROUTER (``svc-<name>``), PROTOCOL.md 8.1.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from lumiera.bus import messages as m
from lumiera.bus.client import ControlClient
from lumiera.errors import UnknownCommand, Unreachable
from lumiera.runtime_dir import service_name
from lumiera.testing import Instance, run_cli
from lumiera.testing.wait import wait_for

pytestmark = pytest.mark.integration


def _svc(inst: Instance, name: str) -> bool:
    return inst.rd.socket(service_name(name)).is_socket()


def _states(inst: Instance) -> dict[str, str]:
    return {s["name"]: s["state"] for s in inst.status()["subsystems"]}


def test_the_same_request_gives_the_same_reply_directly_and_routed():
    with Instance(["--headless"]) as inst:
        inst.wait_running()
        assert all(_svc(inst, n) for n in ("engine", "session", "player"))
        with (
            ControlClient(inst.rd, 5.0, direct=True) as direct,
            ControlClient(inst.rd, 5.0) as routed,
        ):
            for name in ("engine", "session", "player"):
                a, b = direct.request(name, "describe"), routed.request(name, "describe")
                assert "uptime_s" in a and "uptime_s" in b
                a.pop("uptime_s"), b.pop("uptime_s")
                assert a == b
            assert "session" in direct._direct  # it did go direct
            assert direct.request("session", "timeline") == routed.request("session", "timeline")
            for client in (direct, routed):  # the same typed error, the same message
                with pytest.raises(UnknownCommand, match="session has no command 'nope'"):
                    client.request("session", "nope")
            assert direct.request("appstate", "ping")["pong"] is True  # always control
        with ControlClient(inst.rd, 5.0, direct=True) as c:  # a bad frame: bad_message, id nil
            c.request("session", "ping")
            c._direct["session"].sock.send_multipart([b"x", b"y", b"z"])
            assert c._direct["session"].sock.poll(2000)
            err = m.decode(c._direct["session"].sock.recv())
            assert isinstance(err, m.Error) and err.code == "bad_message" and err.id is None
        send = run_cli(
            "send", "--direct", "session", "ping", "--instance", inst.rd.instance,
            "--runtime-dir", str(inst.rd.path),
        )  # fmt: skip
        assert send.returncode == 0 and '"pong": true' in send.stdout, send.stderr
    # the leak check (conftest) fails the test if any svc-* file is left


def run_attached(inst: Instance, name: str) -> subprocess.Popen[str]:
    where = ["--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)]
    return subprocess.Popen(
        [sys.executable, "-m", "lumiera", "run", name, *where],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_a_subsystem_restarted_under_debug_is_found_again_by_name_and_a_dead_one_is_unreachable():
    procs: list[subprocess.Popen[str]] = []
    with Instance(["--headless", "--debug", "session"]) as inst:
        inst.wait_up()
        wait_for(lambda: _states(inst).get("session") == "waiting", 10, "session waiting")
        assert not _svc(inst, "session")
        with ControlClient(inst.rd, 5.0, direct=True) as c:
            with pytest.raises(Exception, match="session is waiting"):  # routed: no svc yet
                c.request("session", "ping")
            try:
                procs.append(run_attached(inst, "session"))
                inst.wait_running()
                wait_for(lambda: _svc(inst, "session"), 10, "svc-session bound")
                assert c.request("session", "ping")["pid"] == procs[0].pid
                assert "session" in c._direct

                procs[0].send_signal(signal.SIGINT)  # the developer ends the debug session
                assert procs[0].wait(timeout=10) == 0
                assert not _svc(inst, "session")  # removed by the process itself
                wait_for(lambda: _states(inst)["session"] == "waiting", 10, "waiting again")

                procs.append(run_attached(inst, "session"))
                wait_for(lambda: _states(inst)["session"] == "running", 10, "attached again")
                wait_for(lambda: _svc(inst, "session"), 10, "svc-session bound again")
                assert c.request("session", "ping")["pid"] == procs[1].pid  # found by name
                assert "session" in c._direct

                # A dead subsystem: a request in flight to it ends Unreachable, and soon.
                os.kill(procs[1].pid, signal.SIGSTOP)
                t0 = time.monotonic()
                with pytest.raises(Unreachable):
                    c.request("session", "ping", timeout=0.5)  # stopped: nobody answers
                assert time.monotonic() - t0 < 1.5
                os.kill(procs[1].pid, signal.SIGKILL)
                procs[1].wait(timeout=10)
                # the supervisor removes what the killed one could not
                wait_for(lambda: not _svc(inst, "session"), 5, "svc-session removed")
            finally:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                        p.wait()


def test_a_request_in_flight_to_a_subsystem_that_dies_is_unreachable_before_the_timeout():
    with Instance(["--headless"], defs=["debug.faults=yes"]) as inst:
        inst.wait_running()
        with ControlClient(inst.rd, 5.0, direct=True) as c:
            c.request("engine", "ping")
            t0 = time.monotonic()
            with pytest.raises(Unreachable):  # the engine exits inside the request
                c.request("engine", "fault", {"kind": "exit", "code": 3}, timeout=8.0)
            assert time.monotonic() - t0 < 4.0
        inst.wait(timeout=20)
