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

import functools
import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Self

from lumiera.bus.messages import Id, Name, Text
from lumiera.bus.records import Record, rate_of, rate_text
from lumiera.errors import BadTimeline

MAX_SIZE = 16384


class Part(Record):
    """Base of the timeline's types: a refusal is BadTimeline (wire code ``bad_timeline``)."""

    refusal = BadTimeline

    @classmethod
    def from_wire(cls, data: Any, where: str = "") -> Self:
        """As :meth:`Record.from_wire`; a refusal's path starts at the class (``timeline``)."""
        return super().from_wire(data, where or cls.__name__.lower())


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
