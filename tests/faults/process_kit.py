"""What the process half of the fault matrix shares: phases held still, and the end checked.

A phase of an instance's life is hit deterministically by *holding* it there:

- ``starting``: ``up --debug H`` for a subsystem ``H`` that starts before the
  victim, and nobody attaches ``H``: the start order stalls at ``H`` (no timeout,
  PROTOCOL 11.7), every later subsystem is connected and waits for its turn
  (state ``starting``, before READY) for as long as the test likes;
- ``barrier``: ``H`` is attached by a :class:`Holder`, a fake subsystem process that
  says READY and never acknowledges ``ON_SESSION_START``: the instance stays in
  the barrier (phase ``opening``) for ``barrier_timeout``;
- ``closing``: the Holder acknowledges the opening barriers, never ``ON_SESSION_CLOSE``;
- ``stopping``: the Holder acknowledges every event but ignores an orderly
  ``stop``: as the last in start order it is stopped first, so the instance stays
  in phase ``stopping`` for ``grace_period``, every other subsystem still running;
- ``idle``, ``render``, ``playback``: the public state (``status``, the player's
  ``streams``) polled until the phase is there; a render is made long with the
  engine's ``slow`` fault, a playback long with a long clip.

The debugged subsystem ``H`` has no watchdog and its Holder ends when the
supervisor does (its pidfd) or when told to stop in an emergency, so the
holding costs nothing at the end. Run as ``python -m tests.faults.process_kit``
it is the Holder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lumiera import shm
from lumiera.testing import Instance, RuntimeDir, Tap, leftovers, synced_tap, wait_for
from tests.support import build
from tests.unit.vault.mediakit import write_video

# Tight enough that a hung process is seen soon, loose enough for a loaded 2-core machine.
FAST = ["appstate.heartbeat_interval=0.1", "appstate.watchdog_timeout=1.5"]
# Holding a phase: the bounds that would end it are far away.
HOLD = ["appstate.barrier_timeout=60", "appstate.grace_period=60"]
GONE_BOUND_S = 5.0  # every process of an instance gone this long after its end (or its kill)
HOLDER_LIFETIME_S = 60.0
PHASES = ["starting", "barrier", "idle", "render", "playback", "stopping"]
CLIP_FRAMES = 40  # a Holder never outlives this, whatever happens

HOLD_BARRIER = "hold-barrier"  # READY, then never ack ON_SESSION_START
HOLD_CLOSING = "hold-closing"  # READY, ack the opening events, never ack ON_SESSION_CLOSE
IGNORE_STOP = (
    "ignore-stop"  # ack everything; an orderly stop and SIGTERM ignored, an emergency obeyed
)


def state_of(pid: int) -> str:
    """The process state letter of ``pid`` ("gone" when there is none)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


def alive(pid: int) -> bool:
    return state_of(pid) not in ("gone", "Z", "X")


