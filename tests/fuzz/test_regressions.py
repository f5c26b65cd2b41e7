"""What the fuzzers found, kept as plain tests (see tests/fuzz/README in the module docs).

Each test names the request that went wrong and what it must do instead. A bug
not fixed yet is ``xfail(strict=True)`` with the reason, so its fix shows up
as an XPASS to turn into a normal test.
"""

from __future__ import annotations

import pytest

from lumiera.actors import ActorContext
from lumiera.config import load
from lumiera.errors import MediaError
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
