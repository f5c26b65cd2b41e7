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
longer than the poll needs. The render node (``netnode``) is not in this matrix:
see tests/faults/README.md.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lumiera.exits import EXIT_EMERGENCY, EXIT_ERROR
from lumiera.testing import Instance, Tap, wait_for
from tests.faults.process_kit import (
    FAST,
    HOLD,
    HOLD_BARRIER,
    HOLD_CLOSING,
    IGNORE_STOP,
    Holder,
    assert_clean,
    holding,
    sub_state,
    tapped,
)
from tests.support import build
from tests.unit.vault.mediakit import write_video

pytestmark = pytest.mark.integration

VICTIMS = ["engine", "session", "player", "gui", "script"]
PHASES = ["starting", "barrier", "idle", "render", "playback", "stopping"]
CLIP_FRAMES = 40


@dataclass
class Setup:
    """How to start the instance for one cell, and which subsystem holds its phase."""

    args: list[str]
    holder: str | None = None
    mode: str = ""
    defs: list[str] = field(default_factory=list)


def setup_for(victim: str, phase: str, script: Path) -> Setup:
    """The command line that lets ``phase`` be held with ``victim`` in it (process_kit)."""
    headless = ["--headless"]
    gui: list[str] = []
    with_script = ["--script", str(script)]
    if phase == "starting":  # the holder is before the victim in start order, never attached
        args, holder = {
            "engine": (gui, "session"),  # session, engine, player, gui
            "session": (headless, "engine"),  # engine, session, player
            "player": (headless, "engine"),
            "gui": (gui, "player"),
            "script": (headless + with_script, "player"),
        }[victim]
        return Setup([*args, "--debug", holder], holder)
    if phase in ("barrier", "stopping"):
        # The holder is the last in start order (stopped first): the script, or,
        # for the script itself, the player holding the closing barrier instead.
        base = gui if victim == "gui" else headless
        if victim == "script":
            holder, mode = "player", (HOLD_BARRIER if phase == "barrier" else HOLD_CLOSING)
        else:
            holder, mode = "script", (HOLD_BARRIER if phase == "barrier" else IGNORE_STOP)
        return Setup([*base, *with_script, "--debug", holder], holder, mode, HOLD)
    base = {"gui": gui, "script": headless + with_script}.get(victim, headless)
    return Setup(base, defs=["debug.faults=yes", "engine.workers=2"])


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A small clip, and a script that runs (sleeping) until it is stopped."""
    where = tmp_path_factory.mktemp("media")
    script = where / "sleeper.py"
    script.write_text("import time\ntime.sleep(60)\n")
    yield write_video(where / "v.mkv", CLIP_FRAMES, "ffv1"), script


def reach(inst: Instance, phase: str, holder: Holder | None, victim: str, video: Path) -> None:
    """Bring ``inst`` into ``phase`` (its holder, if any, attached), ready for the kill."""
    if phase == "starting":
        # connected (heartbeating) and waiting for its turn: welcomed, not yet READY
        wait_for(
            lambda: (
                (s := sub_state(inst, victim))["state"] == "starting"
                and s["heartbeat_age_s"] is not None
            ),
            10,
            f"{victim} connected and waiting to start",
        )
        assert inst.status()["phase"] == "starting"
    elif phase == "barrier":
        wait_for(lambda: inst.status()["phase"] == "opening", 10, "the opening barrier")
    elif phase == "stopping":
        inst.wait_running()
        if victim == "script":  # held in the closing barrier: the player acks nothing
            inst.request("appstate", "stop")
            wait_for(lambda: inst.status()["phase"] == "closing", 10, "the closing barrier")
        else:
            assert holder is not None
            inst.request("appstate", "stop")
            wait_for(
                lambda: (
                    inst.status()["phase"] == "stopping"
                    and sub_state(inst, holder.name)["state"] == "stopping"
                ),
                10,
                "the orderly stop, held at its first subsystem",
            )
        assert sub_state(inst, victim)["state"] == "running"
    else:
        inst.wait_running()
        if phase in ("render", "playback"):
            build(inst, [video], [{"media": "m1", "track": "t1", "position": 0}])
            if phase == "render":
                inst.request("engine", "slow", {"first": 3, "last": CLIP_FRAMES, "ms": 200})
                out = inst.rd.path.with_name(inst.rd.path.name + ".render.mkv")
                inst.request("player", "render", {"output": str(out), "codec": "ffv1"})
            else:
                inst.request("player", "play", {"rate": "5"})  # 40 frames: 8 s
            wait_for(
                lambda: any(
                    s["state"] == "running" and s["frames"] > 0
                    for s in inst.request("player", "streams")
                ),
                10,
                f"a {phase} under way",
            )


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("victim", VICTIMS)
def test_sigkill_of_a_subsystem_ends_as_documented_and_leaves_nothing(
    victim: str, phase: str, media: tuple[Path, Path]
) -> None:
    setup = setup_for(victim, phase, media[1])
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
