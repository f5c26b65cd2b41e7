"""The session model: media, tracks and clips on a timeline, and the output settings.

Positions and lengths are whole frames of the output's frame rate, and rates
are exact fractions (``Fraction``, on the wire ``"30000/1001"``): nothing
drifts. The model is plain data with invariants checked by the commands that
change it (:mod:`lumiera.steam.edits`); it serialises to JSON-compatible data
(:meth:`Session.to_data`) for ``describe``, snapshots and the bus.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any


def rate_of(text: str | int | Fraction) -> Fraction:
    """Parse a frame rate: ``25``, ``"30000/1001"``, ``"29.97"`` is refused (not exact)."""
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
    if not 0 < rate <= 1000:
        raise ValueError(f"frame rate {text!r} is out of range")
    return rate


def rate_text(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


@dataclass
class Media:
    """A media file as probed when it was added (the session trusts these values)."""

    id: str
    path: str
    frames: int
    rate: Fraction
    width: int
    height: int
    pix_fmt: str
    size: int
    mtime_ns: int


@dataclass
class Track:
    id: str
    name: str


@dataclass
class Clip:
    """Frames ``[source_in, source_out)`` of a media, placed at ``position`` on a track."""

    id: str
    media: str
    track: str
    position: int
    source_in: int
    source_out: int
    opacity: float = 1.0

    @property
    def length(self) -> int:
        return self.source_out - self.source_in

    @property
    def end(self) -> int:
        return self.position + self.length


@dataclass
class Output:
    width: int = 1920
    height: int = 1080
    rate: Fraction = field(default_factory=lambda: Fraction(25))


@dataclass
class Session:
    """One edit: media, tracks (bottom to top), clips, output, and its revision counter."""

    media: dict[str, Media] = field(default_factory=dict)
    tracks: list[Track] = field(default_factory=list)
    clips: dict[str, Clip] = field(default_factory=dict)
    output: Output = field(default_factory=Output)
    revision: int = 0

    def track(self, track_id: str) -> Track | None:
        return next((t for t in self.tracks if t.id == track_id), None)

    def clips_on(self, track_id: str) -> list[Clip]:
        return sorted(
            (c for c in self.clips.values() if c.track == track_id), key=lambda c: c.position
        )

    def to_data(self) -> dict[str, Any]:
        """JSON-compatible data, in a stable order (equal sessions give equal data)."""
        return {
            "revision": self.revision,
            "output": {**dataclasses.asdict(self.output), "rate": rate_text(self.output.rate)},
            "media": [
                {**dataclasses.asdict(m), "rate": rate_text(m.rate)}
                for m in sorted(self.media.values(), key=lambda m: m.id)
            ],
            "tracks": [dataclasses.asdict(t) for t in self.tracks],
            "clips": [
                dataclasses.asdict(c)
                for c in sorted(self.clips.values(), key=lambda c: (c.track, c.position, c.id))
            ],
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Session:
        out = data["output"]
        return cls(
            media={m["id"]: Media(**{**m, "rate": rate_of(m["rate"])}) for m in data["media"]},
            tracks=[Track(**t) for t in data["tracks"]],
            clips={c["id"]: Clip(**c) for c in data["clips"]},
            output=Output(out["width"], out["height"], rate_of(out["rate"])),
            revision=data["revision"],
        )
