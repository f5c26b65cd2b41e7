"""The in-process lifecycle hook registry."""

from __future__ import annotations

import functools

import pytest

from lumiera.lifecycle import SESSION_CLOSING, SESSION_OPENING, Hooks, Lifecycle


def test_hooks_run_in_registration_order():
    hooks, ran = Hooks(), list[int]()
    for i in range(3):
        hooks.add(Lifecycle.ON_SESSION_START, functools.partial(ran.append, i))
    hooks.fire(Lifecycle.ON_SESSION_START)
    assert ran == [0, 1, 2]


def test_a_hook_added_twice_runs_once():
    hooks, ran = Hooks(), []

    def hook() -> None:
        ran.append("hook")

    hooks.add(Lifecycle.ON_GLOBAL_INIT, hook)
    hooks.add(Lifecycle.ON_GLOBAL_INIT, hook)
    hooks.fire(Lifecycle.ON_GLOBAL_INIT)
    assert ran == ["hook"]


def test_a_bound_method_added_twice_runs_once():
    ran: list[str] = []

    class Thing:
        def on_init(self) -> None:
            ran.append("init")

    hooks, thing = Hooks(), Thing()
    hooks.add(Lifecycle.ON_GLOBAL_INIT, thing.on_init)
    hooks.add(Lifecycle.ON_GLOBAL_INIT, thing.on_init)
    hooks.fire(Lifecycle.ON_GLOBAL_INIT)
    assert ran == ["init"]


def test_the_same_hook_may_serve_several_events():
    hooks, ran = Hooks(), []

    def hook() -> None:
        ran.append("hook")

    hooks.add(Lifecycle.ON_SESSION_START, hook)
    hooks.add(Lifecycle.ON_SESSION_END, hook)
    hooks.fire(Lifecycle.ON_SESSION_START)
    hooks.fire(Lifecycle.ON_SESSION_END)
    assert ran == ["hook", "hook"]


def test_firing_runs_only_the_hooks_of_that_event():
    hooks, ran = Hooks(), []
    hooks.add(Lifecycle.ON_SESSION_START, lambda: ran.append("start"))
    hooks.add(Lifecycle.ON_SESSION_END, lambda: ran.append("end"))
    hooks.fire(Lifecycle.ON_SESSION_END)
    assert ran == ["end"]


def test_a_basic_init_hook_added_after_the_event_fired_runs_at_once():
    hooks, ran = Hooks(), []
    hooks.fire(Lifecycle.ON_BASIC_INIT)
    hooks.add(Lifecycle.ON_BASIC_INIT, lambda: ran.append("late"))
    assert ran == ["late"]
    assert hooks.fired(Lifecycle.ON_BASIC_INIT)


def test_a_basic_init_hook_added_before_the_event_waits_for_it():
    hooks, ran = Hooks(), []
    hooks.add(Lifecycle.ON_BASIC_INIT, lambda: ran.append("early"))
    assert ran == []
    hooks.fire(Lifecycle.ON_BASIC_INIT)
    assert ran == ["early"]


def test_a_hook_for_another_event_added_after_it_fired_does_not_run_at_once():
    hooks, ran = Hooks(), []
    hooks.fire(Lifecycle.ON_SESSION_START)
    hooks.add(Lifecycle.ON_SESSION_START, lambda: ran.append("late"))
    assert ran == []
    assert hooks.fired(Lifecycle.ON_SESSION_START)
    assert not hooks.fired(Lifecycle.ON_SESSION_END)


def test_a_duplicate_basic_init_hook_added_after_it_fired_does_not_run_again():
    hooks, ran = Hooks(), []

    def hook() -> None:
        ran.append("hook")

    hooks.add(Lifecycle.ON_BASIC_INIT, hook)
    hooks.fire(Lifecycle.ON_BASIC_INIT)
    hooks.add(Lifecycle.ON_BASIC_INIT, hook)
    assert ran == ["hook"]


def test_a_raising_hook_propagates_and_the_later_hooks_do_not_run():
    hooks, ran = Hooks(), []

    def bad() -> None:
        raise RuntimeError("hook failed")

    hooks.add(Lifecycle.ON_SESSION_INIT, lambda: ran.append("first"))
    hooks.add(Lifecycle.ON_SESSION_INIT, bad)
    hooks.add(Lifecycle.ON_SESSION_INIT, lambda: ran.append("third"))
    with pytest.raises(RuntimeError, match="hook failed"):
        hooks.fire(Lifecycle.ON_SESSION_INIT)
    assert ran == ["first"]


def test_a_late_basic_init_hook_that_raises_propagates_to_the_caller_of_add():
    hooks = Hooks()
    hooks.fire(Lifecycle.ON_BASIC_INIT)

    def bad() -> None:
        raise ValueError("late hook failed")

    with pytest.raises(ValueError, match="late hook failed"):
        hooks.add(Lifecycle.ON_BASIC_INIT, bad)


def test_a_hook_added_while_an_event_fires_waits_for_the_next_firing():
    hooks, ran = Hooks(), []

    def adder() -> None:
        ran.append("adder")
        hooks.add(Lifecycle.ON_SESSION_START, lambda: ran.append("added"))

    hooks.add(Lifecycle.ON_SESSION_START, adder)
    hooks.fire(Lifecycle.ON_SESSION_START)
    assert ran == ["adder"]
    hooks.fire(Lifecycle.ON_SESSION_START)
    assert ran == ["adder", "adder", "added"]


def test_the_session_barriers_are_the_session_events_in_lifecycle_order():
    order = list(Lifecycle)
    assert list(SESSION_OPENING) + list(SESSION_CLOSING) == [
        e for e in order if e.name.startswith("ON_SESSION_")
    ]
    assert order[-1] is Lifecycle.ON_EMERGENCY_EXIT
    assert Lifecycle.ON_GLOBAL_SHUTDOWN == "ON_GLOBAL_SHUTDOWN"
