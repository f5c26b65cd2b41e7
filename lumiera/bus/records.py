"""Records: the frozen dataclasses that travel inside messages, with one wire codec.

What a message carries (the timeline of :mod:`lumiera.bus.timeline`, the event
bodies of :mod:`lumiera.bus.topics`) is declared as frozen dataclasses
deriving from :class:`Record`. This module is their one codec:

- :meth:`Record.to_wire` gives plain msgpack values: a map of the declared
  fields, nested records as maps, tuples and lists as arrays, ``Fraction``
  as its text (``"30000/1001"``); a field whose default is nil is left out
  while it is nil.
- :meth:`Record.from_wire` checks an untrusted map and builds the record: every
  field's type (with the checkers of :mod:`lumiera.bus.messages`, so a field
  declared ``Name`` is bounded as in an envelope), no unknown field, every
  required one present (a field with a default may be absent), then the
  record's own invariants (:meth:`Record.invalid`). A refusal is the record's
  :attr:`Record.refusal` (a :class:`~lumiera.errors.BadMessage`) naming the
  path of the field (``timeline.clips[3].position: str is not int``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from fractions import Fraction
from typing import Any, ClassVar, Self

from lumiera.bus.messages import checker
from lumiera.errors import BadMessage

MAX_RATE = 1000


def rate_of(text: str | int | Fraction) -> Fraction:
    """Parse a frame rate: ``25``, ``"30000/1001"``; ``"29.97"`` is refused (not exact).

    Raises ValueError saying why.
    """
    if isinstance(text, Fraction):
        rate = text
    elif isinstance(text, int) and not isinstance(text, bool):
        rate = Fraction(text)
    elif isinstance(text, str) and text.strip().replace("/", "", 1).isdigit():
        try:
            rate = Fraction(text.strip())
        except ZeroDivisionError:
            raise ValueError(f"frame rate {text!r} divides by zero") from None
    else:
        raise ValueError(f"frame rate {text!r}: give a whole number or a fraction like 30000/1001")
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"frame rate {text!r} is out of range")
    return rate


def rate_text(rate: Fraction) -> str:
    """The wire form of a rate: ``"25"``, ``"30000/1001"``."""
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


class Record:
    """Base of the frozen dataclasses carried on the bus (see the module docstring)."""

    # What a refusal raises: BadMessage, or a subclass with its own wire code.
    refusal: ClassVar[type[BadMessage]] = BadMessage

    def to_wire(self) -> dict[str, Any]:
        """The record as plain msgpack values (nil fields that default to nil left out)."""
        out: dict[str, Any] = {}
        for f in _schema(type(self)):
            value = getattr(self, f.name)
            if value is not None or not f.omit_nil:
                out[f.name] = _plain(value)
        return out

    @classmethod
    def from_wire(cls, data: Any, where: str = "") -> Self:
        """The record ``data`` describes, every field checked; :attr:`refusal` naming the path."""
        if not isinstance(data, dict):
            raise cls.refusal(_at(where, f"{type(data).__name__} is not a map"))
        schema = _schema(cls)
        if not data.keys() <= _NAMES[cls]:  # no set built for the usual, known fields
            unknown = data.keys() - _NAMES[cls]
            names = ", ".join(sorted(map(str, unknown)))
            raise cls.refusal(_at(where, f"unknown field(s) {names}"))
        values = {}
        for f in schema:
            if f.name in data:
                values[f.name] = f.decode(data[f.name], _path(where, f.name))
            elif f.required:
                raise cls.refusal(_at(where, f"missing field {f.name!r}"))
        record = cls(**values)
        problem = record.invalid()
        if problem:
            raise cls.refusal(_at(where, problem))
        return record

    def invalid(self) -> str | None:
        """What breaks this record's own invariants (beyond its field types), or None."""
        return None


# Values that are their own wire form. Checked first, by exact type: most fields are
# these, and isinstance against Fraction (an ABC) costs about 0.3 us a field.
_AS_THEY_ARE = frozenset({str, int, float, bool, bytes, type(None)})


def _plain(value: Any) -> Any:
    if type(value) in _AS_THEY_ARE:
        return value
    if isinstance(value, Record):
        return value.to_wire()
    if isinstance(value, Fraction):
        return rate_text(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _path(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _at(where: str, text: str) -> str:
    return f"{where}: {text}" if where else text


Decode = Callable[[Any, str], Any]


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    decode: Decode  # (value, its path) -> the checked value
    required: bool
    omit_nil: bool  # left out of the wire while nil (its default is nil)


_SCHEMAS: dict[type[Record], list[_Field]] = {}
_NAMES: dict[type[Record], frozenset[str]] = {}  # each schema's field names


def prepare(cls: type[Record]) -> None:
    """Build the codec of ``cls`` and of the records it nests now, not at its first use.

    The first use of a record type costs about 0.5 ms (type hints, checkers); a
    process that must answer fast later (the supervisor, at a crash) pays it early.
    """
    _schema(cls)


def _schema(cls: type[Record]) -> list[_Field]:
    """Each declared field's decoder, whether it is required and whether nil is left out."""
    found = _SCHEMAS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        found = [
            _Field(
                f.name,
                _decoder(cls, f"{cls.__name__}.{f.name}", hints[f.name]),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
                f.default is None,
            )
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        ]
        # The names first: another thread that finds the schema finds its names too.
        _NAMES[cls] = frozenset(f.name for f in found)
        _SCHEMAS[cls] = found
    return found


def _decoder(owner: type[Record], tag: str, hint: Any) -> Decode:
    """The decoder of one declared field (``tag``: its class and name, for the checker)."""
    error = owner.refusal
    if hint is Fraction:

        def rate(value: Any, where: str) -> Fraction:
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise error(f"{where}: {type(value).__name__} is not a rate")
            try:
                return rate_of(value)
            except ValueError as e:
                raise error(f"{where}: {e}") from None

        return rate
    if isinstance(hint, type) and issubclass(hint, Record):
        _schema(hint)  # built with its owner's (see prepare)
        return hint.from_wire
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    inner = _nested_or_nil(hint)
    if inner is not None:  # a record (or records) or nil: the record's decoder, nil kept
        nested = _decoder(owner, tag, inner)

        def nested_or_nil(value: Any, where: str) -> Any:
            return None if value is None else nested(value, where)

        return nested_or_nil
    item = args[0] if origin in (tuple, list) and args else None
    if isinstance(item, type) and issubclass(item, Record):
        of: type[Record] = item
        make = tuple if origin is tuple else list
        _schema(of)

        def records(value: Any, where: str) -> Any:
            if not isinstance(value, list):
                raise error(f"{where}: {type(value).__name__} is not list")
            return make(of.from_wire(v, f"{where}[{k}]") for k, v in enumerate(value))

        return records
    check = checker(tag, hint)  # one per field, not per path: the checkers are cached

    def plain(value: Any, where: str) -> Any:
        try:
            return check(value)
        except BadMessage as e:  # "<tag>: why" -> "<where>: why"
            raise error(where + str(e).removeprefix(tag)) from None

    return plain


def _nested_or_nil(hint: Any) -> Any:
    """``X`` of a hint ``X | None`` where X is a record or a tuple or list of records."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return None
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(args) != 1 or len(typing.get_args(hint)) != 2:
        return None
    (inner,) = args
    items = typing.get_args(inner) if typing.get_origin(inner) in (tuple, list) else (inner,)
    if items and isinstance(items[0], type) and issubclass(items[0], Record):
        return inner
    return None


__all__ = ["Record", "prepare", "rate_of", "rate_text"]
