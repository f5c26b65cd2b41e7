"""``lumiera render --farm``: a session rendered in segments by two render nodes, then joined.

The scheduler is an in-process ``distributed.LocalCluster`` without workers of
its own on loopback; the nodes are real instances (``lumiera up --headless
--port 0 --join``), started once for the module. The session file is written
here by a :class:`~lumiera.steam.core.SessionCore` (what an instance does
with it), from test media that carry their frame numbers in their pixels.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from distributed import Client

from lumiera.testing import Instance, wait_for
from tests.integration.farmkit import (
    EXIT_INTERRUPTED,
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
from tests.support import loopback_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-clip session file (the media beside it)."""
    return write_session(tmp_path_factory.mktemp("farm"))


@pytest.fixture
def farm(session: Path) -> Iterator[tuple[str, Path]]:
    """A scheduler with two render nodes joined: (its address, the session)."""
    with loopback_cluster() as cluster:
        address = cluster.scheduler_address
        nodes = [Instance(["--headless", "--port", "0", "--join", address]) for _ in range(2)]
        with nodes[0] as a, nodes[1] as b:
            a.wait_running(), b.wait_running()
            with Client(address, timeout=10) as client:  # type: ignore[no-untyped-call]
                client.wait_for_workers(2, timeout=10)
            yield address, session


def test_a_farm_render_equals_a_local_render_frame_for_frame(farm, tmp_path):
    address, session = farm
    local, farmed = tmp_path / "local.mkv", tmp_path / "farm.mkv"
    done = render(str(session), "-o", str(local), "--codec", "ffv1")
    assert done.returncode == 0, done.stderr
    done = render(
        str(session),
        "-o",
        str(farmed),
        "--codec",
        "ffv1",
        "--farm",
        address,
        "--segment-frames",
        "7",
    )
    assert done.returncode == 0, done.stderr
    assert f"rendered {LENGTH} frames to {farmed}" in done.stdout
    assert "segment 6/6 (frames" in done.stderr or "segments 6/6" in done.stderr
    want, _, _ = decoded(local)
    got, duration, times = decoded(farmed)
    assert codes(got) == EXPECTED == codes(want)
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(a.to_ndarray(format="gray"), b.to_ndarray(format="gray"))
    assert duration == Fraction(LENGTH, RATE)
    assert times == [Fraction(k, RATE) for k in range(LENGTH)]
    only(tmp_path, "local.mkv", "farm.mkv")


def test_a_farm_render_in_h264_with_b_frames_keeps_every_frame_in_place(farm, tmp_path):
    address, session = farm
    out = tmp_path / "farm.mp4"
    done = render(
        str(session), "-o", str(out), "--codec", "h264-veryfast", "--farm", address,
        "--segment-frames", "7", "--range", "3:38",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    frames, duration, times = decoded(out)
    assert codes(frames) == EXPECTED[3:38]
    assert duration == Fraction(35, RATE)
    assert times == [Fraction(k, RATE) for k in range(35)]
    only(tmp_path, "farm.mp4")


def test_a_scheduler_that_is_not_there_is_a_clear_error_and_writes_nothing(session, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        out = tmp_path / "out.mkv"
        done = render(
            str(session), "-o", str(out), "--farm", address, "--connect-timeout", "1", timeout=30
        )
    assert done.returncode == EXIT_UNAVAILABLE, done.stderr
    assert f"cannot reach the scheduler at {address}" in done.stderr
    only(tmp_path)


def test_ctrl_c_cancels_the_segments_and_leaves_no_file_and_no_parts(farm, tmp_path):
    address, session = farm
    out = tmp_path / "out.mkv"
    cmd = [sys.executable, "-m", "lumiera", "render", str(session), "-o", str(out)]
    cmd += ["--codec", "ffv1", "--farm", address, "--segment-frames", "1"]
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while line and not line.startswith("segment "):  # the first segment is back
            line = proc.stderr.readline()
        assert line.startswith("segment "), "no segment came back"
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=30) == EXIT_INTERRUPTED, rest
    assert "interrupted; no file written" in rest
    assert rest.count("\nsegment ") < 30, rest  # well before the end (40 segments)
    only(tmp_path)
    with Client(address, timeout=10) as client:  # type: ignore[no-untyped-call]

        def held() -> int:
            count: int = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
            return count

        wait_for(lambda: held() == 0, 10, "the scheduler to hold no task of the render")
