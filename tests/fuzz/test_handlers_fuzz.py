"""Each subsystem's command dispatch without sockets, given fuzzed arguments.

Every request is answered with a result built of plain values, or a
LumieraError whose code docs/PROTOCOL.md (section 9) documents; a request
whose arguments are of the wrong type, missing or unknown is refused
(``bad_args``, ``bad_timeline``, ``unknown_command``) before the handler
runs. Any other exception is what the runtime would answer ``internal`` and
then crash on: a bug.

Constructed as the unit tests construct them: the session actor on an
in-memory session with the fake probe (tests/unit/steam/kit.py), the engine
started on a private directory (its streams fail: no rings there), the
player and the gui not started (their commands that need the bus or the
front-end answer ``unavailable``; the started ones are fuzzed in
test_live_fuzz.py), and the supervisor's commands (which need a running
runner and rings) only live.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lumiera.actors import Actor, ActorContext
from lumiera.bus.codec import check_plain, pack
from lumiera.bus.commands import Commands, CommandSpec
from lumiera.bus.timeline import Timeline
from lumiera.config import load
from lumiera.errors import LumieraError
from lumiera.stage.gui import GuiActor
from lumiera.steam.edits import Edits
from lumiera.steam.player import PlayerActor
from lumiera.steam.session import SessionActor
from lumiera.vault.engine import EngineActor
from tests.fuzz import strategies as fs
from tests.fuzz.profiles import FUZZ, count
from tests.unit.steam.kit import MEDIA_10, MISSING, fake_probe

DOCUMENTED = fs.documented_codes()
REFUSALS = {"bad_args", "bad_timeline", "unknown_command", "bad_message"}


def answer(handler: Commands, command: str, args: dict[str, Any], flavour: str) -> Any:
    """Run one request as the runtime does; check the outcome is a documented one."""
    try:
        result = handler.handle(command, args)
    except LumieraError as e:
        assert e.code in DOCUMENTED, f"{command} {args!r}: undocumented code {e.code}: {e}"
        if flavour == fs.INVALID:
            assert e.code in REFUSALS, f"{command} {args!r}: {e.code}: {e}"
        return e
    assert flavour != fs.INVALID, f"{command} {args!r} was not refused: {result!r}"
    check_plain(result)
    pack({"result": result})
    return result


def context(name: str, **kw: Any) -> ActorContext:
    return ActorContext(name=name, instance="fuzz", config=load(), options={}, **kw)


# -- the session -----------------------------------------------------------------------

IDS = st.sampled_from(["m1", "t1", "c1", "c2", "x", "tr1"])
SESSION_KNOWN: fs.Known = {
    "id": IDS,
    "media": IDS,
    "track": IDS,
    "a": IDS,
    "b": IDS,
    "path": st.sampled_from([MEDIA_10, MISSING, "/media/v100.mov", "/media/a.wav"]),
    "position": st.integers(-2, 40),
    "source_in": st.integers(-2, 12),
    "source_out": st.integers(-2, 12),
    "length": st.integers(-1, 12),
    "index": st.integers(-2, 4),
    "kind": st.sampled_from(["video", "audio", "Video"]),
    "curve": st.sampled_from(["linear", "equal_power", "cubic"]),
}
# The session's table: the actor's own commands and the core's edit commands (and undo/redo).
SESSION_TABLE: dict[str, CommandSpec] = {
    **SessionActor.commands,
    **Edits.commands,
    "undo": CommandSpec("undo", lambda self: None, {}, ""),
    "redo": CommandSpec("redo", lambda self: None, {}, ""),
}
PRELUDE: list[tuple[str, dict[str, Any]]] = [
    ("add_media", {"path": "/media/v100.mov", "id": "m1"}),
    ("add_track", {"id": "t1"}),
    ("add_clip", {"media": "m1", "track": "t1", "position": 0, "source_out": 10, "id": "c1"}),
    ("add_clip", {"media": "m1", "track": "t1", "position": 10, "source_in": 20, "id": "c2"}),
]


def session_actor() -> SessionActor:
    actor = SessionActor(context("session"))
    actor.on_start()  # in memory: no session file in the options
    assert actor.core is not None
    actor.core.edits.probe = fake_probe
    for command, args in PRELUDE:
        actor.handle(command, args)
    return actor


@FUZZ
@given(
    st.lists(fs.requests_for(SESSION_TABLE, known=SESSION_KNOWN), min_size=1, max_size=6),
    st.booleans(),
)
def test_the_session_answers_any_requests_and_its_timeline_keeps_the_contract(
    requests: list[fs.Req], batched: bool
):
    count("handlers.session", len(requests))
    actor = session_actor()
    try:
        if batched:  # arrived together: group commit
            outcomes = actor.handle_batch([(c, a) for c, a, _ in requests])
            assert len(outcomes) == len(requests)
            for (command, args, _), outcome in zip(requests, outcomes, strict=True):
                if isinstance(outcome, LumieraError):
                    assert outcome.code in DOCUMENTED, f"{command} {args!r}: {outcome}"
                else:
                    check_plain(outcome)
        else:
            for command, args, flavour in requests:
                strict = flavour if "command_id" not in args else fs.VALID  # popped before
                if strict == fs.VALID:
                    strict = "any"
                answer(actor, command, args, strict)
        Timeline.from_wire(actor.handle("timeline", {}), "timeline")
        check_plain(actor.handle("describe", {}))
        check_plain(actor.handle("history", {}))
    finally:
        actor.on_stop()


# -- the engine --------------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[EngineActor]:
    actor = EngineActor(context("engine", runtime_dir=str(tmp_path)))
    actor.on_start()
    try:
        yield actor
    finally:
        actor.on_stop()


ENGINE_KNOWN: fs.Known = {
    "stream": st.sampled_from(["s1", "s2", "s999"]),
    "ring": st.sampled_from(["fuzz", "viewer"]),
    "audio_ring": st.sampled_from(["fuzz", "fuzz-audio"]),
    "first": st.integers(-1, 20),
    "count": st.integers(-1, 20),
    "fmt": st.sampled_from(["rgb24", "gray", "yuv420p", "rgb"]),
    "mode": st.sampled_from(["render", "playback", "live"]),
    "rate": st.sampled_from(["25", "30000/1001", "0", "1/0", "-5", "1e3", "²"]),
}


def test_the_engine_answers_any_request(engine: EngineActor):
    @FUZZ
    @given(fs.requests_for(EngineActor.commands, known=ENGINE_KNOWN))
    def one(request: fs.Req) -> None:
        count("handlers.engine")
        command, args, flavour = request
        answer(engine, command, args, flavour if flavour == fs.INVALID else "any")

    one()


# -- the player and the gui, not started -------------------------------------------------------


def test_the_player_before_it_starts_answers_any_request(tmp_path: Path):
    player = PlayerActor(context("player"))
    known: fs.Known = {
        "output": st.sampled_from([str(tmp_path / "out.mp4"), "/nonexistent/dir/x.mp4"]),
        "codec": st.sampled_from(["h264", "ffv1", "nope"]),
        "stream": st.sampled_from(["p1", "p2"]),
    }

    @FUZZ
    @given(fs.requests_for(PlayerActor.commands, known=known))
    def one(request: fs.Req) -> None:
        count("handlers.player")
        command, args, flavour = request
        answer(player, command, args, flavour if flavour == fs.INVALID else "any")

    one()
    assert list(tmp_path.iterdir()) == []  # nothing was written


@pytest.mark.parametrize("cls", [GuiActor, Actor], ids=["gui", "actor"])
def test_the_gui_and_the_base_actor_answer_any_request(cls: type[Actor]):
    actor = cls(context(cls.name))

    @FUZZ
    @given(fs.requests_for(cls.commands))
    def one(request: fs.Req) -> None:
        count(f"handlers.{cls.name}")
        command, args, flavour = request
        answer(actor, command, args, flavour if flavour == fs.INVALID else "any")

    one()


def test_add_media_with_the_real_probe_answers_media_or_adds_it(tmp_path: Path):
    """Any path, probed for real: a media added, or ``media``/``bad_args``, never a crash."""
    (tmp_path / "empty.mov").write_bytes(b"")
    (tmp_path / "text.mov").write_text("not a video\n")
    actor = SessionActor(context("session"))
    actor.on_start()
    special = [str(tmp_path), str(tmp_path / "empty.mov"), str(tmp_path / "text.mov")]
    special += ["", "/", "/dev/null", "a\x00b", "é/../x", "~", "x" * 5000]

    @FUZZ
    @given(st.sampled_from(special) | st.text(max_size=30).map(lambda p: str(tmp_path / p)))
    def one(path: str) -> None:
        count("handlers.add_media_real_probe")
        answer(actor, "add_media", {"path": path}, "any")

    try:
        one()
    finally:
        actor.on_stop()
