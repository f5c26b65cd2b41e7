"""Hypothesis strategies for everything that reaches the bus, derived from the declarations.

Three flavours of a value for a declared type (a message field's hint, a
command argument's hint, an event body's record): ``valid`` (anything the
checks accept), ``boundary`` (accepted values at the edges: the longest
string, the extreme ints, 0, -0.0, inf, NaN where a float is free) and
``invalid`` (what the checks must refuse: the wrong type, one character too
many, a bool for an int, bytes for a string, nil where nil is not allowed).

The message kinds come from :data:`lumiera.bus.messages.KINDS`, the command
tables from each handler class's ``commands`` (built from its ``@command``
methods), the topics from :data:`lumiera.bus.topics.TOPICS`: a kind, command
or topic declared tomorrow is fuzzed without touching this file.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Union

import msgpack
from hypothesis import strategies as st

from lumiera.bus import messages as m
from lumiera.bus.codec import MAX_DEPTH, PROTOCOL_VERSION, pack
from lumiera.bus.commands import CommandSpec
from lumiera.bus.records import Record
from lumiera.bus.timeline import Timeline
from lumiera.bus.topics import EXT_PREFIX, TOPICS, ExtBody, Topic, topic_of
from lumiera.errors import BadMessage
from tests.unit.bus.strategies import plain
from tests.unit.bus.test_timeline import timelines

INT64 = (-(2**63), 2**63 - 1)
UINT64_MAX = 2**64 - 1
VALID, BOUNDARY, INVALID = "valid", "boundary", "invalid"
FLAVOURS = (VALID, BOUNDARY, INVALID)

# -- documented error codes ------------------------------------------------------------------

PROTOCOL_MD = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"


def documented_codes() -> frozenset[str]:
    """The error codes of docs/PROTOCOL.md section 9 (its table's first column)."""
    text = PROTOCOL_MD.read_text()
    section = text[text.index("## 9. Error codes") : text.index("## 10. Events")]
    codes: set[str] = set()
    for line in section.splitlines():
        first = line.split("|")[1] if line.startswith("| `") else ""
        codes.update(re.findall(r"`([a-z_]+)`", first))
    return frozenset(codes)


# -- values of a declared type -----------------------------------------------------------------


def _max_len(hint: Any) -> int | None:
    if typing.get_origin(hint) is Annotated:
        limits = [e.n for e in typing.get_args(hint)[1:] if isinstance(e, m.MaxLen)]
        return min(limits) if limits else None
    return None


def _base(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def accepts(hint: Any, value: Any) -> bool:
    """Whether the bus's own checker takes ``value`` for ``hint`` (the oracle of ``invalid``)."""
    try:
        m.check_type("fuzz", value, hint)
    except BadMessage:
        return False
    return True


def _nest(levels: int) -> Any:
    value: Any = 1
    for k in range(levels):
        value = [value] if k % 2 else {"d": value}
    return value


deep_value = st.integers(MAX_DEPTH + 1, 3 * MAX_DEPTH).map(_nest)
"""Free-form values nested deeper than the protocol allows."""


def values(hint: Any, flavour: str = VALID) -> st.SearchStrategy[Any]:
    """Wire values for a declared ``hint`` (message field, command argument, record field)."""
    if flavour == INVALID:
        return _invalid(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    limit = _max_len(hint)
    base = _base(hint)
    if isinstance(base, type) and issubclass(base, Record):
        return records(base, flavour)
    if typing.get_origin(base) in (Union, types.UnionType):
        return st.one_of(*(values(a, flavour) for a in typing.get_args(base)))
    if origin in (Union, types.UnionType):
        return st.one_of(*(values(a, flavour) for a in args))
    if base is str:
        n = limit if limit is not None else 1 << 16
        if flavour == BOUNDARY:
            edge = st.characters(codec="utf-8").map(lambda c: c * n)  # the longest accepted
            return st.sampled_from(["", "\x00", "é", "../" * 3, "\u202e"]) | edge
        return st.text(max_size=min(n, 40))
    if base is int:
        if flavour == BOUNDARY:
            return st.sampled_from([0, -1, 1, INT64[0], INT64[1], UINT64_MAX, 2**53 + 1])
        return st.integers(*INT64)
    if base is float:
        if flavour == BOUNDARY:
            edges = [0.0, -0.0, math.inf, -math.inf, math.nan, 1e308, 5e-324, INT64[1]]
            return st.sampled_from(edges)
        return st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)
    if base is bool:
        return st.booleans()
    if base is type(None):
        return st.none()
    if base is bytes:
        return st.binary(max_size=64)
    if base is Any:
        return plain if flavour == VALID else st.sampled_from([None, 0, "", b"", [], {}])
    if base is list or typing.get_origin(base) is list:
        item = typing.get_args(base)[0] if typing.get_args(base) else Any
        if flavour == BOUNDARY:
            return st.sampled_from([[]]) | st.lists(values(item), min_size=50, max_size=60)
        return st.lists(values(item), max_size=4)
    if base is dict or typing.get_origin(base) is dict:
        if flavour == BOUNDARY:
            return st.sampled_from(
                [{}, {"": None}, {"d": _nest(MAX_DEPTH - 1)}]
            )  # deepest accepted
        return st.dictionaries(st.text(max_size=8), plain, max_size=4)
    raise TypeError(f"no strategy for {hint!r}")  # a new kind of declaration: extend here


def _invalid(hint: Any) -> st.SearchStrategy[Any]:
    """Values the checker of ``hint`` must refuse (it is the oracle: filtered by it)."""
    limit = _max_len(hint)
    targeted: list[st.SearchStrategy[Any]] = [
        st.sampled_from([None, True, False, 1.0, 0, "", b"", [], {}, "1", b"x", [None]]),
        plain,
        deep_value,
        st.just({"k": [{1: 2}]}).map(lambda v: {"nested": v}),  # caught later by the codec
    ]
    if limit is not None:
        targeted.append(st.characters(codec="utf-8").map(lambda c: c * (limit + 1)))
    return st.one_of(*targeted).filter(lambda v: not accepts(hint, v))


def records(cls: type[Record], flavour: str = VALID) -> st.SearchStrategy[Any]:
    """Wire forms (maps) of a record: the timeline from its own strategy, others field by field."""
    if cls is Timeline:
        return timelines().map(lambda t: t.to_wire())
    if cls is ExtBody:
        keys = st.text(max_size=8).filter(lambda k: k not in ("sender", "ts"))
        return st.dictionaries(keys, plain, max_size=4)
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    body = {f.name: values(hints[f.name], flavour) for f in fields}
    return st.fixed_dictionaries(body).map(_rates)


def _rates(wire: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Fraction) else v for k, v in wire.items()}


# -- control messages ---------------------------------------------------------------------------


def message_fields(cls: type[m.Message]) -> dict[str, tuple[Any, bool]]:
    """Each declared field of a kind: (its type hint, whether it is required)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out[f.name] = (hints[f.name], required)
    return out


@st.composite
def message_bodies(
    draw: st.DrawFn, kind: str | None = None, flavour: str = VALID
) -> dict[str, Any]:
    """A valid body (``v``, ``kind``, fields) of ``kind`` (any declared one if None).

    Optional fields are sometimes left out; with ``boundary`` every value lies at an edge.
    """
    name = kind or draw(st.sampled_from(sorted(m.KINDS)))
    body: dict[str, Any] = {"v": PROTOCOL_VERSION, "kind": name}
    for fname, (hint, required) in message_fields(m.KINDS[name]).items():
        if required or draw(st.booleans()):
            body[fname] = draw(values(hint, flavour))
    return body


def as_message(body: dict[str, Any]) -> m.Message:
    """The dataclass a valid body stands for (what decode must return)."""
    fields = {k: v for k, v in body.items() if k not in ("v", "kind")}
    return m.KINDS[body["kind"]](**fields)


@st.composite
def bad_message_bodies(draw: st.DrawFn) -> dict[Any, Any]:
    """A map that must be refused as a control message: one thing wrong with a valid body."""
    body: dict[Any, Any] = draw(message_bodies())
    cls = m.KINDS[body["kind"]]
    fields = message_fields(cls)
    how = draw(st.sampled_from(["version", "kind", "extra", "missing", "type", "envelope"]))
    required = [f for f, (_, req) in fields.items() if req]
    if how == "missing" and not required:
        how = "extra"
    if how == "type" and not fields:
        how = "version"
    if how == "version":
        body["v"] = draw(plain.filter(lambda v: type(v) is not int or v != PROTOCOL_VERSION))
    elif how == "kind":
        body["kind"] = draw(plain.filter(lambda k: not (isinstance(k, str) and k in m.KINDS)))
    elif how == "extra":
        extra = draw(st.text(max_size=12).filter(lambda k: k not in fields and k not in body))
        body[extra] = draw(plain)
    elif how == "missing":
        del body[draw(st.sampled_from(required))]
    elif how == "type":
        fname = draw(st.sampled_from(sorted(fields)))
        body[fname] = draw(values(fields[fname][0], INVALID))
    else:
        body.pop(draw(st.sampled_from(["v", "kind"])))
    return body


# -- raw frames -------------------------------------------------------------------------------


def _packb(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def _with(body: dict[str, Any], key: str, raw: bytes) -> bytes:
    """``body`` packed with one more entry whose value is the raw msgpack ``raw``."""
    n = len(body) + 1
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + n.to_bytes(2, "big")
    return head + b"".join(_packb(k) + _packb(v) for k, v in body.items()) + _packb(key) + raw


STATUS = {"v": 1, "kind": "request", "id": "f", "to": "appstate", "command": "status"}

crafted_frames: st.SearchStrategy[bytes] = st.sampled_from(
    [
        b"",
        b"\xc1",  # never used
        b"\x80",  # an empty map: no v
        b"\xdf\xff\xff\xff\xff",  # a map claiming 4G entries
        b"\xdb\xff\xff\xff\xff" + b"a" * 8,  # a str claiming 4 GiB
        b"\xc6\x7f\xff\xff\xff",  # a bin claiming 2 GiB
        b"\xdd\x00\x10\x00\x00",  # an array claiming 1M items, none there
        b"\x81\xa1d" * 40 + b"\xc0",  # maps nested 40 deep
        _packb(STATUS) + b"\x00",  # trailing bytes
        _with(STATUS, "args", b"\xd4\x01\x00"),  # fixext1 in args
        _with(STATUS, "args", b"\xd6\xff" + b"\x00" * 4),  # timestamp32
        _with(STATUS, "args", b"\xc7\x00\x05"),  # ext8 of length 0
        _with(STATUS, "args", b"\x81\x01\xc0"),  # an int map key
        _with(STATUS, "args", b"\x81\xc4\x01k\xc0"),  # a bin map key
        _with(STATUS, "args", b"\x81\xa1k\xa2\xc3\x28"),  # invalid utf-8
        _with({k: v for k, v in STATUS.items() if k != "id"}, "id", b"\xc4\x01f"),  # bin id
        _packb([STATUS]),
        _packb("status"),
        _packb(None),
    ]
) | st.integers(MAX_DEPTH, 20_000).map(lambda n: b"\x91" * n + b"\xc0")  # deep nesting


edge_frames: list[bytes] = [
    _with(STATUS, "args", b"\x81\xa1k\xcf" + b"\xff" * 8),  # uint64 max
    _with(STATUS, "args", b"\x81\xa1k\xd3" + b"\x80" + b"\x00" * 7),  # int64 min
    _with(STATUS, "args", b"\x81\xa1k\xcb\x7f\xf8" + b"\x00" * 6),  # NaN
    _with(STATUS, "args", b"\x81\xa1k\xca\x7f\x80\x00\x00"),  # float32 inf
    _with(STATUS, "args", b"\x81\xa1k" + b"\x91" * (MAX_DEPTH - 1) + b"\xc0"),  # deepest
]
"""Frames at the edge of what is valid: each decodes (a status request with one argument)."""


@st.composite
def ext_frames(draw: st.DrawFn) -> bytes:
    """A valid-looking request with an extension value somewhere in its args."""
    code = draw(st.integers(-128, 127))
    data = draw(st.binary(max_size=20))
    ext = b"\xc7" + bytes([len(data)]) + code.to_bytes(1, "big", signed=True) + data
    return _with({**STATUS, "to": "session", "command": "ping"}, "args", b"\x81\xa1x" + ext)


garbage_frames: st.SearchStrategy[bytes] = st.one_of(
    st.binary(max_size=256),
    crafted_frames,
    ext_frames(),
    bad_message_bodies().map(pack),
)
"""Single frames no control socket may accept (and none may crash a reader)."""

mangled_frames: st.SearchStrategy[bytes] = st.tuples(
    message_bodies().map(pack), st.integers(0, 1 << 16), st.binary(max_size=4)
).map(lambda t: t[0][: t[1] % (len(t[0]) + 1)] + t[2])
"""Valid frames cut short and/or with bytes appended: decoded or refused, never a crash."""


# -- command arguments --------------------------------------------------------------------------

Known = dict[str, st.SearchStrategy[Any]]
Req = tuple[str, dict[str, Any], str]


@st.composite
def command_args(
    draw: st.DrawFn, spec: CommandSpec, flavour: str = VALID, known: Known | None = None
) -> dict[str, Any]:
    """Arguments of a declared command: every required one, some optional ones.

    ``invalid``: one argument of the wrong type, an unknown one, or a required one missing.
    ``known``: argument name -> values worth trying besides random ones (ids that exist).
    """
    args: dict[str, Any] = {}
    inner = VALID if flavour == INVALID else flavour
    for pname, (hint, required) in spec.params.items():
        if required or draw(st.booleans()):
            if known and pname in known and draw(st.booleans()):
                args[pname] = draw(known[pname])
                continue
            args[pname] = draw(values(hint, inner if draw(st.booleans()) else VALID))
    if flavour != INVALID:
        return args
    choices = ["unknown"]
    if spec.params:
        choices.append("type")
    if any(req for _, req in spec.params.values()):
        choices.append("missing")
    how = draw(st.sampled_from(choices))
    if how == "unknown":
        extra = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in spec.params))
        args[extra] = draw(plain)
    elif how == "type":
        pname = draw(st.sampled_from(sorted(spec.params)))
        args[pname] = draw(values(spec.params[pname][0], INVALID))
    else:
        pname = draw(st.sampled_from(sorted(p for p, (_, r) in spec.params.items() if r)))
        args.pop(pname, None)
    return args


def requests_for(
    table: dict[str, CommandSpec], flavour: str | None = None, known: Known | None = None
) -> st.SearchStrategy[Req]:
    """(command, args, flavour) of a command table; sometimes a command it does not have.

    The flavour is drawn unless given; an unknown command comes with flavour ``invalid``.
    """

    def one(name: str) -> st.SearchStrategy[Req]:
        flavours = st.sampled_from(FLAVOURS) if flavour is None else st.just(flavour)
        return flavours.flatmap(
            lambda f: command_args(table[name], f, known).map(lambda a: (name, a, f))
        )

    unknown = st.text(max_size=64).filter(lambda c: c not in table)
    return st.one_of(
        st.sampled_from(sorted(table)).flatmap(one),
        st.tuples(
            unknown, st.dictionaries(st.text(max_size=8), plain, max_size=3), st.just(INVALID)
        ),
    )


# -- events ------------------------------------------------------------------------------------

segment = st.from_regex(r"\A[A-Za-z0-9_-]{1,12}\Z")


def topics_under(declared: Topic) -> st.SearchStrategy[str]:
    """Concrete topics that fall under the declaration ``declared``."""
    parts = re.split(r"(<[^>]+>)", declared.pattern)
    pieces = [segment if p.startswith("<") else st.just(p) for p in parts if p]
    return st.tuples(*pieces).map("".join).filter(lambda t: topic_of(t) is declared)


RESERVED = [t for t in TOPICS if t.reserved]
FORWARDED = [t for t in TOPICS if not t.reserved]

reserved_topics: st.SearchStrategy[str] = st.sampled_from(RESERVED).flatmap(topics_under)
ext_topics: st.SearchStrategy[str] = segment.map(lambda s: f"{EXT_PREFIX}fuzz.{s}")


@st.composite
def event_frames(draw: st.DrawFn, topic: Topic | None = None, sender: str = "fuzz") -> list[bytes]:
    """[topic, body]: a well-formed event of a declared topic (reserved ones included)."""
    declared = topic or draw(st.sampled_from([*TOPICS, topic_of("ext.x")]))
    name = draw(topics_under(declared)) if declared.kind is not ExtBody else draw(ext_topics)
    body = draw(records(declared.kind))
    ts = draw(st.floats(0, 4e9))
    return [name.encode(), pack({**body, "sender": sender, "ts": ts})]


garbage_topics: st.SearchStrategy[bytes] = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"", b"ext.", b"ext", b"a b", b"ext.\x7f", b"x" * 257, "ext.é".encode()]),
    st.text(max_size=30).map(str.encode),
)


@st.composite
def garbage_events(draw: st.DrawFn, sender: str = "fuzz") -> list[bytes]:
    """Multipart messages the forwarder must drop: bad framing, topics or bodies."""
    how = draw(st.sampled_from(["parts", "topic", "body", "reserved", "appstate", "fields"]))
    good = [f"{EXT_PREFIX}fuzz.x".encode(), pack({"sender": sender, "ts": 1.0})]
    if how == "parts":
        n = draw(st.sampled_from([1, 3, 4, 1000]))
        return [good[0], *(draw(st.binary(max_size=8)) for _ in range(n - 1))]
    if how == "topic":
        return [draw(garbage_topics.filter(_bad_topic)), good[1]]
    if how == "body":
        return [good[0], draw(garbage_frames | st.just(pack({"ts": 1.0})))]
    if how == "reserved":
        return draw(st.sampled_from(RESERVED).flatmap(lambda t: event_frames(t, sender)))
    if how == "appstate":
        return draw(st.sampled_from(FORWARDED).flatmap(lambda t: event_frames(t, "appstate")))
    # a declared (forwarded) topic whose body is not of its kind
    declared = draw(st.sampled_from([t for t in FORWARDED if t.kind is not ExtBody]))
    body = draw(records(declared.kind))
    fname = draw(st.sampled_from(sorted(body)))
    hints = typing.get_type_hints(declared.kind, include_extras=True)
    body[fname] = draw(values(hints[fname], INVALID))
    return [draw(topics_under(declared)).encode(), pack({**body, "sender": sender, "ts": 1.0})]


def _bad_topic(topic: bytes) -> bool:
    try:
        text = topic.decode("ascii")
        if not 0 < len(text) <= 256 or not all("!" <= c <= "~" for c in text):
            return True
        topic_of(text)
    except (UnicodeDecodeError, BadMessage):
        return True
    return False
