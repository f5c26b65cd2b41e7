"""``lumiera tap --record`` and ``lumiera replay`` with real processes (docs/RECORDING.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from lumiera.bus import recording
from lumiera.steam.core import SessionCore
from lumiera.testing import CREATED_INSTANCES, Instance, wait_for
from lumiera.testing import run_cli as lumiera
from tests.support import own_instance_cli, own_instance_signalled

pytestmark = pytest.mark.integration

TAP = [sys.executable, "-m", "lumiera", "tap"]

EDITS: list[tuple[str, dict[str, Any]]] = [
    ("add_track", {"name": "V1"}),
    ("add_track", {"name": "V2", "command_id": "mine-2"}),
    ("add_track", {"name": "A1", "kind": "audio", "index": 0}),
    ("set_output", {"width": 640, "height": 360}),
    ("remove_track", {"id": "t2"}),
    ("undo", {}),
    ("redo", {}),
]


def rd_args(inst: Instance) -> list[str]:
    return ["--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)]


class Recorder:
    """A ``lumiera tap --record`` process on ``inst``, its recording in place once started."""

    def __init__(self, inst: Instance, path: Path) -> None:
        self.path = path
        self.out = path.with_suffix(".out")
        with self.out.open("w") as out:
            self.proc = subprocess.Popen(
                [*TAP, "--json", "--record", str(path), *rd_args(inst)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.marker = recording.marker_path(inst.rd, self.proc.pid)
        wait_for(lambda: self.marker.exists() or self.proc.poll() is not None, 15, "the marker")
        assert self.proc.poll() is None, self.out.read_text()

    def wait(self) -> int:
        return self.proc.wait(timeout=15)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A session edited through the bus while recorded: (the session file, the recording)."""
    session, rec_path = tmp_path / "a.lum", tmp_path / "a.rec"
    with Instance(["--headless", str(session)]) as inst:
        inst.wait_running()
        rec = Recorder(inst, rec_path)
        try:
            for command, args in EDITS:
                inst.request("session", command, args)
            assert lumiera("stop", *rd_args(inst)).returncode == 0
            assert inst.wait() == 0
            assert rec.wait() == 0  # it ends with the instance
        finally:
            rec.close()
        assert not rec.marker.exists()
    yield session, rec_path


def state_of(session: Path) -> dict[str, Any]:
    core = SessionCore(session)
    try:
        return {**core.session.to_data(), "history": core.history()}
    finally:
        core.close()


def replay(rec_path: Path, into: Path) -> subprocess.CompletedProcess[str]:
    return own_instance_cli("replay", str(rec_path), "--into", str(into))


def test_a_recorded_session_replays_into_a_new_one_identically(recorded, tmp_path):
    session, rec_path = recorded
    rec = recording.read_recording(rec_path)
    assert rec.complete and rec.header["session_revision"] == 0
    assert [r.body["command"] for r in rec.of_kind("request")] == [c for c, _ in EDITS]
    assert rec.of_kind("request")[1].body["id"] == "mine-2"
    assert rec.of_kind("reply")[-1].body["result"]["revision"] == len(EDITS)
    topics = {r.topic for r in rec.of_kind("event")}
    assert {"session.changed", "appstate.phase", "lifecycle.ON_GLOBAL_SHUTDOWN"} <= topics
    offsets = [r.t for r in rec.records]
    assert offsets == sorted(offsets)

    out = replay(rec_path, tmp_path / "b.lum")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"replayed {len(EDITS)} commands" in out.stdout and "identical" in out.stdout
    assert state_of(tmp_path / "b.lum") == state_of(session)


def test_a_tampered_command_is_reported_as_the_first_difference(recorded, tmp_path):
    _, rec_path = recorded
    objects = list(msgpack.Unpacker(open(rec_path, "rb"), raw=False))  # noqa: SIM115
    requests = [o for o in objects[1:] if o.get("kind") == "request"]
    requests[2]["body"]["args"]["name"] = "tampered"  # the third command, add_track A1
    tampered = tmp_path / "tampered.rec"
    tampered.write_bytes(b"".join(msgpack.packb(o) for o in objects))

    out = replay(tampered, tmp_path / "c.lum")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "command 3 of 7 (add_track" in out.stdout
    assert 'applied.name: recorded "A1", replayed "tampered"' in out.stdout


