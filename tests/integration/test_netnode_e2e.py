"""Render nodes (``lumiera up --headless --port 0 --join ADDRESS``) on a Dask scheduler.

The scheduler is a ``distributed.LocalCluster`` without workers of its own, in
this process; the workers are the nodes' netnode subsystems, each in a real
instance of its own. A farm task (:func:`lumiera.vault.farmtask.render_segment`)
comes back as the bytes of a segment file whose frames are checked one by one:
the test media carry their frame numbers in their pixels, and FFV1 is lossless.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from distributed import Client

from lumiera.bus.timeline import Timeline
from lumiera.errors import MediaError
from lumiera.testing import Instance, leftovers, run_cli, unique_runtime_dir, wait_for
from lumiera.vault.farmtask import render_segment
from tests.support import loopback_cluster, rendering, stop, timeline_of
from tests.unit.vault.mediakit import read_code, write_video

pytestmark = pytest.mark.integration

EXIT_USAGE, EXIT_ERROR, EXIT_EMERGENCY = 64, 1, 2
SECOND = 1000  # m2's frames are numbered from here


@pytest.fixture
def scheduler() -> Iterator[str]:
    """A Dask scheduler on loopback, in this process, with no workers of its own."""
    with loopback_cluster() as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def client(scheduler: str) -> Iterator[Client]:
    with Client(scheduler, timeout=10) as c:  # type: ignore[no-untyped-call]
        yield c


def cut(tmp_path: Path, frames: int) -> Timeline:
    """m1's frames 0.. then, from ``frames`` on, m2's (numbered from SECOND) from its 3rd on."""
    m1 = write_video(tmp_path / "m1.mkv", frames, "ffv1")
    m2 = write_video(tmp_path / "m2.mkv", frames + 2, "ffv1", first=SECOND)
    return timeline_of(
        {
            "output": {"width": 64, "height": 48, "rate": "25"},
            "media": [{"id": "m1", "path": str(m1)}, {"id": "m2", "path": str(m2)}],
            "tracks": [{"id": "t1", "name": "V1"}],
            "clips": [
                {
                    "id": "a",
                    "media": "m1",
                    "track": "t1",
                    "position": 0,
                    "source_in": 0,
                    "source_out": frames,
                },
                {
                    "id": "b",
                    "media": "m2",
                    "track": "t1",
                    "position": frames,
                    "source_in": 2,
                    "source_out": frames + 2,
                },
            ],
        }
    )


def expected(frames: int, first: int, count: int) -> list[int]:
    """The frame numbers output frames first..first+count-1 of :func:`cut` show."""
    return [n if n < frames else SECOND + 2 + n - frames for n in range(first, first + count)]


def numbers(segment: bytes, where: Path) -> list[int]:
    """The frame numbers a segment file's frames carry (its first frame a keyframe)."""
    where.write_bytes(segment)
    with av.open(str(where)) as container:
        frames = list(container.decode(video=0))
    assert frames[0].key_frame
    return [read_code(f.to_ndarray(format="gray")) for f in frames]


def node(scheduler: str, *defs: str) -> Instance:
    """A render node joining ``scheduler`` (an Instance: start it with ``with``)."""
    return Instance(["--headless", "--port", "0", "--join", scheduler], defs=defs)


