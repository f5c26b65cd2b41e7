"""The supervisor's rules for failures: start failures, crashes, hangs and emergencies.

Upstream Lumiera's SubsystemRunner scenarios mapped to processes: a start that
raises, a start that claims success while not running, a dependency that
fails to start, and the emergency on a crash of a running subsystem.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping

from lumiera.appstate.actions import Kill, SendStart, SendStop
from lumiera.appstate.runner import MAX_REASON, Phase, State
from tests.unit.appstate.fake_processes import TIMEOUTS, Behaviour, World, spec, table

SOLO = table(spec("solo", start=True))
CHAIN = table(spec("vault"), spec("steam", "vault"), spec("stage", "steam", start=True))
CHAIN_ORDER = ["vault", "steam", "stage"]
BEFORE = 0.5  # one step of the fake clock before a deadline


def running_chain(clock: float = 0.0, how: Mapping[str, Behaviour] | None = None) -> World:
    w = World(CHAIN_ORDER, CHAIN, clock=clock, how=how)
    w.begin()
    assert w.phase() is Phase.RUNNING
    return w


def no_emergency(w: World) -> bool:
    return w.runner.emergency is None and "lifecycle.ON_EMERGENCY_EXIT" not in w.topics()


# -- a start that raises -----------------------------------------------------------------


def test_a_subsystem_that_exits_non_zero_before_ready_is_a_start_failure_that_exits_1():
    w = World(["solo"], SOLO, how={"solo": Behaviour(readies=False)})
    w.begin()
    w.exit("solo", 70)

    assert w.finish == 1
    assert w.runner.errors == ["solo failed to start: ended before it was ready (exit code 70)"]
    assert w.runner.subs["solo"].state is State.FAILED
    assert no_emergency(w)
    assert w.lifecycle() == ["ON_GLOBAL_INIT", "ON_GLOBAL_SHUTDOWN"]


def test_the_problem_a_subsystem_reported_before_it_exits_is_the_reason_of_its_start_failure():
    w = World(["solo"], SOLO, how={"solo": Behaviour(readies=False)})
    w.begin()
    w.problem("solo", "ValueError: no such session file")
    w.exit("solo", 70)

    reason = "ValueError: no such session file"
    assert w.runner.errors == [f"solo failed to start: {reason}"]
    assert w.published("subsystem.solo.failed") == [
        {"name": "solo", "state": "failed", "pid": 1000, "reason": reason}
    ]
    assert w.published("appstate.problem") == [{"message": f"solo failed to start: {reason}"}]
    assert w.runner.snapshot(w.now)[0]["last_failure"] == reason
    assert w.finish == 1


def test_a_start_failure_stops_the_rest_in_reverse_order_without_killing_anyone():
    w = World(CHAIN_ORDER, CHAIN, how={"steam": Behaviour(readies=False)})
    w.begin()
    w.exit("steam", 1)

    assert w.names(SendStop) == ["stage", "vault"]
    assert w.actions(Kill) == []
    assert w.finish == 1
    assert len(w.runner.errors) == 1
    assert no_emergency(w)


def test_a_subsystem_that_never_connects_is_killed_at_the_start_timeout():
    w = World(["solo"], SOLO, how={"solo": Behaviour(connects=False)})
    w.begin()
    w.advance(TIMEOUTS.start)

    assert w.names(Kill) == ["solo"]
    assert w.runner.errors == ["solo failed to start: did not connect within 10.0 s"]
    assert w.finish == 1
    assert no_emergency(w)


def test_a_subsystem_that_never_says_ready_is_killed_at_the_start_timeout():
    w = World(CHAIN_ORDER, CHAIN, how={"steam": Behaviour(readies=False)})
    w.begin()
    w.advance(TIMEOUTS.start - BEFORE)
    assert w.actions(Kill) == []
    w.advance(TIMEOUTS.start)

    assert w.names(Kill) == ["steam"]
    assert w.runner.errors == ["steam failed to start: did not say READY within 10.0 s"]
    assert w.names(SendStop) == ["stage", "vault"]
    assert w.finish == 1


# -- a start that claims success while not running -----------------------------------------


def test_ready_from_a_process_that_is_gone_is_a_start_failure_that_exits_1():
    w = World(["solo"], SOLO, how={"solo": Behaviour(readies=False)})
    w.begin()
    w.ready("solo", alive=False)

    assert w.runner.errors == ["solo failed to start: said READY but its process is not running"]
    assert w.runner.subs["solo"].state is State.FAILED
    assert w.names(Kill) == ["solo"]
    assert w.finish == 1
    assert no_emergency(w)


def test_ready_from_a_process_that_is_gone_never_opens_the_session():
    w = World(CHAIN_ORDER, CHAIN, how={"vault": Behaviour(readies=False)})
    w.begin()
    w.ready("vault", alive=False)

    assert w.names(SendStart) == ["vault"]
    assert "ON_SESSION_START" not in w.lifecycle()
    assert w.finish == 1


def test_a_late_ready_from_a_subsystem_that_already_failed_is_ignored():
    w = World(CHAIN_ORDER, CHAIN, how={"vault": Behaviour(readies=False, dies_when_killed=False)})
    w.begin()
    w.ready("vault", alive=False)
    w.ready("vault", alive=True)

    assert w.runner.subs["vault"].state is State.FAILED
    assert w.names(SendStart) == ["vault"]


# -- a dependency that fails to start -------------------------------------------------------


def test_a_dependency_that_fails_to_start_stops_its_connected_dependents_and_exits_1():
    w = World(CHAIN_ORDER, CHAIN, how={"vault": Behaviour(readies=False)})
    w.begin()
    assert [w.runner.subs[n].state for n in CHAIN_ORDER] == [State.STARTING, State.IDLE, State.IDLE]
    w.problem("vault", "OSError: no space left on device")
    w.exit("vault", 70)

    assert w.names(SendStop) == ["stage", "steam"]
    assert w.actions(Kill) == []
    assert w.names(SendStart) == ["vault"], "a dependent never starts"
    assert w.finish == 1
    assert no_emergency(w)


def test_a_dependency_that_fails_to_start_kills_dependents_that_have_not_connected_yet():
    w = World(
        CHAIN_ORDER,
        CHAIN,
        how={"vault": Behaviour(readies=False), "stage": Behaviour(connects=False)},
    )
    w.begin()
    w.exit("vault", 1)

    assert w.names(Kill) == ["stage"]
    assert w.names(SendStop) == ["steam"]
    assert w.finish == 1
    assert w.runner.errors == ["vault failed to start: ended before it was ready (exit code 1)"]
    assert no_emergency(w)


def test_a_dependency_that_fails_to_start_is_not_an_emergency_even_when_killed_by_a_signal():
    w = World(CHAIN_ORDER, CHAIN, how={"steam": Behaviour(readies=False)})
    w.begin()
    w.crash("steam", signal.SIGSEGV)

    assert w.runner.errors == [
        "steam failed to start: ended before it was ready (killed by SIGSEGV)"
    ]
    assert w.finish == 1
    assert no_emergency(w)


# -- the emergency on a crash ----------------------------------------------------------------


def test_a_running_subsystem_killed_by_a_signal_is_an_emergency_naming_it_its_signal_and_reason():
    w = running_chain()
    w.crash("steam", signal.SIGKILL)

    expected = {"subsystem": "steam", "exit_code": None, "signal": 9, "reason": "killed by SIGKILL"}
    assert w.runner.emergency == expected
    assert w.published("lifecycle.ON_EMERGENCY_EXIT") == [
        {"event": "ON_EMERGENCY_EXIT", **expected}
    ]


def test_in_an_emergency_every_survivor_is_told_to_stop_and_the_run_exits_2():
    w = running_chain()
    w.crash("steam")

    assert sorted(w.names(SendStop)) == ["stage", "vault"]
    assert {a.reason for a in w.actions(SendStop)} == {"emergency: steam killed by SIGKILL"}
    assert w.actions(Kill) == []
    assert w.finish == 2
    assert "ON_GLOBAL_SHUTDOWN" not in w.lifecycle()
    assert w.lifecycle()[-1] == "ON_EMERGENCY_EXIT"


def test_an_emergency_stop_is_marked_as_one_and_an_orderly_stop_is_not():
    w = running_chain(how={"vault": Behaviour(stops=False)})
    w.crash("stage")
    assert [(a.name, a.emergency) for a in w.actions(SendStop)] == [
        ("vault", True),
        ("steam", True),
    ]

    orderly = running_chain()
    orderly.shutdown()
    assert {a.emergency for a in orderly.actions(SendStop)} == {False}


def test_a_huge_problem_report_is_bounded_before_it_travels_on():
    w = running_chain()
    w.problem("stage", "RuntimeError: " + "x" * 100_000)
    w.exit("stage", 70)

    assert w.runner.emergency is not None
    assert len(w.runner.emergency["reason"]) == MAX_REASON
    assert all(len(a.reason) <= MAX_REASON for a in w.actions(SendStop))


def test_a_survivor_that_does_not_end_within_the_emergency_timeout_is_killed_and_the_run_exits_3():
    w = running_chain(how={"vault": Behaviour(stops=False)})
    w.advance(1.0)
    w.crash("steam")
    assert w.finish is None

    w.advance(1.0 + TIMEOUTS.emergency - BEFORE)
    assert w.actions(Kill) == []
    w.advance(1.0 + TIMEOUTS.emergency)
    assert w.names(Kill) == ["vault"]
    assert w.finish == 3
    assert "ON_GLOBAL_SHUTDOWN" not in w.lifecycle()


def test_a_running_subsystem_that_exits_non_zero_is_an_emergency_with_its_exit_code():
    w = running_chain()
    w.exit("stage", 3)

    assert w.runner.emergency == {
        "subsystem": "stage",
        "exit_code": 3,
        "signal": None,
        "reason": "exit code 3",
    }
    assert w.finish == 2


def test_a_running_subsystem_that_reported_a_problem_is_an_emergency_even_when_it_exits_0():
    w = running_chain()
    w.problem("stage", "RuntimeError: fault injected: raise")
    w.exit("stage", 0)

    assert w.runner.emergency is not None
    assert w.runner.emergency["reason"] == "RuntimeError: fault injected: raise"
    assert w.runner.subs["stage"].failure == "RuntimeError: fault injected: raise"
    assert w.finish == 2


def test_a_subsystem_that_fails_while_stopping_in_order_turns_the_end_into_an_emergency():
    w = running_chain()
    w.behaviour["stage"].stops = False
    w.shutdown()
    assert w.names(SendStop) == ["stage"]
    w.exit("stage", 70)

    assert w.runner.emergency is not None
    assert w.runner.emergency["reason"] == "failed while stopping (exit code 70)"
    assert w.finish == 2


def test_an_emergency_during_the_start_kills_processes_that_have_not_connected():
    w = World(
        CHAIN_ORDER,
        CHAIN,
        how={"steam": Behaviour(readies=False), "stage": Behaviour(connects=False)},
    )
    w.begin()
    w.crash("vault")  # running, so an emergency, not a start failure

    assert w.runner.emergency is not None
    assert w.names(Kill) == ["stage"]
    assert w.names(SendStop) == ["steam"]
    assert w.finish == 2


def test_a_survivor_still_starting_gets_the_whole_emergency_timeout_and_its_kill_exits_3():
    w = World(CHAIN_ORDER, CHAIN, how={"steam": Behaviour(readies=False, stops=False)})
    w.begin()
    w.advance(8.0)
    w.crash("vault")  # steam's start deadline (10 s) lies inside the emergency timeout

    w.advance(8.0 + TIMEOUTS.emergency - BEFORE)
    assert w.actions(Kill) == []
    assert w.run_to_end() == 3
    assert w.runner.errors == []


def test_a_second_failure_during_an_emergency_does_not_replace_the_first():
    w = running_chain(how={"vault": Behaviour(stops=False), "stage": Behaviour(stops=False)})
    w.crash("steam")
    w.exit("stage", 70)

    assert w.runner.emergency is not None
    assert w.runner.emergency["subsystem"] == "steam"
    assert w.published("lifecycle.ON_EMERGENCY_EXIT")[0]["subsystem"] == "steam"
    assert len(w.published("lifecycle.ON_EMERGENCY_EXIT")) == 1
    assert w.runner.subs["stage"].state is State.FAILED


def test_a_shutdown_asked_for_during_an_emergency_does_nothing():
    w = running_chain(how={"vault": Behaviour(stops=False)})
    w.crash("steam")
    assert w.runner.shutdown("SIGINT received", w.now) == []
    assert w.phase() is Phase.EMERGENCY


def test_an_emergency_survivor_that_survives_sigkill_is_given_up_after_kill_wait_with_exit_3():
    w = running_chain(how={"vault": Behaviour(stops=False, dies_when_killed=False)})
    w.crash("steam")

    assert w.run_to_end(limit=TIMEOUTS.emergency + 3 * TIMEOUTS.kill_wait) == 3
    assert w.runner.errors == ["vault (pid 1000) could not be confirmed dead"]


def test_a_hung_subsystem_that_survives_sigkill_still_lets_the_emergency_finish():
    w = running_chain(how={"steam": Behaviour(beats=False, dies_when_killed=False)})
    assert w.run_to_end(limit=30.0) == 2
    assert w.runner.errors == ["steam (pid 1001) could not be confirmed dead"]


# -- the watchdog -------------------------------------------------------------------------------


def test_a_running_subsystem_without_a_heartbeat_for_the_watchdog_timeout_is_killed_as_hung():
    w = running_chain(clock=100.0, how={"steam": Behaviour(beats=False)})
    w.advance(100.0 + TIMEOUTS.watchdog - BEFORE)
    assert w.actions(Kill) == []

    w.advance(100.0 + TIMEOUTS.watchdog)
    assert w.names(Kill) == ["steam"]
    assert w.runner.emergency == {
        "subsystem": "steam",
        "exit_code": None,
        "signal": None,
        "reason": "hung: no heartbeat for 2.00 s",
    }
    assert sorted(w.names(SendStop)) == ["stage", "vault"]
    assert w.finish == 2


def test_a_subsystem_busy_in_its_start_is_bounded_by_the_start_timeout_not_the_watchdog():
    w = World(CHAIN_ORDER, CHAIN, clock=100.0, how={"vault": Behaviour(readies=False)})
    w.begin()
    w.behaviour["vault"].beats = False  # on_start holds its main loop
    w.advance(100.0 + TIMEOUTS.start - BEFORE)
    assert w.actions(Kill) == []

    w.advance(100.0 + TIMEOUTS.start)
    assert w.names(Kill) == ["vault"]
    assert w.runner.errors == ["vault failed to start: did not say READY within 10.0 s"]


def test_heartbeats_keep_a_running_subsystem_alive_however_long_it_runs():
    w = running_chain()
    w.advance(600.0)
    assert w.actions(Kill) == []
    assert w.phase() is Phase.RUNNING


def test_a_subsystem_that_hangs_while_waiting_for_its_start_is_a_start_failure_not_an_emergency():
    w = World(
        CHAIN_ORDER,
        CHAIN,
        clock=100.0,
        how={"vault": Behaviour(readies=False), "stage": Behaviour(beats=False)},
    )
    w.begin()
    w.advance(100.0 + TIMEOUTS.watchdog)

    assert "stage" in w.names(Kill)
    assert w.runner.errors == ["stage failed to start: hung: no heartbeat for 2.00 s"]
    assert w.finish == 1
    assert no_emergency(w)


def test_the_hung_reason_gives_the_silence_even_when_the_clock_started_at_zero():
    w = running_chain(clock=0.0, how={"steam": Behaviour(beats=False)})
    w.advance(TIMEOUTS.watchdog)
    assert w.runner.emergency is not None
    assert w.runner.emergency["reason"] == "hung: no heartbeat for 2.00 s"
