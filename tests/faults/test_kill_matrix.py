"""SIGKILL of each subsystem in each phase of an instance's life (issue 16, the matrix).

Every case ends with the documented outcome (docs/PROTOCOL.md 11.5, 11.8, 14)
and with nothing left: no process (the supervisor, the zygote, the subsystems,
the test's Holder), no file in the runtime directory (sockets, pid file, the
temp area ``tmp``), no shm segment; the suite's ``no_leaks`` checks it again.

- killed before READY (``starting``): a start failure, not an emergency: exit 1,
  ``subsystem.<v>.failed`` with ``ended before it was ready (killed by SIGKILL)``,
  ``appstate.problem`` ``<v> failed to start: …``, no ``ON_EMERGENCY_EXIT``;
- killed once running (every other phase, an orderly stop's included): an
  emergency: exit 2, ``lifecycle.ON_EMERGENCY_EXIT`` ``{subsystem: v,
  exit_code: nil, signal: 9, reason: "killed by SIGKILL"}``, never
  ``ON_GLOBAL_SHUTDOWN``.

How each phase is held still is in :mod:`tests.faults.process_kit`; the
``idle``, ``render`` and ``playback`` phases are reached by polling the public
state (``status``, ``player streams``), which is deterministic because each of
them lasts (an idle instance forever, the render ~7 s, the playback 8 s) far
longer than the poll needs. The render node (``netnode``) joins a Dask scheduler
run in the test's process (tests.support.loopback_cluster).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from lumiera.exits import EXIT_EMERGENCY, EXIT_ERROR
from lumiera.testing import Instance, Tap
from tests.faults.process_kit import (
    FAST,
    PHASES,
    assert_clean,
    holding,
    make_media,
    reach,
    render_files,
    render_output,
    setup_for,
    tapped,
)
from tests.support import loopback_cluster

pytestmark = pytest.mark.integration

VICTIMS = ["engine", "session", "player", "gui", "script", "netnode"]
# Cells an existing test covers already, with the same checks (tests/faults/README.md).
COVERED = {
    ("engine", "idle"): "test_lifecycle_e2e.py::test_sigkill_of_a_subsystem_is_an_emergency…",
    ("session", "idle"): "test_lifecycle_e2e.py::test_sigkill_of_a_subsystem_is_an_emergency…",
    ("player", "idle"): "test_lifecycle_e2e.py::test_sigkill_of_a_subsystem_is_an_emergency…",
    ("engine", "render"): "test_player_e2e.py::test_a_sigkilled_engine_during_a_render…",
}
CELLS = [(v, p) for v in VICTIMS for p in PHASES if (v, p) not in COVERED]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A Dask scheduler on loopback for the render node to join (in this process)."""
    with loopback_cluster() as cluster:
        yield str(cluster.scheduler_address)


@pytest.mark.parametrize(("victim", "phase"), CELLS, ids=[f"{v}-{p}" for v, p in CELLS])
def test_sigkill_of_a_subsystem_ends_as_documented_and_leaves_nothing(
    victim: str, phase: str, media: tuple[Path, Path], request: pytest.FixtureRequest
) -> None:
    join = str(request.getfixturevalue("scheduler")) if victim == "netnode" else ""
    setup = setup_for(victim, phase, media[1], join)
    with contextlib.ExitStack() as stack:
        inst = stack.enter_context(Instance(setup.args, defs=[*FAST, *setup.defs]))
        tap = stack.enter_context(tapped(inst))
        assert inst.proc is not None
        holder = None
        if setup.holder and setup.mode:
            holder = stack.enter_context(holding(inst, setup.holder, setup.mode))
        reach(inst, phase, holder, victim, media[0])
        st = inst.status()
        pids = [s["pid"] for s in st["subsystems"] if s["pid"]] + [inst.proc.pid]
        os.kill(inst.pid_of(victim), signal.SIGKILL)
        code = inst.wait(30)
        if holder is not None:
            pids.append(holder.proc.pid)
            assert holder.close() == 0  # told to stop in the emergency, or its supervisor gone
        tap.poll(0.3)
        check_outcome(tap, victim, phase, code, inst.output())
        assert_clean(inst, pids)
        # No output, no partial: the player removed it at its stop, or (the player
        # killed) the supervisor did, by the marker the encoder left in its temp area.
        assert render_files(inst) == []


def test_a_player_killed_mid_render_leaves_no_partial_file(media: tuple[Path, Path]) -> None:
    with Instance(["--headless"], defs=["debug.faults=yes", "engine.workers=2"]) as inst:
        reach(inst, "render", None, "player", media[0])
        os.kill(inst.pid_of("player"), signal.SIGKILL)
        assert inst.wait(30) == EXIT_EMERGENCY
        partial = render_output(inst).with_name(f".{render_output(inst).name}.partial")
        left = render_files(inst)
        partial.unlink(missing_ok=True)
        assert left == []


def check_outcome(tap: Tap, victim: str, phase: str, code: int, output: str) -> None:
    lifecycle = tap.topics("lifecycle.")
    if phase == "starting":
        assert code == EXIT_ERROR, output
        assert "lifecycle.ON_EMERGENCY_EXIT" not in lifecycle
        failed = tap.wait_topic(f"subsystem.{victim}.failed", 1)
        assert failed["reason"] == "ended before it was ready (killed by SIGKILL)"
        problems = [b["message"] for t, b in tap.events if t == "appstate.problem"]
        assert f"{victim} failed to start: ended before it was ready (killed by SIGKILL)" in (
            problems
        )
        return
    assert code == EXIT_EMERGENCY, output
    body = tap.wait_topic("lifecycle.ON_EMERGENCY_EXIT", 1)
    assert (body["subsystem"], body["exit_code"], body["signal"], body["reason"]) == (
        victim,
        None,
        signal.SIGKILL,
        "killed by SIGKILL",
    ), body
    assert "lifecycle.ON_GLOBAL_SHUTDOWN" not in lifecycle
    assert lifecycle.count("lifecycle.ON_EMERGENCY_EXIT") == 1
