"""The supervisor's rules for starting and orderly ends, played against fake processes.

These are upstream Lumiera's SubsystemRunner scenarios mapped to processes:
a single subsystem's whole cycle, declined starts, a dependency graph started
depth-first, regular ends, and the ``--debug`` subsystem. Failures and
emergencies are in test_runner_failures.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pytest

from lumiera.appstate.actions import (
    ExitStatus,
    Finish,
    Kill,
    Publish,
    SendEvent,
    SendStart,
    SendStop,
    Spawn,
)
from lumiera.appstate.runner import Phase, Runner, State
from lumiera.bus.topics import LifecycleEvent, PhaseChanged, Shutdown, SubsystemState
from lumiera.lifecycle import Lifecycle
from lumiera.subsystems import Options, start_order
from tests.unit.appstate.fake_processes import TIMEOUTS, Behaviour, Said, World, spec, table

SOLO = table(spec("solo", start=True))
# Declared so that depth-first order (core, model, io, render, ui) differs from
# the table's order (core, io, model, render, ui).
GRAPH = table(
    spec("core"),
    spec("io"),
    spec("model", "core"),
    spec("render", "io", "core"),
    spec("ui", "model", "render", start=True),
)
GRAPH_ORDER = ["core", "model", "io", "render", "ui"]

OPENING = ["ON_SESSION_START", "ON_SESSION_INIT", "ON_SESSION_READY"]
CLOSING = ["ON_SESSION_CLOSE", "ON_SESSION_END"]
WHOLE_LIFE = ["ON_GLOBAL_INIT", *OPENING, *CLOSING, "ON_GLOBAL_SHUTDOWN"]


def phase(r: Runner) -> Phase:
    return r.phase  # a call, so a type checker does not pin the phase between inputs


def running_graph(how: Mapping[str, Behaviour] | None = None) -> World:
    w = World(GRAPH_ORDER, GRAPH, how=how)
    w.begin()
    assert w.phase() is Phase.RUNNING
    return w


# -- a single subsystem's whole cycle --------------------------------------------------


def test_a_single_subsystem_is_spawned_started_on_hello_and_running_after_the_session_barriers():
    r = Runner(["solo"], TIMEOUTS, table=SOLO)

    out = r.begin(0.0)
    assert [a for a in out if not isinstance(a, Publish)] == [Spawn("solo")]
    assert phase(r) is Phase.STARTING

    r.spawned("solo", 42)
    assert r.hello("solo", 42, 0.1) == [SendStart("solo")]
    assert r.subs["solo"].state is State.STARTING

    out = r.ready("solo", True, 0.2)
    assert (
        Publish("subsystem.solo.running", SubsystemState(name="solo", state="running", pid=42))
        in out
    )
    assert [a for a in out if isinstance(a, SendEvent)] == [
        SendEvent("solo", Lifecycle.ON_SESSION_START)
    ]
    assert phase(r) is Phase.OPENING

    out = r.ack("solo", "ON_SESSION_START", 0.3)
    assert SendEvent("solo", Lifecycle.ON_SESSION_INIT) in out
    out = r.ack("solo", "ON_SESSION_INIT", 0.3)
    assert SendEvent("solo", Lifecycle.ON_SESSION_READY) in out
    out = r.ack("solo", "ON_SESSION_READY", 0.3)
    assert out == [Publish("appstate.phase", PhaseChanged(phase="running"))]
    assert phase(r) is Phase.RUNNING


def test_a_single_subsystem_cycle_shuts_down_through_the_closing_barriers_and_finishes_with_0():
    r = Runner(["solo"], TIMEOUTS, table=SOLO)
    r.begin(0.0)
    r.hello("solo", 42, 0.0)
    r.ready("solo", True, 0.0)
    for event in OPENING:
        r.ack("solo", event, 0.0)

    out = r.shutdown("SIGINT received", 1.0)
    assert Publish("appstate.shutdown", Shutdown(reason="SIGINT received")) in out
    assert SendEvent("solo", Lifecycle.ON_SESSION_CLOSE) in out
    assert phase(r) is Phase.CLOSING
    out = r.ack("solo", "ON_SESSION_CLOSE", 1.1)
    assert SendEvent("solo", Lifecycle.ON_SESSION_END) in out
    out = r.ack("solo", "ON_SESSION_END", 1.2)
    assert SendStop("solo", "shutdown") in out
    assert phase(r) is Phase.STOPPING

    out = r.exited("solo", ExitStatus(code=0), 1.3)
    assert out[-1] == Finish(0)
    assert (
        Publish("lifecycle.ON_GLOBAL_SHUTDOWN", LifecycleEvent(event="ON_GLOBAL_SHUTDOWN")) in out
    )
    assert phase(r) is Phase.DONE and r.exit_code == 0 and r.errors == []


def test_an_orderly_run_publishes_every_lifecycle_event_in_order_and_never_an_emergency():
    w = World(["solo"], SOLO)
    w.begin()
    w.shutdown()

    assert w.finish == 0
    assert w.lifecycle() == WHOLE_LIFE
    assert "lifecycle.ON_EMERGENCY_EXIT" not in w.topics()
    assert w.runner.emergency is None


def test_an_event_is_sent_only_once_every_running_subsystem_acked_the_one_before():
    w = World(GRAPH_ORDER, GRAPH, how={"model": Behaviour(acks=False)})
    w.begin()
    assert w.phase() is Phase.OPENING
    assert {n: w.events_sent(n) for n in GRAPH_ORDER} == {n: OPENING[:1] for n in GRAPH_ORDER}

    w.ack("model", "ON_SESSION_INIT")  # not the event it is asked for: ignored
    assert w.events_sent("core") == OPENING[:1]
    w.ack("model", "ON_SESSION_START")
    assert w.events_sent("core") == OPENING[:2]


def test_a_lifecycle_event_is_sent_to_the_subsystems_in_start_order():
    w = running_graph()
    sent = [(a.name, a.event) for a in w.actions(SendEvent)]
    assert sent[: len(GRAPH_ORDER)] == [(n, Lifecycle.ON_SESSION_START) for n in GRAPH_ORDER]


# -- declined starts ---------------------------------------------------------------------


def test_a_root_that_declines_to_start_is_neither_spawned_nor_started():
    subsystems = table(spec("wanted", start=True), spec("declined"))
    order = start_order(Options(), subsystems)
    assert order == ["wanted"]

    w = World(order, subsystems)
    w.begin()
    assert w.names(Spawn) == ["wanted"]
    assert w.names(SendStart) == ["wanted"]
    assert "declined" not in w.runner.subs


def test_a_declined_subsystem_still_starts_when_a_selected_one_depends_on_it():
    subsystems = table(spec("needed"), spec("wanted", "needed", start=True))
    order = start_order(Options(), subsystems)
    assert order == ["needed", "wanted"]

    w = World(order, subsystems)
    w.begin()
    assert w.names(SendStart) == ["needed", "wanted"]
    assert w.phase() is Phase.RUNNING


def test_a_runner_with_nothing_to_start_finishes_at_once_with_0():
    subsystems = table(spec("declined"))
    w = World(start_order(Options(), subsystems), subsystems)
    w.begin()

    assert w.actions(Spawn) == []
    assert w.finish == 0


def test_a_runner_with_nothing_to_start_ends_in_order_and_ignores_a_later_shutdown():
    w = World([], {})
    w.begin()
    assert w.lifecycle() == ["ON_GLOBAL_INIT", "ON_GLOBAL_SHUTDOWN"]
    assert w.phase() is Phase.DONE and w.runner.next_deadline() is None

    assert w.runner.shutdown("SIGINT received", 1.0) == []
    assert w.finish == 0


# -- a dependency graph -----------------------------------------------------------------


def test_every_process_is_spawned_at_once_before_any_subsystem_is_started():
    w = World(GRAPH_ORDER, GRAPH, how={n: Behaviour(connects=False) for n in GRAPH_ORDER})
    w.begin()
    assert w.names(Spawn) == GRAPH_ORDER
    assert w.actions(SendStart) == []


def test_a_dependency_graph_is_started_depth_first_in_declared_order():
    assert start_order(Options(), GRAPH) == GRAPH_ORDER
    w = running_graph()
    assert w.names(SendStart) == GRAPH_ORDER


def test_a_dependent_is_started_only_after_each_of_its_prerequisites_said_ready():
    w = World(GRAPH_ORDER, GRAPH, how={n: Behaviour(readies=False) for n in GRAPH_ORDER})
    w.begin()
    for i, name in enumerate(GRAPH_ORDER):
        assert w.names(SendStart) == GRAPH_ORDER[: i + 1], "one start at a time"
        w.advance(w.now + 1.0)  # waiting longer changes nothing
        assert w.names(SendStart) == GRAPH_ORDER[: i + 1]
        w.ready(name)
    for name in GRAPH_ORDER:
        started = w.at(SendStart(name))
        for dep in GRAPH[name].depends:
            assert w.at(Said(dep, "ready")) < started, f"{name} started before {dep} was ready"
    assert w.phase() is Phase.RUNNING


def test_a_subsystem_that_connects_late_is_started_when_it_says_hello():
    w = World(GRAPH_ORDER, GRAPH, how={"model": Behaviour(connects=False)})
    w.begin()
    assert w.names(SendStart) == ["core"]
    w.advance(3.0)
    w.hello("model")
    assert w.names(SendStart) == GRAPH_ORDER
    assert w.phase() is Phase.RUNNING


# -- orderly ends -------------------------------------------------------------------------


def test_subsystems_are_stopped_in_the_reverse_of_their_start_order_one_after_the_other():
    w = running_graph()
    w.shutdown()

    assert w.names(SendStop) == list(reversed(GRAPH_ORDER))
    stopped = list(reversed(GRAPH_ORDER))
    for earlier, later in itertools.pairwise(stopped):
        assert w.at(Said(earlier, "exit: exit code 0")) < w.at(SendStop(later, "shutdown"))
    assert w.finish == 0
    assert all(s.state is State.STOPPED for s in w.runner.subs.values())


def test_a_subsystem_that_ignores_stop_past_its_grace_is_killed_and_the_run_exits_1():
    w = running_graph(how={"render": Behaviour(stops=False)})
    w.shutdown()
    assert w.names(SendStop) == ["ui", "render"]

    w.advance(w.now + TIMEOUTS.grace - 0.5)
    assert w.actions(Kill) == []
    w.advance(w.now + 0.5)
    assert w.names(Kill) == ["render"]
    assert w.names(SendStop) == ["ui", "render", "io", "model", "core"]
    assert w.finish == 1
    assert w.runner.errors == ["render did not stop within 3.0 s; killed"]
    assert "lifecycle.ON_EMERGENCY_EXIT" not in w.topics()


def test_a_subsystem_that_survives_sigkill_during_an_orderly_stop_is_given_up_after_kill_wait():
    w = running_graph(how={"render": Behaviour(stops=False, dies_when_killed=False)})
    w.shutdown()

    assert w.run_to_end() == 1
    assert w.runner.errors[-1] == "render (pid 1003) could not be confirmed dead"
    assert w.names(SendStop) == ["ui", "render", "io", "model", "core"]


def test_a_shutdown_during_the_start_stops_what_is_connected_and_kills_what_is_not():
    w = World(
        GRAPH_ORDER, GRAPH, how={"model": Behaviour(readies=False), "ui": Behaviour(connects=False)}
    )
    w.begin()
    assert w.phase() is Phase.STARTING
    w.shutdown()

    assert w.names(Kill) == ["ui"]
    assert w.names(SendStop) == ["render", "io", "model", "core"]
    assert w.lifecycle() == ["ON_GLOBAL_INIT", "ON_GLOBAL_SHUTDOWN"]
    assert w.finish == 0


def test_a_second_shutdown_while_shutting_down_does_nothing():
    w = running_graph(how={"core": Behaviour(stops=False)})
    w.shutdown()
    assert w.phase() is Phase.STOPPING
    assert w.runner.shutdown("SIGTERM received", w.now) == []


def test_a_regular_end_records_the_error_the_subsystem_announced():
    w = running_graph()
    w.ending("ui", "script raised ValueError")
    w.exit("ui", 0)
    assert w.runner.errors == ["ui: script raised ValueError"]
    assert w.runner.emergency is None
    assert w.runner.subs["ui"].state is State.STOPPED


def test_the_regular_end_of_a_running_subsystem_is_an_orderly_shutdown_that_exits_0():
    w = running_graph()
    w.exit("ui", 0)  # e.g. a script finished

    assert w.phase() is Phase.DONE
    for name in GRAPH_ORDER[:-1]:
        assert w.events_sent(name) == OPENING + CLOSING
    assert w.names(SendStop) == ["render", "io", "model", "core"]
    assert w.lifecycle() == WHOLE_LIFE
    assert w.finish == 0
    assert w.runner.errors == []


def test_the_regular_end_of_the_only_subsystem_finishes_the_run_with_0():
    w = World(["solo"], SOLO)
    w.begin()
    w.exit("solo", 0)
    assert w.finish == 0


def test_a_regular_end_with_an_error_is_still_orderly_but_exits_1():
    w = running_graph()
    w.ending("ui", "script raised ValueError")
    w.exit("ui", 0)

    assert w.published("appstate.problem") == [{"message": "ui: script raised ValueError"}]
    assert w.names(SendStop) == ["render", "io", "model", "core"]
    assert "lifecycle.ON_EMERGENCY_EXIT" not in w.topics()
    assert w.finish == 1


# -- the --debug subsystem --------------------------------------------------------------


def test_the_debug_subsystem_is_not_spawned_but_waits_for_lumiera_run():
    w = World(GRAPH_ORDER, GRAPH, debug="model")
    w.begin()

    assert w.names(Spawn) == ["core", "io", "render", "ui"]
    assert w.runner.subs["model"].state is State.WAITING
    assert w.published("subsystem.model.waiting") == [
        {"name": "model", "state": "waiting", "pid": None}
    ]


def test_the_dependents_of_the_debug_subsystem_wait_until_it_attaches_and_is_ready():
    w = World(GRAPH_ORDER, GRAPH, debug="model")
    w.begin()
    w.advance(30.0)  # no start timeout runs while the debugged one waits
    assert w.names(SendStart) == ["core"]
    assert w.phase() is Phase.STARTING

    w.attach("model")
    assert w.names(SendStart) == GRAPH_ORDER
    assert w.phase() is Phase.RUNNING


def test_the_debug_subsystem_has_no_start_timeout():
    w = World(GRAPH_ORDER, GRAPH, debug="model", how={"model": Behaviour(readies=False)})
    w.begin()
    w.attach("model")
    w.advance(60.0)
    assert w.runner.subs["model"].state is State.STARTING
    assert w.runner.errors == []


def test_the_watchdog_does_not_watch_the_debug_subsystem():
    w = World(GRAPH_ORDER, GRAPH, debug="model", how={"model": Behaviour(beats=False)})
    w.begin()
    w.attach("model")
    w.advance(60.0)  # stopped at a breakpoint for a minute

    assert w.actions(Kill) == []
    assert w.phase() is Phase.RUNNING
    assert w.runner.next_deadline() == pytest.approx(60.0 + TIMEOUTS.watchdog)


def test_the_end_of_the_debug_subsystem_returns_it_to_waiting_without_a_shutdown():
    w = World(GRAPH_ORDER, GRAPH, debug="model")
    w.begin()
    w.attach("model")
    w.exit("model", 70)  # it crashed under the debugger

    assert w.runner.subs["model"].state is State.WAITING
    assert w.phase() is Phase.RUNNING
    assert w.actions(SendStop) == [] and w.actions(Kill) == [] and w.finish is None
    assert "lifecycle.ON_EMERGENCY_EXIT" not in w.topics()


def test_the_debug_subsystem_can_attach_again_and_is_started_at_once():
    w = World(GRAPH_ORDER, GRAPH, debug="model")
    w.begin()
    w.attach("model")
    w.exit("model", 0)
    assert w.runner.hello_refusal("model", attached=True) is None

    w.attach("model")
    assert w.names(SendStart).count("model") == 2
    assert w.runner.subs["model"].state is State.RUNNING


def test_a_shutdown_while_the_debug_subsystem_waits_skips_it_and_exits_0():
    w = World(GRAPH_ORDER, GRAPH, debug="ui")
    w.begin()
    w.shutdown()

    assert w.finish == 0
    assert "ui" not in w.names(SendStop)
    assert w.runner.subs["ui"].state is State.WAITING


def test_an_attached_debug_subsystem_is_stopped_in_its_turn_and_left_waiting():
    w = World(GRAPH_ORDER, GRAPH, debug="model")
    w.begin()
    w.attach("model")
    w.shutdown()

    assert w.names(SendStop) == list(reversed(GRAPH_ORDER))
    assert w.runner.subs["model"].state is State.WAITING
    assert w.finish == 0


def test_an_emergency_while_the_debug_subsystem_is_being_stopped_ends_once_it_detaches():
    # Found by tests/faults (kill matrix, orderly stop): the run waited in its emergency
    # forever, because the detach only moved the orderly stop queue on.
    w = World(GRAPH_ORDER, GRAPH, debug="model", how={"model": Behaviour(stops=False)})
    w.begin()
    w.attach("model")
    w.shutdown()
    assert w.runner.subs["model"].state is State.STOPPING  # told to stop, not yet gone
    w.crash("core")  # an emergency meanwhile
    assert phase(w.runner) is Phase.EMERGENCY and w.finish is None
    w.exit("model", 0)  # the debugged process detaches
    assert w.finish == 2


# -- hello refusals -------------------------------------------------------------------------


def test_a_hello_from_a_subsystem_not_in_this_instance_is_refused():
    w = World(GRAPH_ORDER, GRAPH)
    w.begin()
    assert (
        w.runner.hello_refusal("ghost", False) == "subsystem 'ghost' is not part of this instance"
    )


def test_an_attached_hello_for_a_subsystem_not_under_debug_is_refused():
    w = World(GRAPH_ORDER, GRAPH, how={"core": Behaviour(connects=False)})
    w.begin()
    assert w.runner.hello_refusal("core", True) == (
        "core is not waiting for `lumiera run` (start with --debug core)"
    )


def test_a_spawned_hello_for_the_debug_subsystem_is_refused():
    w = World(GRAPH_ORDER, GRAPH, debug="model")
    w.begin()
    assert w.runner.hello_refusal("model", False) == (
        "model is under --debug; only `lumiera run` may attach it"
    )


def test_a_second_hello_from_a_connected_subsystem_is_refused_naming_its_state():
    w = World(GRAPH_ORDER, GRAPH, how={"model": Behaviour(readies=False)})
    w.begin()
    assert w.runner.hello_refusal("core", False) == "core is running"
    assert w.runner.hello_refusal("model", False) == "model is starting"
    assert w.runner.hello_refusal("io", False) == "io is starting"


def test_a_hello_is_refused_before_the_start_and_once_the_instance_shuts_down():
    w = World(["solo"], SOLO)
    assert w.runner.hello_refusal("solo", False) == "the instance is init"
    w.begin()
    w.shutdown()
    assert w.runner.hello_refusal("solo", False) == "the instance is done"


# -- deadlines ----------------------------------------------------------------------------


def test_next_deadline_is_the_start_timeout_after_the_spawn_and_a_tick_before_it_does_nothing():
    w = World(["solo"], SOLO, how={"solo": Behaviour(connects=False)})
    w.begin()
    assert w.runner.next_deadline() == TIMEOUTS.start

    assert w.runner.tick(TIMEOUTS.start - 0.01) == []
    assert w.runner.subs["solo"].state is State.SPAWNED
    assert w.phase() is Phase.STARTING


def test_next_deadline_follows_the_heartbeats_of_running_subsystems():
    w = World(["solo"], SOLO)
    w.begin()
    assert w.runner.next_deadline() == TIMEOUTS.watchdog
    w.runner.heartbeat("solo", 7.0)
    assert w.runner.next_deadline() == 7.0 + TIMEOUTS.watchdog
    assert w.runner.tick(8.9) == []


def test_a_barrier_deadline_is_the_next_deadline_while_a_subsystem_has_not_acked():
    w = World(["solo"], SOLO, how={"solo": Behaviour(acks=False)})
    w.begin()
    w.runner.heartbeat("solo", 100.0)  # keep the watchdog out of the way
    assert w.runner.next_deadline() == TIMEOUTS.barrier


def test_there_is_no_deadline_once_the_runner_is_done():
    w = World(["solo"], SOLO)
    w.begin()
    w.shutdown()
    assert w.finish == 0
    assert w.runner.next_deadline() is None
    assert w.runner.tick(1000.0) == []


def test_a_barrier_timeout_is_recorded_as_an_error_and_makes_the_orderly_end_exit_1():
    w = running_graph()  # a fresh graph: acks come at once; now one stops acking
    w.behaviour["io"].acks = False
    w.shutdown()
    assert w.events_sent("core")[-1] == "ON_SESSION_CLOSE"

    w.advance(w.now + TIMEOUTS.barrier)
    message = "ON_SESSION_CLOSE: no acknowledgement from io within 5.0 s"
    assert w.runner.errors == [message]
    assert w.published("appstate.problem") == [{"message": message}]
    assert w.events_sent("core")[-1] == "ON_SESSION_END"

    assert w.run_to_end() == 1
    assert len(w.runner.errors) == 2


def test_an_opening_barrier_timeout_does_not_stop_the_start():
    w = World(GRAPH_ORDER, GRAPH, how={"io": Behaviour(acks=False)})
    w.begin()
    w.advance(3 * TIMEOUTS.barrier)

    assert w.phase() is Phase.RUNNING
    assert [e.split(":")[0] for e in w.runner.errors] == OPENING
    assert w.events_sent("core") == OPENING


# -- status ---------------------------------------------------------------------------------


def test_the_snapshot_shows_spawned_and_idle_subsystems_as_starting_with_their_pids():
    w = World(
        GRAPH_ORDER, GRAPH, how={"core": Behaviour(readies=False), "io": Behaviour(connects=False)}
    )
    w.begin()
    w.advance(1.0)
    snap = {s["name"]: s for s in w.runner.snapshot(w.now)}

    assert [s["name"] for s in w.runner.snapshot(w.now)] == GRAPH_ORDER
    assert {n: s["state"] for n, s in snap.items()} == dict.fromkeys(GRAPH_ORDER, "starting")
    assert snap["core"]["pid"] == 1000 and snap["core"]["heartbeat_age_s"] == 0.0
    assert snap["io"]["heartbeat_age_s"] is None
    assert snap["core"]["uptime_s"] is None


def test_the_snapshot_shows_uptime_of_running_subsystems_and_exits_of_ended_ones():
    w = running_graph()
    w.advance(2.5)
    snap = {s["name"]: s for s in w.runner.snapshot(w.now)}
    assert snap["ui"]["state"] == "running" and snap["ui"]["uptime_s"] == 2.5

    w.shutdown()
    snap = {s["name"]: s for s in w.runner.snapshot(w.now)}
    assert snap["ui"] | {"layer": "test"} == {
        "name": "ui",
        "layer": "test",
        "pid": None,
        "state": "stopped",
        "debug": False,
        "uptime_s": None,
        "heartbeat_age_s": None,
        "last_failure": None,
        "exit": "exit code 0",
    }