def test_a_replay_refuses_an_existing_session_and_a_bad_recording(recorded, tmp_path):
    session, rec_path = recorded
    before = session.read_bytes()
    out = lumiera("replay", str(rec_path), "--into", str(session))
    assert out.returncode == 64 and "exists" in out.stderr
    assert session.read_bytes() == before
    cut = tmp_path / "cut.rec"
    cut.write_bytes(rec_path.read_bytes()[:-5])
    out = lumiera("replay", str(cut), "--into", str(tmp_path / "d.lum"))
    assert out.returncode == 64 and "truncated" in out.stderr and "Traceback" not in out.stderr
    out = lumiera("replay", str(session), "--into", str(tmp_path / "d.lum"))
    assert out.returncode == 64 and "not a lumiera recording" in out.stderr
    assert not (tmp_path / "d.lum").exists()


def test_an_emergency_report_names_the_running_recording(tmp_path):
    rec_path = tmp_path / "crash.rec"
    with Instance(["--headless"]) as inst:
        inst.wait_running()
        rec = Recorder(inst, rec_path)
        try:
            inst.request("session", "add_track", {"name": "V1"})
            os.kill(inst.pid_of("session"), signal.SIGKILL)
            assert inst.wait() == 2
            assert rec.wait() == 0
        finally:
            rec.close()
        assert f"emergency while the bus was being recorded to {rec_path}" in inst.output()
    topics = [r.topic for r in recording.read_recording(rec_path).of_kind("event")]
    assert "lifecycle.ON_EMERGENCY_EXIT" in topics


def test_a_replay_whose_instance_cannot_start_says_so_with_the_instances_output(recorded):
    _, rec_path = recorded
    out = replay(rec_path, Path("/proc/self/replayed.lum"))  # no file can be made there
    assert out.returncode == 1, out.stdout + out.stderr
    assert "the replay's instance did not start" in out.stderr
    assert "cannot open session file /proc/self/replayed.lum" in out.stderr  # its log
    assert "Traceback" not in out.stderr.split("appstate|")[-1]


def test_a_replay_stopped_by_sigterm_exits_143_and_leaves_nothing(recorded, tmp_path):
    _, rec_path = recorded
    into = tmp_path / "stopped.lum"
    code, err, left = own_instance_signalled(
        "replay",
        [str(rec_path), "--into", str(into)],
        signal.SIGTERM,
        lambda rd: (rd.path / "appstate.pid").exists(),
    )
    assert code == 128 + signal.SIGTERM, err
    assert "interrupted" in err
    assert left == []  # the supervisor's end removed what it made


def test_a_recorder_outliving_its_instance_leaves_no_default_runtime_directory(tmp_path):
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(xdg)}
    name = f"outlived{os.getpid()}"
    CREATED_INSTANCES.append(name)  # for the shm leak check
    where = xdg / "lumiera" / name  # the default location: its supervisor removes it at its end
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    up = subprocess.Popen(
        [sys.executable, "-m", "lumiera", "up", "--headless", "--instance", name], env=env, **quiet
    )
    recorder = None
    try:
        wait_for((where / "appstate.pid").exists, 30, "the instance")
        recorder = subprocess.Popen(
            [*TAP, "--record", str(tmp_path / "r.rec"), "--instance", name], env=env, **quiet
        )
        wait_for(lambda: list(where.glob("recording-*")), 30, "the recorder's marker")
        os.kill(recorder.pid, signal.SIGSTOP)  # a slow recorder: it ends after its instance
        stop = [sys.executable, "-m", "lumiera", "stop", "--instance", name]
        assert subprocess.run(stop, check=False, env=env, timeout=30, **quiet).returncode == 0
        assert up.wait(timeout=30) == 0
        assert [p.name for p in where.iterdir()] == [m.name for m in where.glob("recording-*")]
        os.kill(recorder.pid, signal.SIGCONT)
        assert recorder.wait(timeout=30) == 0
    finally:
        for proc in (up, recorder):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert not where.exists()  # the recorder removed its marker, then the empty directory
