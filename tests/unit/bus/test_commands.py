"""Command tables: handlers found by name, arguments checked before a handler runs."""

from __future__ import annotations

from typing import Any

import pytest

from lumiera.bus.commands import Commands, command
from lumiera.errors import BadArguments, UnknownCommand


class Editor(Commands):
    """A command table with one handler per kind of argument."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @command
    def on_add_clip(self, *, track: int, start: float, name: str, muted: bool = False) -> str:
        """Put a clip on a track.

        More text that describe does not show.
        """
        self.calls.append(
            ("add_clip", {"track": track, "start": start, "name": name, "muted": muted})
        )
        return f"{name}@{track}"

    @command
    def on_tag(self, *, label: str | None = None, meta: dict[str, Any] | None = None) -> Any:
        return {"label": label, "meta": meta}

    @command
    def on_anything(self, *, value: Any) -> Any:
        return value

    def on_not_a_command(self) -> str:
        return "hidden"


def test_a_request_runs_the_handler_named_after_it_with_the_checked_arguments():
    editor = Editor()
    result = editor.handle("add_clip", {"track": 2, "start": 1.5, "name": "intro"})
    assert result == "intro@2"
    assert editor.calls == [
        ("add_clip", {"track": 2, "start": 1.5, "name": "intro", "muted": False})
    ]


def test_the_table_holds_exactly_the_decorated_handlers():
    assert set(Editor.commands) == {"add_clip", "tag", "anything"}
    with pytest.raises(UnknownCommand):
        Editor().handle("not_a_command", {})


def test_a_spec_records_each_argument_and_whether_it_is_required():
    spec = Editor.commands["add_clip"]
    assert {n: required for n, (_hint, required) in spec.params.items()} == {
        "track": True,
        "start": True,
        "name": True,
        "muted": False,
    }
    assert spec.doc.splitlines()[0] == "Put a clip on a track."


def test_an_unknown_command_is_refused_listing_the_known_ones():
    with pytest.raises(UnknownCommand) as err:
        Editor().handle("remove_clip", {})
    assert str(err.value) == "Editor has no command 'remove_clip' (has: add_clip, anything, tag)"


def test_a_missing_argument_is_refused_before_the_handler_runs():
    editor = Editor()
    with pytest.raises(BadArguments, match=r"^add_clip: missing argument 'name'$"):
        editor.handle("add_clip", {"track": 1, "start": 0.0})
    assert editor.calls == []


def test_an_unknown_argument_is_refused_before_the_handler_runs():
    editor = Editor()
    with pytest.raises(BadArguments, match=r"^add_clip: unknown argument\(s\) colour, size$"):
        editor.handle("add_clip", {"track": 1, "start": 0, "name": "x", "size": 1, "colour": 2})
    assert editor.calls == []


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ({"track": "1", "start": 0, "name": "x"}, r"add_clip\.track: str is not int"),
        ({"track": True, "start": 0, "name": "x"}, r"add_clip\.track: bool is not int"),
        ({"track": 1.0, "start": 0, "name": "x"}, r"add_clip\.track: float is not int"),
        ({"track": 1, "start": "0", "name": "x"}, r"add_clip\.start: str is not float"),
        ({"track": 1, "start": False, "name": "x"}, r"add_clip\.start: bool is not float"),
        ({"track": 1, "start": 0, "name": 7}, r"add_clip\.name: int is not str"),
        ({"track": 1, "start": 0, "name": "x", "muted": 0}, r"add_clip\.muted: int is not bool"),
    ],
)
def test_an_argument_of_the_wrong_type_is_refused_naming_it(args: dict[str, Any], why: str):
    editor = Editor()
    with pytest.raises(BadArguments, match=why):
        editor.handle("add_clip", args)
    assert editor.calls == []


def test_an_int_is_accepted_for_a_float_argument_and_becomes_a_float():
    editor = Editor()
    editor.handle("add_clip", {"track": 1, "start": 3, "name": "x"})
    start = editor.calls[0][1]["start"]
    assert start == 3.0 and type(start) is float


def test_optional_arguments_take_none_or_their_type():
    editor = Editor()
    assert editor.handle("tag", {}) == {"label": None, "meta": None}
    assert editor.handle("tag", {"label": None, "meta": {"k": [1]}}) == {
        "label": None,
        "meta": {"k": [1]},
    }
    with pytest.raises(BadArguments, match=r"tag\.label: int is not str or nil"):
        editor.handle("tag", {"label": 3})
    with pytest.raises(BadArguments, match=r"tag\.meta"):
        editor.handle("tag", {"meta": [1]})


def test_a_free_form_argument_must_still_be_plain_data():
    editor = Editor()
    assert editor.handle("anything", {"value": {"a": [1, None, b"x"]}}) == {"a": [1, None, b"x"]}
    with pytest.raises(BadArguments, match="is not accepted"):
        editor.handle("anything", {"value": (1, 2)})


def test_a_handler_not_named_on_something_cannot_be_a_command():
    with pytest.raises(TypeError, match="must be named on_<command>"):

        @command
        def ping(self: Any) -> None:
            pass


def test_a_handler_with_a_positional_argument_is_refused_when_its_class_is_defined():
    with pytest.raises(TypeError, match="argument track must be keyword-only"):

        class Bad(Commands):
            @command
            def on_move(self, track: int) -> None:
                pass


def test_a_subclass_inherits_the_commands_of_its_base_and_adds_its_own():
    class More(Editor):
        @command
        def on_split(self, *, at: float) -> float:
            return at

    assert set(More.commands) == {"add_clip", "tag", "anything", "split"}
    assert More().handle("split", {"at": 2}) == 2.0
    assert "split" not in Editor.commands


def test_a_subclass_may_replace_a_command_with_a_decorated_override():
    class Quiet(Editor):
        @command
        def on_tag(self, *, label: str) -> str:
            return f"quiet {label}"

    assert Quiet().handle("tag", {"label": "x"}) == "quiet x"
    assert Editor().handle("tag", {"label": "x"}) == {"label": "x", "meta": None}


def test_an_undecorated_override_of_a_command_answers_in_place_of_the_base_handler():
    class Forgetful(Editor):
        def on_tag(self, *, label: int) -> str:
            return f"override {label}"

    assert Forgetful().handle("tag", {"label": 3}) == "override 3"
    with pytest.raises(BadArguments, match=r"tag\.label: str is not int"):
        Forgetful().handle("tag", {"label": "x"})
    assert Editor().handle("tag", {"label": "x"}) == {"label": "x", "meta": None}


def test_the_items_of_a_list_argument_are_checked_against_its_declared_type():
    class Timeline(Commands):
        @command
        def on_cut(self, *, frames: list[int]) -> list[int]:
            return frames

    assert Timeline().handle("cut", {"frames": [1, 2]}) == [1, 2]
    with pytest.raises(BadArguments, match=r"cut\.frames"):
        Timeline().handle("cut", {"frames": [1, "two"]})
