"""Which subsystems a command line starts, and in which order."""

from __future__ import annotations

import pytest

from lumiera.subsystems import SUBSYSTEMS, Options, Spec, resolve, start_order


def spec(name: str, *depends: str) -> Spec:
    return Spec(name, "test", f"fake.{name}", depends=depends)


def test_the_default_command_line_starts_the_gui_and_what_it_needs_prerequisites_first():
    assert start_order(Options()) == ["session", "engine", "player", "gui"]


def test_a_session_file_alone_changes_nothing_about_what_starts():
    assert start_order(Options(session="film.lum")) == start_order(Options())


def test_headless_starts_the_core_without_the_gui():
    assert start_order(Options(headless=True)) == ["engine", "session", "player"]


def test_a_script_starts_the_script_runner_beside_the_gui():
    assert start_order(Options(scripts=("cut.py",))) == [
        "session",
        "engine",
        "player",
        "gui",
        "script",
    ]


def test_a_headless_script_starts_the_script_runner_and_the_core_only():
    order = start_order(Options(headless=True, scripts=("cut.py",)))
    assert order == ["engine", "session", "player", "script"]


def test_a_port_starts_a_render_node_with_the_player_it_renders_with_and_no_gui():
    assert start_order(Options(port=7000)) == ["engine", "session", "player", "netnode"]


def test_a_scheduler_to_join_starts_a_render_node_too():
    node = Options(headless=True, join="tcp://127.0.0.1:8786")
    assert node.node and start_order(node) == start_order(Options(headless=True, port=0))
    assert start_order(Options(join="tcp://h:1")) == ["engine", "session", "player", "netnode"]


@pytest.mark.parametrize(
    "options",
    [
        Options(),
        Options(headless=True),
        Options(scripts=("a.py",)),
        Options(port=1),
        Options(join="tcp://h:1"),
        Options(headless=True, scripts=("a.py",), port=1),
    ],
)
def test_every_start_order_puts_each_subsystem_after_all_it_depends_on(options: Options):
    order = start_order(options)
    assert len(order) == len(set(order))
    for i, name in enumerate(order):
        assert set(SUBSYSTEMS[name].depends) <= set(order[:i])


def test_every_dependency_in_the_shipped_table_is_a_known_subsystem():
    assert resolve(SUBSYSTEMS, SUBSYSTEMS) == [
        "engine",
        "session",
        "player",
        "gui",
        "script",
        "netnode",
    ]


def test_options_serialise_to_plain_data_for_the_welcome_message():
    opts = Options(
        session="s.lum",
        headless=True,
        scripts=("a.py", "b.py"),
        port=9,
        debug="gui",
        join="tcp://h:1",
    )
    assert opts.to_dict() == {
        "session": "s.lum",
        "headless": True,
        "scripts": ["a.py", "b.py"],
        "port": 9,
        "debug": "gui",
        "join": "tcp://h:1",
    }


def test_resolve_visits_prerequisites_depth_first_in_the_declared_order():
    subsystems = {
        s.name: s
        for s in (spec("a"), spec("b"), spec("c", "b", "a"), spec("d", "c"), spec("e", "a"))
    }
    assert resolve(["d", "e"], subsystems) == ["b", "a", "c", "d", "e"]


def test_resolve_lists_a_subsystem_once_however_often_it_is_needed():
    subsystems = {s.name: s for s in (spec("base"), spec("x", "base"), spec("y", "base", "x"))}
    assert resolve(["y", "x", "base", "y"], subsystems) == ["base", "x", "y"]


def test_resolve_refuses_a_dependency_cycle_and_shows_it():
    subsystems = {s.name: s for s in (spec("a", "b"), spec("b", "c"), spec("c", "a"))}
    with pytest.raises(ValueError, match=r"^dependency cycle: a -> b -> c -> a$"):
        resolve(["a"], subsystems)


def test_resolve_refuses_a_subsystem_that_depends_on_itself():
    with pytest.raises(ValueError, match="dependency cycle: me -> me"):
        resolve(["me"], {"me": spec("me", "me")})


def test_resolve_refuses_an_unknown_root():
    with pytest.raises(ValueError, match="unknown subsystem 'nope'"):
        resolve(["nope"], SUBSYSTEMS)


def test_resolve_refuses_an_unknown_dependency():
    with pytest.raises(ValueError, match="unknown subsystem 'ghost'"):
        resolve(["a"], {"a": spec("a", "ghost")})
