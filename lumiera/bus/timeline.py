"""The timeline contract: what the Session hands the Engine, declared once.

A :class:`Timeline` is a frozen snapshot of a session's edit: the output
settings, the media (each with the *probe identity* the session took when it
was added: size, mtime_ns, inode, and the probed geometry and rate), the tracks
bottom to top, and the clips. The Session edits a mutable model
(:mod:`lumiera.steam.model`) that produces one; the Player asks the Session for
it and hands it to the Engine; nobody reads a timeline by string keys.

On the wire it is one msgpack map (``to_wire``/``from_wire``, the only place
that knows the keys)::

    {"revision": 7,
     "output": {"width": 1920, "height": 1080, "rate": "25"},
     "media":  [{"id", "path", "frames", "rate", "width", "height", "pix_fmt",
                 "size", "mtime_ns", "inode"}, ...],
     "tracks": [{"id", "name"}, ...],                    # bottom to top
     "clips":  [{"id", "media", "track", "position", "source_in", "source_out",
                 "opacity"}, ...]}

Rates are exact fractions written ``"25"`` or ``"30000/1001"``; positions and
lengths are whole frames of the output's rate. :meth:`Timeline.from_wire`
checks every field's type and the contract's invariants (ids unique, every
clip's media and track declared, its source range within its media, no two
clips of a track overlapping) and raises :class:`~lumiera.errors.BadTimeline`
naming the first field that fails: a malformed timeline is an error reply,
never a half-built stream. ``inode`` 0 means "not recorded" (sessions made
before it was): the file's identity is then its size and mtime.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import typing
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Self, TypeVar

from lumiera.bus.messages import Id, Name, Text, checker
from lumiera.errors import BadMessage, BadTimeline

MAX_RATE = 1000
MAX_SIZE = 16384


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


class Part:
    """Base of the contract's types: one generic wire codec for their declared fields.

    As with messages, a field with a default may be absent on the wire and takes it.
    """

    def to_wire(self) -> dict[str, Any]:
        """Plain msgpack values, keyed by field name."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, Fraction):
                value = rate_text(value)
            elif isinstance(value, tuple):
                value = [v.to_wire() for v in value]
            elif isinstance(value, Part):
                value = value.to_wire()
            out[f.name] = value
        return out

    @classmethod
    def from_wire(cls, data: Any, where: str = "") -> Self:
        """Decode and check one part; BadTimeline naming the field that fails."""
        where = where or cls.__name__.lower()
        if not isinstance(data, dict):
            raise BadTimeline(f"{where}: {type(data).__name__} is not a map")
        fields = _fields(cls)
        unknown = data.keys() - fields.keys()
        if unknown:
            raise BadTimeline(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        values = {}
        for name, (decode, required) in fields.items():
            if name in data:
                values[name] = decode(data[name], f"{where}.{name}")
            elif required:
                raise BadTimeline(f"{where}: missing field {name!r}")
        part = cls(**values)
        problem = part.invalid()
        if problem:
            raise BadTimeline(f"{where}: {problem}")
        return part

    def invalid(self) -> str | None:
        """What breaks this part's own invariants, or None."""
        return None


P = TypeVar("P", bound=Part)
Decode = typing.Callable[[Any, str], Any]


_FIELDS: dict[type[Part], dict[str, tuple[Decode, bool]]] = {}


def _fields(cls: type[Part]) -> dict[str, tuple[Decode, bool]]:
    """Each declared field's decoder and whether it is required (built once per class)."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        found = _FIELDS[cls] = {
            f.name: (
                _decoder(f"{cls.__name__}.{f.name}", hints[f.name]),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        }
    return found


def _decoder(tag: str, hint: Any) -> Decode:
    """The decoder of one declared field (``tag``: its class and name, for the checker)."""
    if hint is Fraction:

        def rate(value: Any, where: str) -> Fraction:
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise BadTimeline(f"{where}: {type(value).__name__} is not a rate")
            try:
                return rate_of(value)
            except ValueError as e:
                raise BadTimeline(f"{where}: {e}") from None

        return rate
    if isinstance(hint, type) and issubclass(hint, Part):
        return hint.from_wire
    if typing.get_origin(hint) is tuple:
        item: type[Part] = typing.get_args(hint)[0]

        def items(value: Any, where: str) -> tuple[Part, ...]:
            if not isinstance(value, list):
                raise BadTimeline(f"{where}: {type(value).__name__} is not a list")
            return tuple(item.from_wire(v, f"{where}[{k}]") for k, v in enumerate(value))

        return items

    check = checker(tag, hint)  # one per field, not per place: the checkers are cached

    def plain(value: Any, where: str) -> Any:
        try:
            return check(value)
        except BadMessage as e:  # "<tag>: why" -> "<where>: why"
            raise BadTimeline(where + str(e).removeprefix(tag)) from None

    return plain


@dataclass(frozen=True)
class Output(Part):
    """The frame size and rate of what the timeline renders to."""

    width: int = 1920
    height: int = 1080
    rate: Fraction = Fraction(25)

    def invalid(self) -> str | None:
        if not (1 <= self.width <= MAX_SIZE and 1 <= self.height <= MAX_SIZE):
            return f"size {self.width}x{self.height} is not within 1..{MAX_SIZE}"
        return None


@dataclass(frozen=True)
class Media(Part):
    """A media file as probed when it was added: where it is, what it is, which file it was."""

    id: Id
    path: Text
    frames: int
    rate: Fraction
    width: int
    height: int
    pix_fmt: Name
    size: int  # the probe identity: size, mtime_ns and inode of the file probed
    mtime_ns: int
    inode: int = 0  # 0: not recorded (a session made before it was)

    def invalid(self) -> str | None:
        if min(self.frames, self.width, self.height, self.size, self.mtime_ns, self.inode) < 0:
            return "frames, size, mtime_ns, inode, width and height cannot be negative"
        return None


@dataclass(frozen=True)
class Track(Part):
    """A track; the timeline lists them bottom to top."""

    id: Id
    name: Text


@dataclass(frozen=True)
class Clip(Part):
    """Frames ``[source_in, source_out)`` of a media, shown from output frame ``position`` on."""

    id: Id
    media: Id
    track: Id
    position: int
    source_in: int
    source_out: int
    opacity: float = 1.0

    @property
    def length(self) -> int:
        """How many frames it shows."""
        return self.source_out - self.source_in

    @property
    def end(self) -> int:
        """The first output frame after it."""
        return self.position + self.length

    def shows(self, index: int) -> bool:
        """Whether output frame ``index`` is one of its frames."""
        return self.position <= index < self.end

    def within(self, first: int, count: int) -> bool:
        """Whether it shows any of output frames ``first .. first+count-1``."""
        return self.position < first + count and self.end > first

    def source(self, index: int) -> int:
        """The media frame it shows at output frame ``index``."""
        return self.source_in + index - self.position

    def overlaps(self, other: Clip) -> bool:
        """Whether both are on one track and share an output frame."""
        return self.track == other.track and self.position < other.end and other.position < self.end

    def invalid(self) -> str | None:
        if self.position < 0:
            return f"position {self.position} is before the start"
        if not 0 <= self.source_in < self.source_out:
            return f"source range [{self.source_in}, {self.source_out}) is empty or negative"
        if not 0.0 <= self.opacity <= 1.0:
            return f"opacity {self.opacity} is not within 0..1"
        return None


@dataclass(frozen=True)
class Timeline(Part):
    """A session's edit as the Engine renders it (see the module docstring)."""

    output: Output
    media: tuple[Media, ...] = ()
    tracks: tuple[Track, ...] = ()  # bottom to top
    clips: tuple[Clip, ...] = ()
    revision: int = 0

    @functools.cached_property
    def media_by_id(self) -> dict[str, Media]:
        return {m.id: m for m in self.media}

    @functools.cached_property
    def _track_order(self) -> dict[str, int]:
        return {t.id: k for k, t in enumerate(self.tracks)}

    @property
    def length(self) -> int:
        """Frames up to the end of the last clip."""
        return max((c.end for c in self.clips), default=0)

    def media_of(self, clip: Clip) -> Media:
        return self.media_by_id[clip.media]

    def clips_within(self, first: int, count: int) -> list[Clip]:
        """The clips showing any of frames ``first .. first+count-1``, bottom track first."""
        return sorted(
            (c for c in self.clips if c.within(first, count)),
            key=lambda c: (self._track_order[c.track], c.position),
        )

    def visible(self, index: int) -> list[tuple[Clip, int]]:
        """(clip, media frame) of the clips showing output frame ``index``, bottom track first."""
        shown = [(c, c.source(index)) for c in self.clips if c.shows(index)]
        shown.sort(key=lambda cs: self._track_order[cs[0].track])
        return shown

    def invalid(self) -> str | None:
        for kind, items in (("media", self.media), ("tracks", self.tracks), ("clips", self.clips)):
            ids = [i.id for i in items]
            if len(set(ids)) != len(ids):
                return f"{kind}: an id is given twice"
        by_track: dict[str, list[Clip]] = {}
        for k, clip in enumerate(self.clips):
            media = self.media_by_id.get(clip.media)
            if media is None:
                return f"clips[{k}].media: no media {clip.media!r}"
            if clip.track not in self._track_order:
                return f"clips[{k}].track: no track {clip.track!r}"
            if clip.source_out > media.frames:
                return (
                    f"clips[{k}].source_out: {clip.source_out} is past the "
                    f"{media.frames} frames of {media.id}"
                )
            by_track.setdefault(clip.track, []).append(clip)
        for clips in by_track.values():
            clips.sort(key=lambda c: c.position)
            for a, b in itertools.pairwise(clips):
                if a.overlaps(b):
                    return f"clips: {a.id} and {b.id} overlap on {a.track}"
        return None


__all__ = ["Clip", "Media", "Output", "Timeline", "Track", "rate_of", "rate_text"]
