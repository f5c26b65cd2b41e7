"""The session model: the mutable editor that produces a :class:`~lumiera.bus.timeline.Timeline`.

The elements are the contract's own frozen types (:mod:`lumiera.bus.timeline`:
``Media``, ``Track``, ``Clip``, ``Output``); the edit commands
(:mod:`lumiera.steam.edits`) check the model's rules and replace elements
(``dataclasses.replace``), never change one in place. :meth:`Session.timeline`
is the frozen snapshot the Engine renders; its wire form (:meth:`Session.to_data`)
is what ``describe`` shows and what snapshots store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lumiera.bus.timeline import (
    Clip,
    Media,
    Output,
    Timeline,
    Track,
    Transition,
    rate_of,
    rate_text,
)


@dataclass
class Session:
    """One edit: media, tracks (bottom to top), clips, output, and its revision counter."""

    media: dict[str, Media] = field(default_factory=dict)
    tracks: list[Track] = field(default_factory=list)
    clips: dict[str, Clip] = field(default_factory=dict)
    output: Output = field(default_factory=Output)
    revision: int = 0
    transitions: dict[str, Transition] = field(default_factory=dict)

    def track(self, track_id: str) -> Track | None:
        return next((t for t in self.tracks if t.id == track_id), None)

    def clips_on(self, track_id: str) -> list[Clip]:
        return sorted(
            (c for c in self.clips.values() if c.track == track_id), key=lambda c: c.position
        )

    def timeline(self) -> Timeline:
        """The edit as it is now, frozen, in a stable order (equal sessions, equal timelines)."""
        return Timeline(
            output=self.output,
            media=tuple(sorted(self.media.values(), key=lambda m: m.id)),
            tracks=tuple(self.tracks),
            clips=tuple(sorted(self.clips.values(), key=lambda c: (c.track, c.position, c.id))),
            revision=self.revision,
            transitions=tuple(sorted(self.transitions.values(), key=lambda t: t.id)),
        )

    def transitions_of(self, clip_id: str) -> list[Transition]:
        return [t for t in self.transitions.values() if clip_id in (t.a, t.b)]

    def to_data(self) -> dict[str, Any]:
        """The timeline's wire form (JSON-compatible)."""
        return self.timeline().to_wire()

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Session:
        """A session from :meth:`to_data`'s form; BadTimeline if it breaks the contract."""
        t = Timeline.from_wire(data)
        return cls(
            media={m.id: m for m in t.media},
            tracks=list(t.tracks),
            clips={c.id: c for c in t.clips},
            output=t.output,
            revision=t.revision,
            transitions={x.id: x for x in t.transitions},
        )


__all__ = [
    "Clip",
    "Media",
    "Output",
    "Session",
    "Timeline",
    "Track",
    "Transition",
    "rate_of",
    "rate_text",
]
