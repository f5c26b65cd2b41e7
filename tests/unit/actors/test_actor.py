"""The actor base: dispatch to on_<name>, the commands every subsystem has, fault injection."""

from __future__ import annotations

import os
from typing import Any

import pytest

from lumiera.actors import Actor, ActorContext, command
from lumiera.config import load
from lumiera.errors import BadArguments, FaultsDisabled, UnknownCommand


class Mixer(Actor):
    """A subsystem with a command and some state."""

    name = "mixer"
    summary = "mixes audio"

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__(ctx)
        self.gain = 1.0

    @command
    def on_set_gain(self, *, gain: float, channel: int | None = None) -> dict[str, Any]:
        """Set the gain of one channel, or of all."""
        self.gain = gain
        return {"gain": gain, "channel": channel}

    def describe_state(self) -> dict[str, Any]:
        return {"gain": self.gain}


def context(*defs: str, ended: list[str | None] | None = None) -> ActorContext:
    ctx = ActorContext(name="mixer", instance="t1", config=load(defs=defs), options={})
    if ended is not None:
        ctx.end = ended.append
    return ctx


def test_a_request_is_dispatched_to_the_handler_named_after_it():
    mixer = Mixer(context())
    assert mixer.handle("set_gain", {"gain": 0.5, "channel": 2}) == {"gain": 0.5, "channel": 2}
    assert mixer.gain == 0.5


def test_the_arguments_are_validated_before_the_handler_runs():
    mixer = Mixer(context())
    for args in ({}, {"gain": "loud"}, {"gain": 1.0, "pan": 0}, {"gain": True}):
        with pytest.raises(BadArguments):
            mixer.handle("set_gain", args)
    assert mixer.gain == 1.0


def test_an_unknown_command_is_refused_naming_the_subsystem_and_its_commands():
    with pytest.raises(UnknownCommand) as err:
        Mixer(context()).handle("mute", {})
    assert str(err.value) == "mixer has no command 'mute' (has: describe, fault, ping, set_gain)"


def test_every_actor_answers_ping_with_its_name_and_pid():
    pong = Mixer(context()).handle("ping", {})
    assert pong["pong"] is True
    assert pong["name"] == "mixer"
    assert pong["pid"] == os.getpid()
    assert isinstance(pong["ts"], float)


def test_describe_shows_the_summary_the_commands_and_the_subsystem_state():
    mixer = Mixer(context())
    info = mixer.handle("describe", {})
    assert info["name"] == "mixer"
    assert info["summary"] == "mixes audio"
    assert info["attached"] is False
    assert info["uptime_s"] is None
    assert info["gain"] == 1.0
    assert info["commands"]["set_gain"] == "Set the gain of one channel, or of all."
    assert set(info["commands"]) == {"describe", "fault", "ping", "set_gain"}


def test_describe_reports_the_uptime_once_started():
    mixer = Mixer(context())
    mixer.started_at = 0.0
    assert mixer.handle("describe", {})["uptime_s"] > 0


def test_the_fault_command_is_refused_unless_faults_are_enabled():
    with pytest.raises(FaultsDisabled, match=r"set debug\.faults = yes"):
        Mixer(context()).handle("fault", {"kind": "raise"})


def test_an_enabled_fault_of_kind_raise_raises_from_the_handler():
    with pytest.raises(RuntimeError, match="fault injected: raise"):
        Mixer(context("debug.faults=yes")).handle("fault", {"kind": "raise"})


def test_an_enabled_fault_of_kind_end_announces_a_regular_end():
    ended: list[str | None] = []
    mixer = Mixer(context("debug.faults=yes", ended=ended))
    assert mixer.handle("fault", {"kind": "end"}) == {"ending": True}
    assert mixer.handle("fault", {"kind": "end_error"}) == {"ending": True}
    assert ended == [None, "fault injected: end with error"]


def test_an_unknown_fault_kind_is_refused():
    with pytest.raises(BadArguments, match="fault: unknown kind 'melt'"):
        Mixer(context("debug.faults=yes")).handle("fault", {"kind": "melt"})


def test_the_fault_arguments_are_checked_like_any_other():
    with pytest.raises(BadArguments, match=r"fault\.code: str is not int"):
        Mixer(context("debug.faults=yes")).handle("fault", {"kind": "exit", "code": "1"})


def test_the_hooks_do_nothing_by_default():
    mixer = Mixer(context())
    mixer.on_start()
    mixer.on_stop()
    mixer.on_failure(RuntimeError("x"))
    assert mixer.gain == 1.0
    assert mixer.owner == "mixer"


def test_every_shipped_subsystem_actor_answers_ping_and_describe():
    from lumiera.actors.process import actor_class
    from lumiera.subsystems import SUBSYSTEMS

    for name, spec in SUBSYSTEMS.items():
        cls = actor_class(spec.module)
        actor = cls(ActorContext(name=name, instance="t1", config=load(), options={}))
        assert actor.handle("ping", {})["name"] == name
        assert actor.handle("describe", {})["name"] == name
        assert {"ping", "describe", "fault"} <= set(cls.commands)