def children_of(pid: int) -> list[int]:
    """The live direct children of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def wait_gone(pids: list[int], bound: float = GONE_BOUND_S) -> float:
    """Wait until none of ``pids`` lives; returns how long that took (fails past ``bound``)."""
    t0 = time.monotonic()
    wait_for(
        lambda: not [p for p in pids if alive(p)],
        bound,
        f"processes {[p for p in pids if alive(p)]} gone",
        every=0.01,
    )
    return time.monotonic() - t0


def sub_state(inst: Instance, name: str) -> dict[str, Any]:
    for s in inst.status()["subsystems"]:
        if s["name"] == name:
            return dict(s)
    raise LookupError(name)


def assert_clean(inst: Instance, pids: list[int]) -> None:
    """Nothing of the instance is left: no process, no file in its directory, no segment."""
    wait_gone(pids)
    assert leftovers(inst.rd) == [], leftovers(inst.rd)
    if inst.rd.path.exists():
        assert list(inst.rd.path.iterdir()) == []
    assert shm.list_segments(inst.rd.instance) == []


class Holder:
    """A fake debugged subsystem ``name`` attached to ``rd`` (see the module's doc)."""

    def __init__(self, rd: RuntimeDir, name: str, mode: str) -> None:
        self.name = name
        cmd = [sys.executable, "-m", "tests.faults.process_kit", name, str(rd.path), mode]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def close(self) -> int:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.proc.wait(timeout=GONE_BOUND_S)
        self.proc.kill()
        return self.proc.wait()


@contextlib.contextmanager
def holding(inst: Instance, name: str, mode: str) -> Iterator[Holder]:
    """A Holder for ``name`` (started with ``--debug name``), attached once it is waited for."""
    wait_for(lambda: sub_state(inst, name)["state"] == "waiting", 10, f"{name} waiting")
    holder = Holder(inst.rd, name, mode)
    try:
        yield holder
    finally:
        holder.close()


@contextlib.contextmanager
def tapped(inst: Instance) -> Iterator[Tap]:
    """A synced Tap on the lifecycle and the subsystems' states of a started instance."""
    inst.wait_up()
    tap = synced_tap(inst.rd, ["lifecycle.", "subsystem.", "appstate."])
    try:
        yield tap
    finally:
        tap.close()


@dataclass
class Setup:
    """How to start the instance for one cell, and which subsystem holds its phase."""

    args: list[str]
    holder: str | None = None
    mode: str = ""
    defs: list[str] = field(default_factory=list)


def setup_for(victim: str, phase: str, script: Path, join: str = "") -> Setup:
    """The command line that lets ``phase`` be held with ``victim`` in it.

    ``join``: the scheduler a render node (victim ``netnode``) joins.
    """
    headless = ["--headless"]
    gui: list[str] = []
    with_script = ["--script", str(script)]
    node = ["--join", join]
    if phase == "starting":  # the holder is before the victim in start order, never attached
        args, holder = {
            "engine": (gui, "session"),  # session, engine, player, gui
            "session": (headless, "engine"),  # engine, session, player
            "player": (headless, "engine"),
            "gui": (gui, "player"),
            "script": (headless + with_script, "player"),
            "netnode": (node, "player"),  # engine, session, player, netnode
        }[victim]
        return Setup([*args, "--debug", holder], holder)
    if phase in ("barrier", "stopping"):
        # The holder is the last in start order (stopped first): the script; for the
        # script and the render node, which are last themselves, the player holding
        # the closing barrier instead (the first step of an orderly stop).
        if victim in ("script", "netnode"):
            base = node if victim == "netnode" else [*headless, *with_script]
            holder, mode = "player", (HOLD_BARRIER if phase == "barrier" else HOLD_CLOSING)
        else:
            base = [*(gui if victim == "gui" else headless), *with_script]
            holder, mode = "script", (HOLD_BARRIER if phase == "barrier" else IGNORE_STOP)
        return Setup([*base, "--debug", holder], holder, mode, HOLD)
    base = {"gui": gui, "script": headless + with_script, "netnode": node}.get(victim, headless)
    return Setup(base, defs=["debug.faults=yes", "engine.workers=2"])


def make_media(where: Path) -> tuple[Path, Path]:
    """A small clip, and a script that runs (sleeping) until it is stopped."""
    script = where / "sleeper.py"
    script.write_text("import time\ntime.sleep(60)\n")
    return write_video(where / "v.mkv", CLIP_FRAMES, "ffv1"), script


def render_output(inst: Instance) -> Path:
    """Where ``reach`` has the instance render to: beside its runtime directory."""
    return inst.rd.path.with_name(inst.rd.path.name + ".render.mkv")


def render_files(inst: Instance) -> list[str]:
    """What a render of ``reach`` left: the output, or its partial (``.NAME.partial``)."""
    out = render_output(inst)
    return [p.name for p in (out, out.with_name(f".{out.name}.partial")) if p.exists()]


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
        if victim in ("script", "netnode"):  # held in the closing barrier by the player
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
                out = render_output(inst)
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


def _hold(name: str, path: str, mode: str) -> int:
    """The Holder's process: the handshake, then READY; acks and stops as ``mode`` says."""
    import zmq

    from lumiera.bus import messages as m
    from lumiera.runtime_dir import RuntimeDir, read_pid

    if mode == IGNORE_STOP:  # as a subsystem deaf to SIGTERM would be
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    rd = RuntimeDir(Path(path), "held", default_location=False)
    supervisor = read_pid(rd)
    if supervisor is None:
        return 69
    pidfd = os.pidfd_open(supervisor)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 500)
    sock.connect(rd.endpoint("control"))
    sock.send(m.encode(m.Hello(name, os.getpid(), attached=True)))
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(pidfd, zmq.POLLIN)
    deadline = time.monotonic() + HOLDER_LIFETIME_S
    try:
        while time.monotonic() < deadline:
            events = dict(poller.poll(100))
            if pidfd in events:
                return 71  # the supervisor is gone
            if sock not in events:
                continue
            msg = m.decode(sock.recv())
            if isinstance(msg, m.Error):
                print(f"holder refused: {msg.message}", flush=True)
                return 1
            if isinstance(msg, m.Start):
                sock.send(m.encode(m.Ready()))
            elif isinstance(msg, m.Event):
                held = mode == HOLD_BARRIER or (
                    mode == HOLD_CLOSING and msg.event == "ON_SESSION_CLOSE"
                )
                if not held:
                    sock.send(m.encode(m.Ack(msg.event)))
            elif isinstance(msg, m.Stop) and (msg.emergency or mode != IGNORE_STOP):
                return 0
        return 124
    finally:
        sock.close()
        ctx.term()
        os.close(pidfd)


if __name__ == "__main__":
    sys.exit(_hold(sys.argv[1], sys.argv[2], sys.argv[3]))