@contextlib.contextmanager
def refusing_address() -> Iterator[str]:
    """A loopback scheduler address that refuses connections (its port bound, not listening)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"tcp://127.0.0.1:{s.getsockname()[1]}"


def describe(inst: Instance) -> dict[str, Any]:
    result: dict[str, Any] = inst.request("netnode", "describe")
    return result


def workers(client: Client) -> dict[str, Any]:
    found: dict[str, Any] = client.scheduler_info(n_workers=-1)["workers"]
    return found


def tasks(inst: Instance) -> dict[str, int]:
    """The node's task counts: a task's result may reach the client a moment before them."""
    counts: dict[str, int] = describe(inst)["tasks"]
    return counts


# -- tests ----------------------------------------------------------------------------------------


def test_two_nodes_join_and_each_segment_comes_back_with_exactly_its_frames(
    scheduler, client, tmp_path
):
    frames = 600
    timeline = cut(tmp_path, frames)
    with node(scheduler) as a, node(scheduler) as b:
        a.wait_running(), b.wait_running()
        client.wait_for_workers(2, timeout=10)
        for d in (describe(a), describe(b)):
            assert d["built"] is True and d["scheduler"] == scheduler
            assert d["worker"] in workers(client) and d["listening"] is True
        wire = timeline.to_wire()
        futures = [
            client.submit(
                render_segment, wire, first, 10, "ffv1", key=f"seg-{first}", retries=2, pure=False
            )
            for first in (0, frames - 5)
        ]
        segments = [f.result(timeout=30) for f in futures]
        assert numbers(segments[0], tmp_path / "s0.mkv") == expected(frames, 0, 10)
        cut_at = numbers(segments[1], tmp_path / "s1.mkv")
        assert cut_at == expected(frames, frames - 5, 10)  # m1's last five, m2's from its 3rd
        wait_for(lambda: tasks(a)["ran"] + tasks(b)["ran"] == 2, 5, "both tasks counted")
        assert tasks(a)["failed"] + tasks(b)["failed"] == 0
        for inst in (a, b):  # the contract was rendered as given: the sessions are untouched
            assert inst.request("session", "timeline")["clips"] == []
            assert not list(inst.rd.temp_dir.glob("segment-*")), "a segment file was left"

        # An orderly stop of the node that renders: the scheduler sees it leave and
        # gives the task to the other (and nothing else: the results held are released).
        for f in futures:
            f.release()
        wait_for(lambda: not any(client.has_what().values()), 5, "the results released")
        whole = client.submit(render_segment, wire, 0, 2 * frames, "ffv1", pure=False)
        busy = wait_for(lambda: rendering(a, b), 20, "a player rendering the segment")
        other = b if busy is a else a
        before = tasks(other)["ran"]
        stop(busy)
        segment = whole.result(timeout=40)
        assert numbers(segment, tmp_path / "whole.mkv") == expected(frames, 0, 2 * frames)
        wait_for(lambda: tasks(other)["ran"] == before + 1, 5, "the other node's count")
        assert list(workers(client)) == [describe(other)["worker"]]
        assert leftovers(busy.rd) == []


def test_a_media_missing_on_the_node_fails_the_task_naming_node_media_and_path(
    scheduler, client, tmp_path
):
    timeline = cut(tmp_path, 5)
    missing = timeline.media_by_id["m2"].path
    os.unlink(missing)
    with node(scheduler) as a:
        a.wait_running()
        client.wait_for_workers(1, timeout=10)
        name = describe(a)["worker_name"]
        ok = client.submit(render_segment, timeline.to_wire(), 0, 5, "ffv1", pure=False)
        assert numbers(ok.result(timeout=30), tmp_path / "ok.mkv") == expected(5, 0, 5)
        bad = client.submit(render_segment, timeline.to_wire(), 3, 5, "ffv1", pure=False)
        with pytest.raises(MediaError, match=re.escape(f"node {name}: media m2: {missing} is")):
            bad.result(timeout=30)
        wait_for(lambda: tasks(a) == {"ran": 1, "failed": 1, "running": 0}, 5, "the counts")
        stop(a)


def test_a_node_killed_while_it_renders_loses_its_task_to_the_other_and_leaves_nothing(
    scheduler, client, tmp_path
):
    frames = 1500  # long enough to be seen running (about a second here), small on disk
    timeline = cut(tmp_path, frames)
    with node(scheduler) as a, node(scheduler) as b:
        a.wait_running(), b.wait_running()
        client.wait_for_workers(2, timeout=10)
        first, count = frames - 600, 1200
        future = client.submit(
            render_segment,
            timeline.to_wire(),
            first,
            count,
            "ffv1",
            key="seg-killed",
            retries=2,
            pure=False,
        )
        killed = wait_for(lambda: rendering(a, b), 20, "a player rendering the segment")
        other = b if killed is a else a
        os.kill(killed.pid_of("netnode"), signal.SIGKILL)
        segment = future.result(timeout=40)
        assert numbers(segment, tmp_path / "seg.mkv") == expected(frames, first, count)
        wait_for(lambda: tasks(other)["ran"] == 1, 5, "the other node's count")
        assert killed.wait() == EXIT_EMERGENCY, killed.output()
        assert "emergency: netnode killed by SIGKILL" in killed.output()
        assert leftovers(killed.rd) == []
        stop(other)


def test_a_node_without_a_scheduler_to_join_fails_to_start_and_says_what_is_missing():
    rd = unique_runtime_dir()
    where = ["--instance", rd.instance, "--runtime-dir", str(rd.path)]
    done = run_cli("up", "--headless", "--port", "0", *where)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "a render node needs a scheduler to join: give --join tcp://HOST:PORT" in done.stderr
    rd.path.rmdir()  # nothing was spawned, nothing made in it


def test_a_node_whose_scheduler_is_not_there_fails_to_start_naming_it():
    with refusing_address() as address, node(address, "netnode.join_timeout=1") as a:
        assert a.wait(timeout=30) == EXIT_ERROR
        assert f"cannot join the scheduler at {address}" in a.output()
