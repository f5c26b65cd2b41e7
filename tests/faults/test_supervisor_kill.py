"""SIGKILL of the supervisor in each phase (issue 16): every child gone within a bound,
and the next ``up`` on the same runtime directory starts clean.

The subsystems are forked by the zygote (the default ``[appstate] spawn =
fork``); the zygote and each subsystem carry a parent-death signal (SIGKILL),
and a subsystem also watches the supervisor's pidfd. The phases are held as in
the kill matrix (:mod:`tests.faults.process_kit`), the Holder leaving by its
pidfd on the supervisor. Nothing of the killed instance may live
:data:`GONE_BOUND_S` after the kill; the next ``up`` removes what it left in
the runtime directory and in /dev/shm (PROTOCOL 2.3), runs, stops in order
(exit 0) and leaves the directory empty.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from lumiera import shm
from lumiera.exits import EXIT_OK
from lumiera.testing import Instance, leftovers
from tests.faults.process_kit import (
    FAST,
    GONE_BOUND_S,
    PHASES,
    children_of,
    holding,
    make_media,
    reach,
    render_files,
    setup_for,
    wait_gone,
)

pytestmark = pytest.mark.integration

VICTIM = "player"  # the subsystem the phase is reached for (see process_kit.setup_for)
# idle: test_instance_e2e.py::test_a_sigkilled_supervisor_takes_its_children_along_and_the_next_up…
# and test_zygote_e2e.py::test_a_sigkilled_supervisor_takes_its_zygote_and_forked_children_along
SUPERVISOR_PHASES = [p for p in PHASES if p != "idle"]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.mark.parametrize("phase", SUPERVISOR_PHASES)
def test_a_sigkilled_supervisor_takes_every_child_along_and_the_next_up_starts_clean(
    phase: str, media: tuple[Path, Path]
) -> None:
    setup = setup_for(VICTIM, phase, media[1])
    with contextlib.ExitStack() as stack:
        inst = stack.enter_context(Instance(setup.args, defs=[*FAST, *setup.defs]))
        assert inst.proc is not None
        inst.wait_up()
        holder = None
        if setup.holder and setup.mode:
            holder = stack.enter_context(holding(inst, setup.holder, setup.mode))
        reach(inst, phase, holder, VICTIM, media[0])
        supervisor = inst.proc.pid
        pids = children_of(supervisor)  # the zygote and every subsystem it forked
        pids += [c for p in list(pids) for c in children_of(p)]
        if holder is not None:
            pids.append(holder.proc.pid)
        assert len(pids) >= 3, pids
        os.kill(supervisor, signal.SIGKILL)
        inst.wait(5)
        took = wait_gone(pids, GONE_BOUND_S)
        assert took < GONE_BOUND_S
        stale = {p.name for p in inst.rd.path.iterdir()}
        assert {"control", "events", "publish", "appstate.pid", "lock"} <= stale
        had_segments = shm.list_segments(inst.rd.instance)
        partial = render_files(inst)

    # The next `up` on the same directory: the dead one's files swept, runs, stops in order.
    with Instance(["--headless"], rd=inst.rd, defs=FAST) as again:
        t0 = time.monotonic()
        again.wait_running()
        assert time.monotonic() - t0 < 10
        assert again.request("session", "ping")["pong"] is True
        assert shm.list_segments(inst.rd.instance) == [
            s for s in shm.list_segments(inst.rd.instance) if s not in had_segments
        ]  # the dead instance's segments are gone (the new one may have its own)
        again.request("appstate", "stop")
        assert again.wait(20) == EXIT_OK, again.output()
        assert "removed what a dead instance left behind" in again.output()
        assert leftovers(inst.rd) == []
        assert list(inst.rd.path.iterdir()) == []
    # The player died mid-render: never the output; its partial file, if it was there,
    # removed by the next `up` (the encoder's marker in the dead instance's temp area).
    assert [n for n in partial if not n.endswith(".partial")] == []
    assert render_files(inst) == []
