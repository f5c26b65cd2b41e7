"""The render node's parts without a lumiera instance: its plugin, its Worker thread, its actor.

The scheduler is a ``distributed.LocalCluster`` without workers, in this
process; the Worker runs on its own loop thread here, as in the netnode.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from lumiera.actors import ActorContext
from lumiera.config import load
from lumiera.errors import ConfigError, ShuttingDown, Unavailable
from lumiera.vault.daskworker import NodePlugin, NodeSettings, WorkerThread, this_node
from lumiera.vault.netnode import NetNodeActor
from tests.support import loopback_cluster as cluster

BOUND_S = 10.0


def connect(address: str) -> Client:
    return Client(address, timeout=BOUND_S)  # type: ignore[no-untyped-call]


def plugin(tmp_path: Path, task_timeout: float = 5.0) -> NodePlugin:
    return NodePlugin("n1", "t1", str(tmp_path), str(tmp_path), task_timeout)


def settings(scheduler: str, tmp_path: Path, join_timeout: float = 5.0) -> NodeSettings:
    return NodeSettings(scheduler, "127.0.0.1", 0, 1, "n1", str(tmp_path / "w"), join_timeout)


def whose_node() -> str:
    """A task that says which node it runs on."""
    return this_node().node


def fails() -> None:
    raise ValueError("this task fails")


def workers(client: Client) -> list[str]:
    return list(client.scheduler_info(n_workers=-1)["workers"])


def wait_until(what: str, predicate: Any) -> None:
    deadline = time.monotonic() + BOUND_S
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {BOUND_S} s"
        time.sleep(0.02)


# -- the plugin ---------------------------------------------------------------------------


def test_the_plugin_counts_the_tasks_that_ended_here_with_a_result_or_an_error(tmp_path):
    node = plugin(tmp_path)
    for start, finish in [
        ("executing", "memory"),
        ("executing", "error"),
        ("executing", "memory"),
        ("ready", "executing"),
        ("executing", "released"),  # lost or cancelled: neither
    ]:
        node.transition("k", start, finish)
    assert (node.ran, node.failed) == (2, 1)


def test_a_stopping_node_refuses_a_task_and_stops_a_running_one_at_its_progress(tmp_path):
    node = plugin(tmp_path)
    node.check_stopping({"frame": 3})
    node.stopping.set()
    with pytest.raises(ShuttingDown, match="node n1 is stopping"):
        node.check_stopping({"frame": 4})
    with pytest.raises(ShuttingDown), node.task():
        pass
    assert node.running == 0


def test_tasks_take_turns_at_the_player_and_a_turn_that_never_comes_is_bounded(tmp_path):
    node = plugin(tmp_path, task_timeout=0.1)
    inside = threading.Event()
    leave = threading.Event()

    def first() -> None:
        with node.task():
            inside.set()
            leave.wait(BOUND_S)

    t = threading.Thread(target=first)
    t.start()
    try:
        assert inside.wait(BOUND_S) and node.running == 1
        assert not node.wait_idle(0.01)
        with pytest.raises(Unavailable, match="no turn at its player"), node.task():
            pass
    finally:
        leave.set()
        t.join(BOUND_S)
    assert node.wait_idle(0.0) and node.running == 0


def test_outside_a_render_node_a_task_says_where_it_runs():
    with pytest.raises(Unavailable, match="only on a lumiera render node"):
        this_node()


# -- the Worker on its own loop thread --------------------------------------------------------


def test_a_worker_joins_runs_tasks_with_the_node_plugin_and_leaves_when_stopped(tmp_path):
    node = plugin(tmp_path)
    with cluster() as c, connect(c.scheduler_address) as client:
        runner = WorkerThread(settings(c.scheduler_address, tmp_path), node)
        address = runner.start()
        try:
            assert workers(client) == [address] and runner.status == "running"
            assert client.submit(whose_node, pure=False).result(BOUND_S) == "n1"
            with pytest.raises(ValueError, match="this task fails"):
                client.submit(fails, pure=False).result(BOUND_S)
            assert (node.ran, node.failed) == (1, 1)
        finally:
            runner.stop(BOUND_S)
        wait_until("worker leaving", lambda: workers(client) == [])
        assert runner.ended and runner.error is None


def test_a_scheduler_that_refuses_is_a_start_failure_naming_it_within_the_join_timeout(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        runner = WorkerThread(settings(address, tmp_path, join_timeout=0.5), plugin(tmp_path))
        began = time.monotonic()
        with pytest.raises(Unavailable, match=f"cannot join the scheduler at {address}"):
            runner.start()
        assert time.monotonic() - began < 0.5 + 2.0
    runner.stop(BOUND_S)
    assert runner.ended


def test_a_worker_whose_scheduler_goes_away_ends_its_thread_without_an_error(tmp_path):
    with cluster() as c:
        runner = WorkerThread(settings(c.scheduler_address, tmp_path), plugin(tmp_path))
        runner.start()
    wait_until("the worker's end", lambda: runner.ended)
    assert runner.error is None and runner.status == "closed"


# -- the actor ------------------------------------------------------------------------------


def context(tmp_path: Path, options: dict[str, Any], ended: list[str | None]) -> ActorContext:
    ctx = ActorContext(
        name="netnode",
        instance="t1",
        config=load(defs=["netnode.join_timeout=5"]),
        options=options,
        runtime_dir=str(tmp_path),
        temp_dir=str(tmp_path),
    )
    ctx.end = ended.append
    return ctx


def test_a_node_without_a_scheduler_is_refused_at_its_start_saying_what_is_missing(tmp_path):
    actor = NetNodeActor(context(tmp_path, {"port": 0}, []))
    with pytest.raises(ConfigError, match="needs a scheduler to join: --join tcp://HOST:PORT"):
        actor.on_start()
    assert actor.describe_state()["worker"] is None


def test_the_node_describes_its_worker_and_ends_when_its_scheduler_goes_away(tmp_path):
    ended: list[str | None] = []
    with cluster() as c:
        actor = NetNodeActor(context(tmp_path, {"port": 0, "join": c.scheduler_address}, ended))
        actor.on_start()
        state = actor.describe_state()
        assert state["built"] is True and state["listening"] is True
        assert state["scheduler"] == c.scheduler_address
        assert state["worker"].startswith("tcp://127.0.0.1:")
        assert state["worker_name"] == f"lumiera-{socket.gethostname()}-t1"
        assert state["tasks"] == {"ran": 0, "failed": 0, "running": 0}
    try:

        def tick() -> list[str | None]:
            actor.on_tick()
            return ended

        wait_until("the end", tick)
        assert ended == [
            f"the Dask worker closed by itself: the scheduler at {c.scheduler_address} "
            "went away or retired it"
        ]
    finally:
        actor.on_stop()
