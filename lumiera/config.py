"""Configuration: the declared keys, their types, and how values are layered.

Layers, later wins: the shipped ``config/setup.ini`` (the defaults), the file
given with ``--config`` (a user's file may hold only the keys it changes), then
each ``--def SECTION.KEY=VALUE``. Every key must be declared in :data:`SCHEMA`;
an unknown section or key, or a value that does not parse, raises
:class:`~lumiera.errors.ConfigError` naming where it came from, before anything
is spawned.
"""

from __future__ import annotations

import configparser
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lumiera.errors import ConfigError
from lumiera.shm.spec import parse_specs

Value = float | int | bool | str


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):  # also refuses NaN
        raise ValueError("must be a positive number of seconds")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


MAX_DECODE_THREADS = 64  # a decoder's threads: more only exhausts the process
_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off"}


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _decoder_threads(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_DECODE_THREADS:
        raise ValueError(f"must be 0 (by the cores) to {MAX_DECODE_THREADS}")
    return value


def _boolean(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("must be yes/no, true/false, on/off or 1/0")


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in logging.getLevelNamesMapping():
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _at_least_two(text: str) -> int:
    value = int(text)
    if value < 2:
        raise ValueError("must be at least 2 (a REQ client sends an empty frame and the body)")
    return value


def _ring_specs(text: str) -> str:
    parse_specs(text, 1, 1)  # syntax only; the slot defaults are applied by the supervisor
    return text.strip()


def _ui_name(text: str) -> str:
    name = text.strip()
    if not name.isidentifier():
        raise ValueError("must be the name of a user interface plug-in, e.g. web")
    return name


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be a TCP port, 0-65535 (0: a free one)")
    return value


def _open_browser(text: str) -> str:
    value = text.strip().lower()
    if value not in ("auto", "yes", "no"):
        raise ValueError("must be auto (when a display is there), yes or no")
    return value


def _text(text: str) -> str:
    return text.strip()


def _host(text: str) -> str:
    host = text.strip()
    if not host or any(c.isspace() or c in "/:" for c in host):
        raise ValueError("must be a host name or IPv4 address, e.g. 127.0.0.1")
    return host


def scheduler_address(text: str) -> str:
    """A Dask scheduler's address ``tcp://HOST:PORT`` or ``tls://HOST:PORT``; empty: none given.

    Raises ValueError for anything else (``tls://`` needs ``[farm] tls_*``: checked
    where a node or a client is made, :mod:`lumiera.vault.security`).
    """
    address = text.strip()
    if not address:
        return address
    parsed = urlsplit(address)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme not in ("tcp", "tls") or not parsed.hostname or not port:
        raise ValueError("must be a scheduler address tcp://HOST:PORT or tls://HOST:PORT")
    return address


def _sound_sink(text: str) -> str:
    value = text.strip().lower()
    if value not in ("auto", "none", "wav", "device"):
        raise ValueError("must be auto (a sound device if there is one), none, wav or device")
    return value


def _spawn(text: str) -> str:
    value = text.strip().lower()
    if value not in ("fork", "exec"):
        raise ValueError("must be fork (from the zygote, which has imported ahead) or exec")
    return value


def _latency(text: str) -> float:
    value = float(text)
    if not 0 < value <= 5:
        raise ValueError("must be seconds, more than 0 and at most 5")
    return value


@dataclass(frozen=True)
class Key:
    """One declared configuration key: its parser and what it means."""

    parse: Callable[[str], Value]
    doc: str


SCHEMA: Mapping[str, Mapping[str, Key]] = {
    "appstate": {
        "start_timeout": Key(_positive_float, "spawn to hello, and start to READY"),
        "barrier_timeout": Key(_positive_float, "wait for acks of one lifecycle event"),
        "grace_period": Key(_positive_float, "orderly stop of one subsystem before SIGKILL"),
        "emergency_timeout": Key(_positive_float, "emergency: survivors' time to end"),
        "heartbeat_interval": Key(_positive_float, "a subsystem's heartbeat period"),
        "watchdog_timeout": Key(_positive_float, "no heartbeat this long: hung"),
        "spawn": Key(_spawn, "how subsystem processes start: fork (the zygote) or exec"),
    },
    "bus": {
        "request_timeout": Key(_positive_float, "wait for a reply"),
        "max_message_bytes": Key(_positive_int, "largest accepted frame"),
        "max_parts": Key(_at_least_two, "most frames in one message"),
    },
    "rings": {
        "slots": Key(_positive_int, "slots per frame ring"),
        "slot_mb": Key(_positive_int, "MiB per ring slot"),
        "declared": Key(_ring_specs, "rings created at start"),
        "stats_interval": Key(_positive_float, "period of stats.<ring> events"),
    },
    "vault": {
        "max_open_files": Key(_positive_int, "open media files at once"),
        "cache_mb": Key(_positive_int, "frame cache size"),
    },
    "engine": {
        "workers": Key(_count, "render worker threads (0: one per core it may use)"),
        "decode_threads": Key(_decoder_threads, "each source decoder's threads (0: by the cores)"),
        "prefetch_frames": Key(_positive_int, "frames each stream decodes ahead of its position"),
        "stats_interval": Key(_positive_float, "period of stats.engine events"),
    },
    "gui": {
        "ui": Key(_ui_name, "the user interface plug-in (entry point group lumiera.ui)"),
        "port": Key(_port, "TCP port of the web UI on 127.0.0.1 (0: a free one)"),
        "open_browser": Key(_open_browser, "open the UI in a browser: auto, yes or no"),
        "preview_width": Key(_positive_int, "viewer picture width sent to pages"),
        "preview_height": Key(_positive_int, "viewer picture height sent to pages"),
    },
    "audio": {
        "sink": Key(_sound_sink, "where a playback's sound goes: auto, none, wav or device"),
        "wav_path": Key(_text, "wav sink: the file ({stream}: the playback's id; empty: auto)"),
        "device": Key(_text, "device sink: the output device's name (empty: the default)"),
        "latency": Key(_latency, "device sink: the output latency asked for, seconds"),
    },
    "netnode": {
        "scheduler": Key(scheduler_address, "the Dask scheduler a render node joins"),
        "host": Key(_host, "where a render node's worker listens"),
        "nthreads": Key(_positive_int, "a render node's worker threads (tasks at once)"),
        "name": Key(_text, "a render node's worker name (empty: lumiera-<host>-<instance>)"),
        "join_timeout": Key(_positive_float, "a render node's worker start and join"),
        "task_timeout": Key(_positive_float, "one render task on a node"),
        "cache_dir": Key(_text, "a render node's cache of shipped media (empty: XDG cache)"),
        "cache_mb": Key(_positive_int, "bound of that cache; least recently used files go"),
    },
    "farm": {
        "host": Key(_host, "where `lumiera farm up` runs its scheduler"),
        "port": Key(_port, "its port (0: a free one)"),
        "tls_ca_file": Key(_text, "CA certificate of the farm (empty: no TLS)"),
        "tls_cert": Key(_text, "this host's certificate (PEM)"),
        "tls_key": Key(_text, "its private key (PEM; empty: inside tls_cert)"),
        "serve_host": Key(_text, "--ship-media: where the origin serves media (empty: auto)"),
        "chunk_mb": Key(_positive_int, "--ship-media: MiB per fetched chunk"),
    },
    "log": {
        "level": Key(_log_level, "log level of every process"),
        "dir": Key(_text, "directory of per-subsystem log files"),
    },
    "debug": {
        "faults": Key(_boolean, "enable the fault-injection command"),
    },
}


def default_file() -> Path:
    """The shipped defaults: inside the installed package, else in the source tree."""
    here = Path(__file__).resolve().parent
    installed = here / "setup.ini"
    return installed if installed.is_file() else here.parent / "config" / "setup.ini"


class Config:
    """Validated configuration values, read by ``section.key``.

    Immutable after construction. Serialises to a plain dict (:meth:`to_dict`)
    so the supervisor can hand the exact same values to every subsystem.
    """

    def __init__(self, values: Mapping[str, Mapping[str, Value]]) -> None:
        self._values = {s: dict(keys) for s, keys in values.items()}

    def __getitem__(self, dotted: str) -> Value:
        section, _, key = dotted.partition(".")
        try:
            return self._values[section][key]
        except KeyError:
            raise ConfigError(f"no configuration key {dotted!r}") from None

    def get_float(self, dotted: str) -> float:
        value = self[dotted]
        assert isinstance(value, float | int) and not isinstance(value, bool), dotted
        return float(value)

    def get_int(self, dotted: str) -> int:
        value = self[dotted]
        assert isinstance(value, int) and not isinstance(value, bool), dotted
        return value

    def get_str(self, dotted: str) -> str:
        value = self[dotted]
        assert isinstance(value, str), dotted
        return value

    def get_bool(self, dotted: str) -> bool:
        value = self[dotted]
        assert isinstance(value, bool), dotted
        return value

    def to_dict(self) -> dict[str, dict[str, Value]]:
        return {s: dict(keys) for s, keys in self._values.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        """Re-validate values received from the supervisor (they crossed a socket)."""
        raw = {s: {k: str(v) for k, v in keys.items()} for s, keys in data.items()}
        values = _parse_layers([("supervisor", raw)])
        _check_complete(values)
        return cls(values)


def load(config_file: Path | None = None, defs: Iterable[str] = ()) -> Config:
    """Read the defaults, then ``config_file``, then each ``SECTION.KEY=VALUE`` of ``defs``.

    Raises ConfigError for a missing or unreadable file, a syntax error, an
    unknown section or key, a bad value, or inconsistent values.
    """
    layers = [(str(default_file()), _read_ini(default_file()))]
    if config_file is not None:
        layers.append((str(config_file), _read_ini(config_file)))
    overrides: dict[str, dict[str, str]] = {}
    for item in defs:
        dotted, eq, value = item.partition("=")
        section, dot, key = dotted.strip().partition(".")
        if not eq or not dot or not section or not key:
            raise ConfigError(f"--def {item!r}: expected SECTION.KEY=VALUE")
        overrides.setdefault(section, {})[key] = value
    layers.append(("--def", overrides))
    values = _parse_layers(layers)
    _check_complete(values)
    _check_consistent(values)
    return Config(values)


def _read_ini(path: Path) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    try:
        with path.open(encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as e:
        raise ConfigError(f"cannot read configuration file {path}: {e.strerror}") from e
    except (configparser.Error, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from e
    if parser.defaults():
        known = ", ".join(SCHEMA)  # configparser's shared section: every key has one home
        raise ConfigError(f"{path}: unknown section [DEFAULT] (known: {known})")
    return {s: dict(parser.items(s)) for s in parser.sections()}


Layer = tuple[str, dict[str, dict[str, str]]]


def _parse_layers(layers: list[Layer]) -> dict[str, dict[str, Value]]:
    values: dict[str, dict[str, Value]] = {}
    for origin, sections in layers:
        for section, keys in sections.items():
            if section not in SCHEMA:
                known = ", ".join(SCHEMA)
                raise ConfigError(f"{origin}: unknown section [{section}] (known: {known})")
            for key, text in keys.items():
                decl = SCHEMA[section].get(key)
                if decl is None:
                    known = ", ".join(SCHEMA[section])
                    raise ConfigError(f"{origin}: unknown key {section}.{key} (known: {known})")
                try:
                    values.setdefault(section, {})[key] = decl.parse(text)
                except ValueError as e:
                    raise ConfigError(f"{origin}: {section}.{key} = {text!r}: {e}") from None
    return values


def _check_complete(values: Mapping[str, Mapping[str, Value]]) -> None:
    for section, keys in SCHEMA.items():
        for key in keys:
            if key not in values.get(section, {}):
                raise ConfigError(f"configuration key {section}.{key} has no value")


def _check_consistent(values: Mapping[str, Mapping[str, Value]]) -> None:
    rings = values["rings"]
    try:
        parse_specs(str(rings["declared"]), int(rings["slots"]), int(rings["slot_mb"]))
    except ValueError as e:  # the defaults make a declaration without sizes invalid
        raise ConfigError(f"rings.declared with rings.slots/slot_mb: {e}") from None
    beat = values["appstate"]["heartbeat_interval"]
    watchdog = values["appstate"]["watchdog_timeout"]
    assert isinstance(beat, float) and isinstance(watchdog, float)
    if watchdog < 2 * beat:
        raise ConfigError(
            f"appstate.watchdog_timeout ({watchdog}) must be at least twice "
            f"appstate.heartbeat_interval ({beat})"
        )
