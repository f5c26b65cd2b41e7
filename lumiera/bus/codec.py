"""msgpack on the wire, with the bounds that make untrusted input safe.

Every frame that arrives on a socket passes :func:`unpack` before anything acts
on it: its size is bounded, msgpack's lengths are bounded, extension types
(timestamps included) are refused, map keys must be strings, and only plain
values come out (nil, bool, int, float, str, bytes, list, map). A violation is
:class:`~lumiera.errors.BadMessage`; callers answer it with an error reply or
drop the message with a log line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import msgpack

from lumiera.errors import BadMessage

PROTOCOL_VERSION = 1

# Nesting deeper than this is refused: no legitimate message comes close, and it
# bounds the recursion of the checks below.
MAX_DEPTH = 32


@dataclass(frozen=True)
class Limits:
    """Bounds on one message: bytes per frame and frames per message."""

    max_message_bytes: int = 1 << 20
    max_parts: int = 4

    @property
    def max_items(self) -> int:
        # A msgpack item takes at least one byte, so this never refuses a valid
        # message; it caps the objects one message can make at its size.
        return self.max_message_bytes


DEFAULT_LIMITS = Limits()


def _refuse_ext(code: int, data: bytes) -> NoReturn:
    raise BadMessage(f"msgpack extension type {code} is not accepted")


def pack(body: dict[str, Any]) -> bytes:
    """Encode a message body (a map with string keys).

    Values may be the contract's types (anything with ``to_wire()``, e.g. a
    :class:`~lumiera.bus.timeline.Timeline`): they are encoded here, the one place.
    """
    packed: bytes = msgpack.packb(body, use_bin_type=True, default=_to_wire)
    return packed


def _to_wire(value: Any) -> Any:
    to_wire = getattr(value, "to_wire", None)
    if to_wire is None:
        raise TypeError(f"cannot send a {type(value).__name__} on the bus")
    return to_wire()


def unpack(
    data: bytes, limits: Limits = DEFAULT_LIMITS, check_values: bool = True
) -> dict[str, Any]:
    """Decode one untrusted frame into a map, or raise BadMessage.

    With ``check_values`` (the default) every value is checked to be plain
    (:func:`check_plain`); a caller that validates each field itself, as
    :func:`lumiera.bus.messages.decode` does, may skip that walk.
    """
    if len(data) > limits.max_message_bytes:
        raise BadMessage(f"frame of {len(data)} bytes exceeds {limits.max_message_bytes}")
    n = limits.max_items
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            ext_hook=_refuse_ext,
            max_str_len=n,
            max_bin_len=n,
            max_array_len=n,
            max_map_len=n,
            max_ext_len=0,
        )
    except BadMessage:
        raise
    except (ValueError, TypeError) as e:  # ExtraData, FormatError, StackError, Unicode...
        raise BadMessage(f"not a msgpack message: {type(e).__name__}: {e}") from None
    if not isinstance(value, dict):
        raise BadMessage(f"message body must be a map, not {type(value).__name__}")
    if check_values:
        check_plain(value)
    return value


def check_plain(value: Any, depth: int = 0) -> None:
    """Raise BadMessage unless ``value`` is built only of plain msgpack values."""
    if depth > MAX_DEPTH:
        raise BadMessage(f"message nests deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return
    if isinstance(value, list):
        for item in value:
            check_plain(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadMessage("map keys must be strings")
            check_plain(item, depth + 1)
        return
    raise BadMessage(f"value of type {type(value).__name__} is not accepted")
