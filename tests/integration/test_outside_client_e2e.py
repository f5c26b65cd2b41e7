"""An outside client in another language, written from docs/PROTOCOL.md alone (issue 16).

``tests/outside/node/client.mjs`` (Node.js, ``zeromq`` and ``@msgpack/msgpack``
from npm) follows the lifecycle on ``events``, asks ``status``, adds a track to
the session, sends bad requests and checks every answer strictly as the
document describes it; with ``--stop`` it stops the instance and checks the
shutdown's events. If it fails, the document (or the code) is wrong.

Skipped where ``node`` or ``npm`` is missing (CI installs them, .ci/run); the
npm packages are installed here (``npm ci``) when ``node_modules`` is missing.
"""

from __future__ import annotations

import fcntl
import json
import select
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lumiera.testing import Instance

pytestmark = pytest.mark.integration

NODE_DIR = Path(__file__).resolve().parents[1] / "outside" / "node"
PACKAGES = ("zeromq", "@msgpack/msgpack")
NPM_CI_TIMEOUT_S = 300
CLIENT_TIMEOUT_S = 60


def _installed() -> bool:
    return all((NODE_DIR / "node_modules" / p / "package.json").is_file() for p in PACKAGES)


@pytest.fixture(scope="module")
def node() -> str:
    """The ``node`` executable, with the client's npm packages installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("the outside client needs node and npm (CI installs them: .ci/run)")
    # One npm ci at a time, whichever test worker gets here first (the lock is
    # package.json's, so no file is made for it).
    with (NODE_DIR / "package.json").open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed():
            try:
                done = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund"],
                    cwd=NODE_DIR,
                    capture_output=True,
                    text=True,
                    timeout=NPM_CI_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                pytest.fail(f"npm ci in {NODE_DIR} took longer than {NPM_CI_TIMEOUT_S} s")
            assert done.returncode == 0 and _installed(), (
                f"npm ci in {NODE_DIR} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
    return node


def client(node: str, inst: Instance, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [node, "client.mjs", str(inst.rd.path), inst.rd.instance, *extra],
        cwd=NODE_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Wait for the client (bounded); its one JSON line, having checked it succeeded."""
    try:
        out, err = proc.communicate(timeout=CLIENT_TIMEOUT_S + 15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    lines = out.strip().splitlines()
    assert proc.returncode == 0 and len(lines) == 1, (
        f"the outside client exited {proc.returncode}:\n{out}\n{err}"
    )
    summary: dict[str, Any] = json.loads(lines[0])
    assert summary["ok"] is True
    return summary


START_UP = [
    "lifecycle.ON_BASIC_INIT",
    "appstate.phase:starting",
    "lifecycle.ON_GLOBAL_INIT",
    "subsystem.engine.running",
    "subsystem.session.running",
    "subsystem.player.running",
    "appstate.phase:opening",
    "lifecycle.ON_SESSION_START",
    "lifecycle.ON_SESSION_INIT",
    "lifecycle.ON_SESSION_READY",
    "appstate.phase:running",
]
SHUTDOWN = [
    "appstate.shutdown",
    "appstate.phase:closing",
    "lifecycle.ON_SESSION_CLOSE",
    "lifecycle.ON_SESSION_END",
    "appstate.phase:stopping",
    "subsystem.player.stopping",
    "subsystem.player.stopped",
    "subsystem.session.stopping",
    "subsystem.session.stopped",
    "subsystem.engine.stopping",
    "subsystem.engine.stopped",
    "lifecycle.ON_GLOBAL_SHUTDOWN",
    "appstate.phase:done",
]


def test_a_node_client_written_from_the_protocol_document(node: str) -> None:
    timeout = ["--timeout", str(CLIENT_TIMEOUT_S)]
    # The client first, so that it follows the start-up on `events` too: the
    # instance starts once it has subscribed.
    inst = Instance(["--headless"])
    first = client(node, inst, *timeout)
    try:
        assert first.stderr is not None
        ready, _, _ = select.select([first.stderr], [], [], 30)
        assert ready, "the outside client did not subscribe within 30 s"
        assert first.stderr.readline() == "subscribed\n"
        with inst:
            summary = finish(first)
            assert summary["instance"] == inst.rd.instance
            assert summary["subsystems"] == ["engine", "session", "player"]
            # What it saw of the start-up (the first events may be missed: lossy, 5).
            seen = summary["startup_events"]
            assert seen == START_UP[len(START_UP) - len(seen) :]
            assert "appstate.phase:running" in seen
            assert summary["answer_id"] == summary["command_id"] == summary["session_changed"]
            assert len(summary["errors_checked"]) >= 5

            # The command really took effect: ask the session over the Python client.
            timeline = inst.request("session", "timeline")
            track = summary["track"]
            assert {"id": track["id"], "name": track["name"], "kind": "video"} in timeline["tracks"]
            assert timeline["revision"] == summary["revision"]
            history = inst.request("session", "history")
            assert [d["command"] for d in history["done"]] == ["add_track"]

            # Then a second run stops the instance and follows its shutdown.
            second = finish(client(node, inst, "--stop", *timeout))
            assert second["stopped"] is True
            assert second["shutdown_events"] == SHUTDOWN
            assert second["revision"] == summary["revision"] + 1
            assert inst.wait(timeout=20) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=5)
