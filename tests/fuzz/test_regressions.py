"""What the fuzzers found, kept as plain tests (tests/fuzz).

Each test names the request that went wrong and what it must do instead. A bug
not fixed yet is ``xfail(strict=True)`` with the reason, so its fix shows up
as an XPASS to turn into a normal test.
"""

from __future__ import annotations

import pytest

from lumiera.actors import ActorContext
from lumiera.appstate.commands import AppStateCommands
from lumiera.bus import messages as m
from lumiera.config import load
from lumiera.errors import BadArguments, LumieraError, MediaError, NotFound
from lumiera.steam.session import SessionActor


def test_add_media_with_a_nul_in_the_path_is_a_media_error_not_a_crash():
    """Found by test_handlers_fuzz (real probe): os.stat raised ValueError, the session crashed.

    ``lumiera send session add_media '{"path": "a\\u0000b"}'`` was answered
    ``internal`` and the session process ended (an emergency of the whole
    instance). Fixed in lumiera/steam/probe.py: a path with a NUL is a MediaError.
    """
    actor = SessionActor(ActorContext(name="session", instance="t", config=load(), options={}))
    actor.on_start()
    try:
        with pytest.raises(MediaError) as err:
            actor.handle("add_media", {"path": "/tmp/a\x00b.mov"})
        assert err.value.code == "media"
        assert actor.handle("describe", {})["session"]["media"] == []
    finally:
        actor.on_stop()


def _readable_error(error: LumieraError) -> None:
    """The error answer the runtime would send for ``error``, read back by a client."""
    answer = m.decode(m.encode(m.Error("1", error.code, str(error))))
    assert isinstance(answer, m.Error) and answer.code == error.code
    assert len(answer.message) <= m.TEXT_MAX and answer.message.endswith(m.CUT)


LONG_NAME = "x" * 70_000  # a str argument has no declared length; Text (a message) has 65536


def test_an_error_that_echoes_a_huge_argument_is_still_a_readable_answer_session():
    """Found by test_live_fuzz: session remove_transition {id: <70,000 characters>}."""
    actor = SessionActor(ActorContext(name="session", instance="t", config=load(), options={}))
    actor.on_start()
    try:
        with pytest.raises(NotFound) as err:
            actor.handle("remove_transition", {"id": LONG_NAME})
        _readable_error(err.value)
    finally:
        actor.on_stop()


def test_an_error_that_echoes_a_huge_argument_is_still_a_readable_answer_appstate():
    """Found by test_live_fuzz: appstate create_ring {name: <70,000 characters>} on control."""
    commands = AppStateCommands(
        rd=None,  # type: ignore[arg-type]  # create_ring refuses before it needs them
        config=load(),
        options=None,  # type: ignore[arg-type]
        runner=None,  # type: ignore[arg-type]
        rings=None,  # type: ignore[arg-type]
        started=0.0,
    )
    with pytest.raises(BadArguments) as err:
        commands.handle("create_ring", {"name": LONG_NAME})
    _readable_error(err.value)
