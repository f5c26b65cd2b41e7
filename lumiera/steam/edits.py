"""The edit commands of a session: each validated before it runs, each with its undo.

A command runs in two steps, as Lumiera's CommandDef does:

1. ``on_<name>(**args)`` checks the client's arguments against the session,
   probes media, assigns ids, and returns the *resolved* arguments. It
   changes nothing; any problem is a typed error (NotFound, Conflict,
   MediaError, BadArguments) and the session is untouched.
2. ``apply_<name>(resolved)`` changes the session and returns a *memento*: the
   previous value of exactly what it changed (the track list, some clips, some
   media, the output), as plain data. Undo restores it; it can be journaled
   and snapshotted, so undo survives a restart.

Only resolved arguments are journaled, so a replay never probes a file or
invents an id: it repeats exactly what happened.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from lumiera.bus.commands import command
from lumiera.bus.timeline import LAYOUTS, Clip, Media, Output, Track, rate_of, rate_text
from lumiera.errors import BadArguments, NotFound
from lumiera.steam.editbase import Memento, Prober
from lumiera.steam.edits_av import AudioVisualEdits
from lumiera.steam.probe import probe_media

__all__ = ["Edits", "Memento", "Prober", "probe_media"]


class Edits(AudioVisualEdits):
    """The commands on one session. Runs in the session process, one command at a time."""

    # -- the commands ---------------------------------------------------------------

    @command
    def on_add_media(self, *, path: str, id: str | None = None) -> dict[str, Any]:
        """Add a media file (probed now; the session keeps what the probe found)."""
        mid = self._new_id("m", id, self.session.media)
        found = self.probe(os.path.abspath(path))
        if not found.get("width"):  # audio only: frames of the output's rate, as it is now
            rate = self.session.output.rate
            seconds = found["audio_samples"] / found["audio_rate"]
            found.update(frames=max(1, math.ceil(seconds * rate)), rate=rate_text(rate))
        return {"id": mid, "path": os.path.abspath(path), **found}

    def apply_add_media(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(media=(a["id"],))
        self.session.media[a["id"]] = Media.from_wire(a)
        return memento

    @command
    def on_add_track(
        self,
        *,
        name: str = "",
        id: str | None = None,
        index: int | None = None,
        kind: str = "video",
    ) -> dict[str, Any]:
        """Add a track (on top, or at ``index`` from the bottom) of ``kind`` video or audio."""
        if kind not in ("video", "audio"):
            raise BadArguments(f"kind {kind!r}: video or audio")
        tid = self._new_id("t", id, {t.id for t in self.session.tracks})
        count = len(self.session.tracks)
        at = count if index is None else index
        if not 0 <= at <= count:
            raise BadArguments(f"index {index} is not within 0..{count}")
        return {"id": tid, "name": name or tid, "index": at, "kind": kind}

    def apply_add_track(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(tracks=True)
        self.session.tracks.insert(a["index"], Track(a["id"], a["name"], a.get("kind", "video")))
        return memento

    @command
    def on_remove_track(self, *, id: str) -> dict[str, Any]:
        """Remove a track and every clip on it."""
        self._need_track(id)
        return {"id": id}

    def apply_remove_track(self, a: dict[str, Any]) -> Memento:
        on_it = tuple(c.id for c in self.session.clips_on(a["id"]))
        memento = self.capture(tracks=True, clips=on_it)
        self.session.tracks = [t for t in self.session.tracks if t.id != a["id"]]
        for cid in on_it:
            del self.session.clips[cid]
        return memento

    @command
    def on_add_clip(
        self,
        *,
        media: str,
        track: str,
        position: int,
        source_in: int = 0,
        source_out: int | None = None,
        opacity: float = 1.0,
        gain_db: float = 0.0,
        id: str | None = None,
    ) -> dict[str, Any]:
        """Place frames [source_in, source_out) of a media at ``position`` (frames) on a track."""
        m = self.session.media.get(media)
        if m is None:
            raise NotFound(f"no media {media!r}")
        cid = self._new_id("c", id, self.session.clips)
        out = m.frames if source_out is None else source_out
        clip = Clip(cid, media, track, position, source_in, out, opacity, float(gain_db))
        self._check_gain(clip.gain_db)
        self._check_place(clip)
        return clip.to_wire()

    def apply_add_clip(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(clips=(a["id"],))
        self.session.clips[a["id"]] = Clip.from_wire(a)
        return memento

    @command
    def on_move_clip(
        self, *, id: str, position: int | None = None, track: str | None = None
    ) -> dict[str, Any]:
        """Move a clip to another position and/or track."""
        old = self._need_clip(id)
        moved = dataclasses.replace(
            old,
            position=old.position if position is None else position,
            track=old.track if track is None else track,
        )
        self._check_place(moved)
        return {"id": id, "position": moved.position, "track": moved.track}

    def apply_move_clip(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(clips=(a["id"],))
        clip = self.session.clips[a["id"]]
        self.session.clips[a["id"]] = dataclasses.replace(
            clip, position=a["position"], track=a["track"]
        )
        return memento

    @command
    def on_trim_clip(
        self,
        *,
        id: str,
        source_in: int | None = None,
        source_out: int | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """Change which frames of its media a clip shows (with ``position``: where it starts)."""
        old = self._need_clip(id)
        trimmed = dataclasses.replace(
            old,
            source_in=old.source_in if source_in is None else source_in,
            source_out=old.source_out if source_out is None else source_out,
            position=old.position if position is None else position,
        )
        self._check_place(trimmed)
        return {
            "id": id,
            "source_in": trimmed.source_in,
            "source_out": trimmed.source_out,
            "position": trimmed.position,
        }

    def apply_trim_clip(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(clips=(a["id"],))
        clip = self.session.clips[a["id"]]
        # Rows journaled before trim_clip took a position have none: the clip's stays.
        self.session.clips[a["id"]] = dataclasses.replace(
            clip,
            source_in=a["source_in"],
            source_out=a["source_out"],
            position=a.get("position", clip.position),
        )
        return memento

    @command
    def on_set_opacity(self, *, id: str, opacity: float) -> dict[str, Any]:
        """Set how opaque a clip is over the tracks below it (0..1)."""
        self._need_clip(id)
        if not 0.0 <= opacity <= 1.0:  # NaN too
            raise BadArguments(f"opacity {opacity} is not within 0..1")
        return {"id": id, "opacity": float(opacity)}

    def apply_set_opacity(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(clips=(a["id"],))
        clip = self.session.clips[a["id"]]
        self.session.clips[a["id"]] = dataclasses.replace(clip, opacity=a["opacity"])
        return memento

    @command
    def on_remove_clip(self, *, id: str) -> dict[str, Any]:
        """Remove a clip (and its transitions)."""
        self._need_clip(id)
        return {"id": id}

    def apply_remove_clip(self, a: dict[str, Any]) -> Memento:
        joined = tuple(t.id for t in self.session.transitions_of(a["id"]))
        memento = self.capture(clips=(a["id"],), transitions=joined)
        del self.session.clips[a["id"]]
        for tid in joined:  # its crossfades go with it (the partner keeps its place)
            del self.session.transitions[tid]
        return memento

    @command
    def on_set_output(
        self,
        *,
        width: int | None = None,
        height: int | None = None,
        rate: str | None = None,
        audio_rate: int | None = None,
        audio_layout: str | None = None,
    ) -> dict[str, Any]:
        """Set the output frame size and rate ("25", "30000/1001"), audio rate and layout."""
        out = self.session.output
        w = out.width if width is None else width
        h = out.height if height is None else height
        if not (16 <= w <= 16384 and 16 <= h <= 16384) or w % 2 or h % 2:
            raise BadArguments(f"output {w}x{h}: even sizes within 16..16384")
        try:
            r = out.rate if rate is None else rate_of(rate)
        except ValueError as e:
            raise BadArguments(str(e)) from None
        ar = out.audio_rate if audio_rate is None else audio_rate
        layout = out.audio_layout if audio_layout is None else audio_layout
        trial = dataclasses.replace(out, audio_rate=ar, audio_layout=layout)
        if (problem := trial.invalid()) is not None:
            raise BadArguments(problem)
        if layout not in LAYOUTS:  # pragma: no cover - invalid() says so
            raise BadArguments(f"audio_layout {layout!r}")
        return {"width": w, "height": h, "rate": rate_text(r), "audio_rate": ar,
                "audio_layout": layout}  # fmt: skip

    def apply_set_output(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(output=True)
        self.session.output = Output.from_wire(a)
        return memento
