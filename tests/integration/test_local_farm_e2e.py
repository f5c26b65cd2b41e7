"""A farm on one machine: ``lumiera render --jobs N`` and ``lumiera farm up | status | down``.

Everything is real: the farm's scheduler, its render nodes (whole lumiera
instances), the session file and the media. Runtime directories are the
suite's, so the leak check sees any socket, temp area or process left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from lumiera.testing import unique_runtime_dir, wait_for
from tests.integration.farmkit import (
    EXIT_UNAVAILABLE,
    EXPECTED,
    LENGTH,
    RATE,
    codes,
    decoded,
    only,
    render,
    write_session,
)

pytestmark = pytest.mark.integration

EXIT_INSTANCE_RUNNING = 73


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_session(tmp_path_factory.mktemp("localfarm"))


def farm_cli(*args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lumiera", "farm", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def test_render_jobs_makes_a_farm_for_the_render_and_leaves_nothing(session, tmp_path):
    out = tmp_path / "out.mkv"
    left: list[str] = []
    done = render(
        str(session), "-o", str(out), "--codec", "ffv1", "--jobs", "2",
        "--segment-frames", "8", timeout=120, left=left,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 render nodes up in" in done.stderr
    assert "(2 render nodes)" in done.stderr
    frames, duration, times = decoded(out)
    assert codes(frames) == EXPECTED
    assert duration == Fraction(LENGTH, RATE)
    assert times == [Fraction(k, RATE) for k in range(LENGTH)]
    assert left == []  # the nodes' runtime directories and logs went with them
    only(tmp_path, "out.mkv")


def test_render_jobs_and_farm_together_is_a_usage_error(session, tmp_path):
    done = render(str(session), "-o", str(tmp_path / "o.mkv"), "--jobs", "2", "--farm", "tcp://h:1")
    assert done.returncode == 64
    assert "--farm and --jobs: one or the other" in done.stderr
    done = render(str(session), "-o", str(tmp_path / "o.mkv"), "--jobs", "0")
    assert done.returncode == 64
    assert "--jobs 0: at least 1" in done.stderr
    only(tmp_path)


@pytest.fixture
def farm_dir() -> Iterator[Path]:
    """A farm's runtime directory of the suite's; ``farm down`` if a test left it up."""
    rd = unique_runtime_dir()
    yield rd.path
    if (rd.path / "farm.json").exists():
        farm_cli("down", "--runtime-dir", str(rd.path))
    shutil.rmtree(rd.path, ignore_errors=True)


def status(farm_dir: Path) -> dict[str, Any]:
    done = farm_cli("status", "--json", "--runtime-dir", str(farm_dir), timeout=30)
    assert done.returncode == 0, done.stderr
    state: dict[str, Any] = json.loads(done.stdout)
    return state


def test_farm_up_status_render_down(session, farm_dir, tmp_path):
    up = farm_cli("up", "--workers", "2", "--port", "0", "--runtime-dir", str(farm_dir))
    assert up.returncode == 0, up.stderr
    address = up.stdout.strip()
    assert address.startswith("tcp://127.0.0.1:")
    assert "2 render nodes" in up.stderr

    again = farm_cli("up", "--workers", "1", "--port", "0", "--runtime-dir", str(farm_dir))
    assert again.returncode == EXIT_INSTANCE_RUNNING, again.stderr
    assert "is already running" in again.stderr

    state = status(farm_dir)
    assert state["address"] == address
    assert sorted(w["name"] for w in state["workers"]) == sorted(
        n["instance"] for n in state["nodes"]
    )
    plain = farm_cli("status", "--runtime-dir", str(farm_dir))
    assert plain.returncode == 0 and "2 workers joined" in plain.stdout, plain.stdout

    out = tmp_path / "out.mkv"
    done = render(str(session), "-o", str(out), "--codec", "ffv1", "--farm", address)
    assert done.returncode == 0, done.stderr
    assert codes(decoded(out)[0]) == EXPECTED

    down = farm_cli("down", "--runtime-dir", str(farm_dir))
    assert down.returncode == 0, down.stderr
    assert f"at {address} stopped" in down.stdout
    assert not (farm_dir / "farm.json").exists()
    gone = farm_cli("status", "--runtime-dir", str(farm_dir))
    assert gone.returncode == EXIT_UNAVAILABLE and "no farm" in gone.stderr


def test_a_node_killed_on_a_farm_is_started_again(farm_dir):
    up = farm_cli("up", "--workers", "1", "--port", "0", "--runtime-dir", str(farm_dir))
    assert up.returncode == 0, up.stderr
    node = status(farm_dir)["nodes"][0]
    os.kill(node["pid"], signal.SIGKILL)  # the node's supervisor: its subsystems follow

    def restarted() -> bool:
        state = status(farm_dir)
        return state["nodes"][0]["starts"] == 2 and len(state["workers"]) == 1

    wait_for(restarted, 60, "the farm to start its killed node again", every=0.5)
    assert status(farm_dir)["nodes"][0]["pid"] != node["pid"]
    down = farm_cli("down", "--runtime-dir", str(farm_dir))
    assert down.returncode == 0, down.stderr


def test_status_and_down_of_no_farm_exit_69(farm_dir):
    for command in ("status", "down"):
        done = farm_cli(command, "--runtime-dir", str(farm_dir), timeout=30)
        assert done.returncode == EXIT_UNAVAILABLE, done.stderr
        assert "no farm 'default' is running" in done.stderr


def test_a_farm_whose_port_is_taken_says_so_and_leaves_nothing(farm_dir):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        up = farm_cli("up", "--workers", "1", "--port", str(port), "--runtime-dir", str(farm_dir))
    assert up.returncode == 1, up.stderr
    assert f"cannot start a scheduler on 127.0.0.1:{port}" in up.stderr
    assert not (farm_dir / "farm.json").exists()
