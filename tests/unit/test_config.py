"""Configuration: the shipped defaults, layering, and the errors for bad input."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from lumiera.config import SCHEMA, Config, default_file, load
from lumiera.errors import ConfigError, UsageError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- the defaults -------------------------------------------------------------------------


def test_the_defaults_come_from_the_shipped_setup_ini():
    assert default_file().name == "setup.ini"
    cfg = load()
    assert cfg.get_float("appstate.start_timeout") == 10.0
    assert cfg.get_float("appstate.heartbeat_interval") == 0.2
    assert cfg.get_int("bus.max_message_bytes") == 1 << 20
    assert cfg.get_int("bus.max_parts") == 4
    assert cfg.get_str("log.level") == "INFO"
    assert cfg.get_str("log.dir") == ""
    assert cfg.get_bool("debug.faults") is False


def test_the_shipped_file_sets_every_declared_key_and_nothing_else():
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    parser.read(default_file(), encoding="utf-8")
    shipped = {s: set(parser.options(s)) for s in parser.sections()}
    assert shipped == {s: set(keys) for s, keys in SCHEMA.items()}


def test_the_configuration_serialises_every_key_with_its_parsed_type():
    data = load().to_dict()
    assert set(data) == set(SCHEMA)
    assert type(data["appstate"]["grace_period"]) is float
    assert type(data["rings"]["slots"]) is int
    assert type(data["debug"]["faults"]) is bool


# -- overrides and layers ------------------------------------------------------------------


def test_a_def_overrides_one_default():
    cfg = load(defs=["appstate.grace_period=7.5", "debug.faults=yes"])
    assert cfg.get_float("appstate.grace_period") == 7.5
    assert cfg.get_bool("debug.faults") is True
    assert cfg.get_float("appstate.start_timeout") == 10.0


def test_a_def_may_have_spaces_around_its_parts():
    cfg = load(defs=[" rings.slots = 6"])
    assert cfg.get_int("rings.slots") == 6


def test_the_last_def_for_a_key_wins():
    cfg = load(defs=["rings.slots=2", "rings.slots=3"])
    assert cfg.get_int("rings.slots") == 3


def test_a_config_file_changes_only_the_keys_it_holds(tmp_path: Path):
    user = write(
        tmp_path / "mine.ini", "[appstate]\ngrace_period = 1.5 ; short\n[log]\nlevel = debug\n"
    )
    cfg = load(user)
    assert cfg.get_float("appstate.grace_period") == 1.5
    assert cfg.get_str("log.level") == "DEBUG"
    assert cfg.get_float("appstate.barrier_timeout") == 5.0


def test_a_def_wins_over_the_config_file(tmp_path: Path):
    user = write(tmp_path / "mine.ini", "[rings]\nslots = 5\n")
    assert load(user, ["rings.slots=9"]).get_int("rings.slots") == 9


def test_an_empty_config_file_keeps_the_defaults(tmp_path: Path):
    user = write(tmp_path / "empty.ini", "; nothing to change\n")
    assert load(user).to_dict() == load().to_dict()


def test_log_dir_may_be_set_to_a_path(tmp_path: Path):
    assert load(defs=[f"log.dir={tmp_path}"]).get_str("log.dir") == str(tmp_path)


@pytest.mark.parametrize("text", ["yes", "True", "ON", "1", " no ", "false", "off", "0"])
def test_booleans_take_the_usual_spellings(text: str):
    value = load(defs=[f"debug.faults={text}"]).get_bool("debug.faults")
    assert value is (text.strip().lower() in ("yes", "true", "on", "1"))


# -- errors ----------------------------------------------------------------------------------


def test_an_unknown_section_is_refused_and_the_known_ones_listed(tmp_path: Path):
    user = write(tmp_path / "bad.ini", "[theme]\ncolour = dark\n")
    with pytest.raises(ConfigError) as err:
        load(user)
    assert str(err.value) == (
        f"{user}: unknown section [theme] "
        "(known: appstate, bus, rings, vault, engine, gui, audio, netnode, farm, log, debug)"
    )


def test_an_unknown_key_is_refused_naming_it():
    with pytest.raises(ConfigError, match=r"^--def: unknown key appstate\.start_timout \(known: "):
        load(defs=["appstate.start_timout=3"])


def test_an_unknown_key_in_a_file_names_the_file(tmp_path: Path):
    user = write(tmp_path / "bad.ini", "[bus]\nmax_bytes = 10\n")
    with pytest.raises(ConfigError, match=r"bad\.ini: unknown key bus\.max_bytes"):
        load(user)


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ("appstate.grace_period=soon", "could not convert"),
        ("appstate.grace_period=-1", "must be a positive number of seconds"),
        ("appstate.grace_period=0", "must be a positive number of seconds"),
        ("appstate.grace_period=nan", "must be a positive number of seconds"),
        ("appstate.grace_period=inf", "must be a positive number of seconds"),
        ("appstate.grace_period=", "could not convert"),
        ("bus.max_parts=2.5", "invalid literal for int"),
        ("bus.max_parts=1", "must be at least 2"),
        ("bus.max_message_bytes=0", "must be a positive integer"),
        ("rings.slots=-4", "must be a positive integer"),
        ("debug.faults=maybe", "must be yes/no, true/false, on/off or 1/0"),
        ("log.level=LOUD", "must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        ("netnode.scheduler=127.0.0.1:8786", "must be a scheduler address tcp://HOST:PORT"),
        ("netnode.scheduler=tcp://127.0.0.1", "must be a scheduler address tcp://HOST:PORT"),
        ("netnode.host=", "must be a host name or IPv4 address"),
        ("netnode.nthreads=0", "must be a positive integer"),
        ("engine.decode_threads=-1", "must be 0 (by the cores) to 64"),
        ("engine.decode_threads=65", "must be 0 (by the cores) to 64"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key_the_value_and_why(item: str, why: str):
    dotted, _, value = item.partition("=")
    with pytest.raises(ConfigError) as err:
        load(defs=[item])
    message = str(err.value)
    assert message.startswith(f"--def: {dotted} = {value!r}: ")
    assert why in message


def test_a_bad_value_in_a_file_names_the_file_and_the_key(tmp_path: Path):
    user = write(tmp_path / "bad.ini", "[appstate]\nwatchdog_timeout = never\n")
    with pytest.raises(ConfigError, match=r"bad\.ini: appstate\.watchdog_timeout = 'never'"):
        load(user)


@pytest.mark.parametrize(
    "item", ["appstate.grace_period", "grace_period=1", ".grace_period=1", "appstate.=1", "=1"]
)
def test_a_malformed_def_is_refused_showing_the_expected_form(item: str):
    with pytest.raises(ConfigError) as err:
        load(defs=[item])
    assert str(err.value) == f"--def {item!r}: expected SECTION.KEY=VALUE"


def test_a_missing_config_file_is_refused_naming_it(tmp_path: Path):
    missing = tmp_path / "nope.ini"
    with pytest.raises(ConfigError) as err:
        load(missing)
    assert str(err.value) == f"cannot read configuration file {missing}: No such file or directory"


def test_a_config_file_that_is_not_ini_is_refused_naming_it(tmp_path: Path):
    user = write(tmp_path / "bad.ini", "grace_period = 1\n")
    with pytest.raises(ConfigError, match=r"bad\.ini: File contains no section headers"):
        load(user)


def test_a_config_file_that_is_not_utf8_is_refused_naming_it(tmp_path: Path):
    user = tmp_path / "latin.ini"
    user.write_bytes(b"[log]\ndir = /home/j\xf6rg\n")
    with pytest.raises(ConfigError, match=r"latin\.ini: .*codec can't decode"):
        load(user)


def test_a_default_section_in_a_config_file_is_refused_not_ignored(tmp_path: Path):
    user = write(tmp_path / "mine.ini", "[DEFAULT]\ngrace_period = 1\n")
    with pytest.raises(ConfigError, match=r"unknown section \[DEFAULT\]"):
        load(user)


def test_config_errors_are_usage_errors():
    with pytest.raises(UsageError):
        load(defs=["nope.key=1"])


def test_a_watchdog_shorter_than_two_heartbeats_is_refused():
    with pytest.raises(ConfigError) as err:
        load(defs=["appstate.heartbeat_interval=1.5", "appstate.watchdog_timeout=2.9"])
    assert str(err.value) == (
        "appstate.watchdog_timeout (2.9) must be at least twice appstate.heartbeat_interval (1.5)"
    )


def test_a_watchdog_of_exactly_two_heartbeats_is_accepted():
    cfg = load(defs=["appstate.heartbeat_interval=1", "appstate.watchdog_timeout=2"])
    assert cfg.get_float("appstate.watchdog_timeout") == 2.0


def test_reading_an_undeclared_key_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match=r"no configuration key 'appstate\.nope'"):
        load()["appstate.nope"]


# -- crossing a socket -----------------------------------------------------------------------


def test_a_configuration_survives_the_round_trip_through_plain_data():
    cfg = load(defs=["log.level=warning", "debug.faults=on", "rings.slot_mb=16", "log.dir= /x "])
    again = Config.from_dict(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()
    assert again.get_str("log.dir") == "/x"


def test_from_dict_revalidates_the_values_it_is_given():
    data = load().to_dict()
    data["appstate"]["grace_period"] = -1.0
    with pytest.raises(ConfigError, match=r"^supervisor: appstate\.grace_period = '-1\.0'"):
        Config.from_dict(data)


def test_from_dict_refuses_an_incomplete_configuration():
    data = load().to_dict()
    del data["bus"]["max_parts"]
    with pytest.raises(ConfigError, match=r"configuration key bus\.max_parts has no value"):
        Config.from_dict(data)


def test_from_dict_refuses_a_bool_where_a_number_is_declared():
    data = load().to_dict()
    data["rings"]["slots"] = True
    with pytest.raises(ConfigError, match=r"rings\.slots = 'True'"):
        Config.from_dict(data)


@pytest.mark.parametrize("text", ["NaN", "-nan", "Infinity", "1e999"])
def test_a_duration_that_is_not_a_finite_number_is_refused_whatever_its_spelling(text: str):
    with pytest.raises(ConfigError, match="must be a positive number of seconds"):
        load(defs=[f"appstate.barrier_timeout={text}"])
