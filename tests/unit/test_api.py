"""The script API's Session keeps in step with the session's command table."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lumiera import api
from lumiera.bus.commands import CommandSpec
from lumiera.steam.core import REDO, UNDO
from lumiera.steam.edits import Edits
from lumiera.steam.session import SessionActor

EDITS = Edits.commands


# Commands whose name does not end in the element they change (set_opacity changes a clip).
ELEMENT = {"set_opacity": "clip", "set_gain": "clip"}


def api_param(command: str, param: str) -> str:
    """The method's name for a command's parameter: the changed element's ``id`` is its noun."""
    if param == "id" and not command.startswith("add_"):
        # move_clip(id=...) -> move_clip(clip=...)
        return ELEMENT.get(command, command.split("_", 1)[1])
    return param


def types_of(hint: Any) -> set[Any]:
    return set(typing.get_args(hint)) if isinstance(hint, types.UnionType) else {hint}


def method(name: str) -> Callable[..., Any]:
    found: Callable[..., Any] | None = getattr(api.Session, name, None)
    assert callable(found), f"api.Session has no method for session command {name!r}"
    return found


def params_of(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return {n: p for n, p in inspect.signature(fn).parameters.items() if n != "self"}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_every_edit_command_has_a_method_with_exactly_its_parameters(name: str) -> None:
    spec: CommandSpec = EDITS[name]
    fn = method(name)
    params, hints = params_of(fn), typing.get_type_hints(fn)
    defaults = {n: p.default for n, p in inspect.signature(spec.handler).parameters.items()}
    assert set(params) == {api_param(name, p) for p in spec.params}
    for pname, (hint, required) in spec.params.items():
        ours = params[api_param(name, pname)]
        assert (ours.default is inspect.Parameter.empty) == required, (name, pname)
        if not required and ours.default is not None:  # None means "the command's default"
            assert ours.default == defaults[pname], (name, pname)
        accepted = types_of(hints[ours.name])
        assert types_of(hint) <= accepted, f"{name}({ours.name}): {hints[ours.name]} < {hint}"


@pytest.mark.parametrize("name", sorted(EDITS))
def test_every_edit_method_says_what_its_command_says(name: str) -> None:
    assert (inspect.getdoc(method(name)) or "").startswith(EDITS[name].doc)


@pytest.mark.parametrize("name", [UNDO, REDO])
def test_undo_and_redo_are_methods_without_arguments(name: str) -> None:
    assert params_of(method(name)) == {}


def test_no_method_without_a_session_command() -> None:
    commands = {*EDITS, UNDO, REDO, *SessionActor.commands}
    public = {n for n, _ in inspect.getmembers(api.Session, inspect.isfunction)}
    extra = {n for n in public if not n.startswith("_")} - commands - {"command"}
    assert not extra, f"api.Session methods without a session command: {sorted(extra)}"


class Recorder:
    """Stands in for :class:`api.App`: records the requests and answers like the session."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, subsystem: str, command: str, /, **args: Any) -> Any:
        self.sent.append((subsystem, command, args))
        return {"id": "x1", "command": command, "revision": 1, "applied": {"id": "new1"}}


def test_methods_send_their_command_with_the_element_as_id_and_omit_nones() -> None:
    app = Recorder()
    s = api.Session(app)  # type: ignore[arg-type]
    assert s.add_clip("m1", "t1", 5, source_out=9) == "new1"
    assert s.move_clip("c1", track="t2")["command"] == "move_clip"
    s.remove_track("t3")
    assert app.sent == [
        (
            "session",
            "add_clip",
            {
                "media": "m1",
                "track": "t1",
                "position": 5,
                "source_in": 0,
                "source_out": 9,
                "opacity": 1.0,
                "gain_db": 0.0,
            },
        ),
        ("session", "move_clip", {"id": "c1", "track": "t2"}),
        ("session", "remove_track", {"id": "t3"}),
    ]


def test_a_left_edge_trim_and_an_opacity_are_one_command_each() -> None:
    app = Recorder()
    s = api.Session(app)  # type: ignore[arg-type]
    s.trim_clip("c1", source_in=5, position=25)
    s.trim_clip("c2", source_out=9)
    s.set_opacity("c1", 0.25)
    assert app.sent == [
        ("session", "trim_clip", {"id": "c1", "source_in": 5, "position": 25}),
        ("session", "trim_clip", {"id": "c2", "source_out": 9}),
        ("session", "set_opacity", {"id": "c1", "opacity": 0.25}),
    ]


def test_media_paths_go_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = Recorder()
    monkeypatch.chdir(tmp_path)
    api.Session(app).add_media(Path("a.mp4"))  # type: ignore[arg-type]
    assert app.sent[0][2] == {"path": str(tmp_path / "a.mp4")}
