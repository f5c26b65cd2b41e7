"""`lumiera up --debug X` with `lumiera run X`, and the script runner, with real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from lumiera.testing import Instance, run_cli, wait_for

pytestmark = pytest.mark.integration


def states(inst: Instance) -> dict[str, str]:
    return {s["name"]: s["state"] for s in inst.status()["subsystems"]}


def run_attached(inst: Instance, name: str) -> subprocess.Popen[str]:
    where = ["--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)]
    return subprocess.Popen(
        [sys.executable, "-m", "lumiera", "run", name, *where],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_debug_leaves_one_subsystem_to_lumiera_run_and_waits_for_it_to_attach_again():
    with Instance(["--headless", "--debug", "session"]) as inst:
        inst.wait_up()
        expected = {"engine": "running", "session": "waiting", "player": "starting"}
        wait_for(lambda: states(inst) == expected, 10, "engine up, session waiting")
        assert inst.status()["phase"] == "starting"  # player depends on session: it waits

        attached = run_attached(inst, "session")
        try:
            inst.wait_running()
            assert inst.request("session", "ping")["pid"] == attached.pid
            assert inst.request("session", "describe")["attached"] is True

            attached.send_signal(signal.SIGINT)  # the developer ends the debug session
            assert attached.wait(timeout=10) == 0
            wait_for(lambda: states(inst)["session"] == "waiting", 10, "session waiting again")
            assert inst.status()["phase"] == "running"  # the rest keeps running
            assert states(inst)["player"] == "running"
            with pytest.raises(Exception, match="session is waiting"):
                inst.request("session", "ping")

            again = run_attached(inst, "session")
            wait_for(lambda: states(inst)["session"] == "running", 10, "session attached again")
            assert inst.request("session", "ping")["pid"] == again.pid
            stop = run_cli(
                "stop",
                "--instance",
                inst.rd.instance,
                "--runtime-dir",
                str(inst.rd.path),
            )
            assert stop.returncode == 0, stop.stderr
            assert again.wait(timeout=10) == 0
            assert inst.wait() == 0
        finally:
            for p in (attached, locals().get("again")):
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait()
                if p is not None and p.stdout is not None:
                    p.stdout.close()


def test_lumiera_run_is_refused_for_a_subsystem_not_under_debug():
    with Instance(["--headless"]) as inst:
        inst.wait_running()
        attached = run_attached(inst, "engine")
        out, _ = attached.communicate(timeout=10)
        assert attached.returncode == 1
        assert "not waiting for `lumiera run`" in out
        assert states(inst)["engine"] == "running"


def test_a_script_runs_after_the_session_is_ready_and_its_end_ends_the_application(tmp_path):
    marker = tmp_path / "ran"
    script = tmp_path / "ok.py"
    script.write_text(f"open({str(marker)!r}, 'w').write('yes')\n")
    with Instance(["--headless", "--script", str(script)]) as inst:
        assert inst.wait() == 0
        assert marker.read_text() == "yes"
        assert "ON_EMERGENCY_EXIT" not in inst.output()


def test_a_script_that_raises_ends_the_application_as_an_error_not_an_emergency(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("raise ValueError('the user made a mistake')\n")
    with Instance(["--headless", "--script", str(script)]) as inst:
        assert inst.wait() == 1
        out = inst.output()
        assert "Traceback" in out and "ValueError: the user made a mistake" in out
        assert "emergency" not in out.lower()


def test_a_request_to_a_subsystem_still_starting_waits_for_it_then_is_answered():
    with Instance(["--headless", "--debug", "session"]) as inst:
        inst.wait_up()
        wait_for(lambda: states(inst).get("player") == "starting", 10, "player starting")
        answers: list[object] = []

        def ask() -> None:
            with inst.client(timeout=15) as c:
                try:
                    answers.append(c.request("player", "ping"))
                except Exception as e:  # noqa: BLE001 - recorded, asserted below
                    answers.append(e)

        asker = threading.Thread(target=ask)
        asker.start()
        try:
            time.sleep(0.5)
            assert answers == []  # held: the player cannot run before the session
            attached = run_attached(inst, "session")
            try:
                asker.join(timeout=15)
                assert len(answers) == 1 and isinstance(answers[0], dict), answers
                assert answers[0]["pong"] is True and answers[0]["name"] == "player"
                assert (
                    run_cli(
                        "stop", "--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)
                    ).returncode
                    == 0
                )
                assert attached.wait(timeout=10) == 0
            finally:
                if attached.poll() is None:
                    attached.kill()
                    attached.wait()
                if attached.stdout is not None:
                    attached.stdout.close()
        finally:
            asker.join(timeout=20)
