"""A farm render survives a render node killed in the middle of its segment.

Two real render nodes, a session of 900 numbered frames in 3 segments: once a
node's Player is rendering, its netnode process is SIGKILLed. The scheduler
gives that segment to the other node; the joined file still has exactly every
frame in order; the killed node's instance ends as an emergency and leaves no
socket, temp area or shm segment; the scheduler is left with no task.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from distributed import Client

from lumiera.steam.core import SessionCore
from lumiera.testing import Instance, leftovers, unique_runtime_dir, wait_for
from tests.integration.farmkit import codes, decoded, only
from tests.support import loopback_cluster, rendering, stop
from tests.unit.vault.mediakit import write_video

pytestmark = pytest.mark.integration

FRAMES = 900
EXIT_EMERGENCY = 2


def long_session(where: Path) -> Path:
    media = write_video(where / "long.mkv", FRAMES, "ffv1")
    session = where / "long.lumiera"
    core = SessionCore(session)
    try:
        core.execute("add_media", {"path": str(media)})
        core.execute("add_track", {"name": "V1"})
        core.execute("set_output", {"width": 64, "height": 48, "rate": "25"})
        core.execute("add_clip", {"media": "m1", "track": "t1", "position": 0})
    finally:
        core.close()
    return session


def scheduler_tasks(client: Client) -> int:
    count: int = client.run_on_scheduler(  # type: ignore[no-untyped-call]
        lambda dask_scheduler: len(dask_scheduler.tasks)
    )
    return count


def test_a_node_killed_mid_segment_is_retried_elsewhere_and_the_file_is_exact(tmp_path):
    session = long_session(tmp_path)
    out = tmp_path / "out.mkv"
    rd = unique_runtime_dir()
    with loopback_cluster() as cluster, Client(cluster.scheduler_address, timeout=10) as client:  # type: ignore[no-untyped-call]
        address = cluster.scheduler_address
        join = ["--headless", "--port", "0", "--join", address]
        with Instance(join) as a, Instance(join) as b:
            a.wait_running(), b.wait_running()
            client.wait_for_workers(2, timeout=10)
            cmd = [sys.executable, "-m", "lumiera", "render", str(session), "-o", str(out)]
            cmd += ["--codec", "ffv1", "--farm", address, "--segment-frames", "300"]
            cmd += ["--runtime-dir", str(rd.path)]
            with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
                killed = wait_for(lambda: rendering(a, b), 30, "a node rendering", every=0.02)
                other = b if killed is a else a
                os.kill(killed.pid_of("netnode"), signal.SIGKILL)
                stdout, stderr = proc.communicate(timeout=90)
            assert proc.returncode == 0, stderr.decode()
            assert f"rendered {FRAMES} frames to {out}" in stdout.decode()
            assert killed.wait() == EXIT_EMERGENCY, killed.output()
            assert leftovers(killed.rd) == []
            wait_for(lambda: scheduler_tasks(client) == 0, 10, "the scheduler to hold no task")
            stop(other)
    assert codes(decoded(out)[0]) == list(range(FRAMES))
    rd.path.rmdir()
    only(tmp_path, "long.mkv", "long.lumiera", "out.mkv")
