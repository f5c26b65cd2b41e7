"""Edit commands of sound and crossfades: a clip's gain, transitions between two clips.

A transition is made at a cut: clip ``b`` starts where clip ``a`` ends on the
same track, and ``add_transition`` extends ``b`` to the left by ``length``
frames over ``a``'s end (its media must have those frames before its
``source_in``: its handle), so the two overlap by ``length`` and cross-fade
there; what plays after the cut does not move. ``remove_transition`` gives the
frames back (``b`` starts at the cut again). Both undo exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lumiera.bus.commands import command
from lumiera.bus.timeline import CURVES, MAX_GAIN_DB, MIN_GAIN_DB, Transition
from lumiera.errors import BadArguments, Conflict, NotFound
from lumiera.steam.editbase import EditsBase, Memento


class AudioVisualEdits(EditsBase):
    """``set_gain``, ``add_transition``, ``remove_transition`` (see the module docstring)."""

    @staticmethod
    def _check_gain(gain_db: float) -> None:
        if not MIN_GAIN_DB <= gain_db <= MAX_GAIN_DB:  # NaN too
            raise BadArguments(f"gain_db {gain_db} is not within {MIN_GAIN_DB:g}..{MAX_GAIN_DB:g}")

    @command
    def on_set_gain(self, *, id: str, gain_db: float) -> dict[str, Any]:
        """Set a clip's sound gain in dB (-96: silent .. +24)."""
        self._need_clip(id)
        self._check_gain(float(gain_db))
        return {"id": id, "gain_db": float(gain_db)}

    def apply_set_gain(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(clips=(a["id"],))
        clip = self.session.clips[a["id"]]
        self.session.clips[a["id"]] = dataclasses.replace(clip, gain_db=a["gain_db"])
        return memento

    @command
    def on_add_transition(
        self, *, a: str, b: str, length: int, curve: str = "linear", id: str | None = None
    ) -> dict[str, Any]:
        """Cross-fade from clip ``a`` into clip ``b`` over ``length`` frames before their cut."""
        first, second = self._need_clip(a), self._need_clip(b)
        if curve not in CURVES:
            raise BadArguments(f"curve {curve!r}: one of {', '.join(CURVES)}")
        if first.track != second.track or first.end != second.position:
            raise Conflict(f"{b} must start where {a} ends, on the same track (a cut)")
        if self.session.transitions_of(a) and any(t.a == a for t in self.session.transitions_of(a)):
            raise Conflict(f"{a} already fades out into another clip")
        if not 0 < length < min(first.length, second.length + 1):
            raise BadArguments(
                f"length {length}: 1..{min(first.length - 1, second.length)} frames "
                f"(less than {a}'s length)"
            )
        if second.source_in < length:
            raise BadArguments(
                f"{b} has {second.source_in} frames of its media before its start; "
                f"a {length}-frame transition needs {length} (trim its source_in later)"
            )
        tid = self._new_id("x", id, self.session.transitions)
        extended = dataclasses.replace(
            second, position=second.position - length, source_in=second.source_in - length
        )
        trial = {**self.session.clips, b: extended}
        timeline = dataclasses.replace(
            self.session.timeline(),
            clips=tuple(trial.values()),
            transitions=(*self.session.transitions.values(), Transition(tid, a, b, curve)),
        )
        if (problem := timeline.invalid()) is not None:
            raise Conflict(problem)
        return {"id": tid, "a": a, "b": b, "curve": curve, "length": length}

    def apply_add_transition(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(clips=(a["b"],), transitions=(a["id"],))
        clip = self.session.clips[a["b"]]
        self.session.clips[a["b"]] = dataclasses.replace(
            clip, position=clip.position - a["length"], source_in=clip.source_in - a["length"]
        )
        self.session.transitions[a["id"]] = Transition(a["id"], a["a"], a["b"], a["curve"])
        return memento

    @command
    def on_remove_transition(self, *, id: str) -> dict[str, Any]:
        """Remove a transition: its second clip starts at the cut again."""
        t = self.session.transitions.get(id)
        if t is None:
            raise NotFound(f"no transition {id!r}")
        a, b = self.session.clips[t.a], self.session.clips[t.b]
        return {"id": id, "b": t.b, "length": a.end - b.position}

    def apply_remove_transition(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(clips=(a["b"],), transitions=(a["id"],))
        clip = self.session.clips[a["b"]]
        del self.session.transitions[a["id"]]
        self.session.clips[a["b"]] = dataclasses.replace(
            clip, position=clip.position + a["length"], source_in=clip.source_in + a["length"]
        )
        return memento
