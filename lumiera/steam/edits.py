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
import os
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from lumiera.bus.commands import Commands, command
from lumiera.bus.timeline import Clip, Media, Output, Track, rate_of, rate_text
from lumiera.errors import BadArguments, Conflict, MediaError, NotFound
from lumiera.steam.model import Session

Memento = dict[str, Any]
Prober = Callable[[str], dict[str, Any]]


def probe_media(path: str) -> dict[str, Any]:
    """Frames, rate, size and pixel format of a video file (PyAV); MediaError if not one."""
    import av  # heavy: only the session process needs it

    try:
        st = os.stat(path)
    except OSError as e:
        raise MediaError(f"media {path}: {e.strerror}") from None
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise MediaError(f"media {path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            if not rate:
                raise MediaError(f"media {path}: no frame rate")
            frames = stream.frames
            if not frames:  # not in the header: count them (small files) rather than guess
                frames = sum(1 for _ in container.demux(stream) if _.size)
            ctx = stream.codec_context
            return {
                "frames": int(frames),
                "rate": rate_text(Fraction(rate)),
                "width": int(ctx.width),
                "height": int(ctx.height),
                "pix_fmt": str(ctx.pix_fmt or ""),
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "inode": st.st_ino,
            }
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as e:
        raise MediaError(f"media {path}: not decodable ({e})") from None


class Edits(Commands):
    """The commands on one session. Runs in the session process, one command at a time."""

    def __init__(self, session: Session, probe: Prober = probe_media) -> None:
        self.session = session
        self.probe = probe

    @property
    def owner(self) -> str:
        return "session"

    # -- mementos -------------------------------------------------------------------

    def capture(
        self,
        *,
        tracks: bool = False,
        clips: tuple[str, ...] = (),
        media: tuple[str, ...] = (),
        output: bool = False,
    ) -> Memento:
        s = self.session
        memento: Memento = {}
        if tracks:
            memento["tracks"] = [t.to_wire() for t in s.tracks]
        if clips:
            memento["clips"] = {c: _wire(s.clips.get(c)) for c in clips}
        if media:
            memento["media"] = {m: _wire(s.media.get(m)) for m in media}
        if output:
            memento["output"] = s.output.to_wire()
        return memento

    def restore(self, memento: Memento) -> Memento:
        """Put back what ``memento`` holds; returns the memento of what it replaced (for redo)."""
        s = self.session
        current = self.capture(
            tracks="tracks" in memento,
            clips=tuple(memento.get("clips", ())),
            media=tuple(memento.get("media", ())),
            output="output" in memento,
        )
        if "tracks" in memento:
            s.tracks = [Track.from_wire(t) for t in memento["tracks"]]
        for cid, data in memento.get("clips", {}).items():
            if data is None:
                s.clips.pop(cid, None)
            else:
                s.clips[cid] = Clip.from_wire(data)
        for mid, data in memento.get("media", {}).items():
            if data is None:
                s.media.pop(mid, None)
            else:
                s.media[mid] = Media.from_wire(data)
        if "output" in memento:
            s.output = Output.from_wire(memento["output"])
        return current

    # -- helpers for validation -----------------------------------------------------

    def _new_id(self, prefix: str, wanted: str | None, taken: set[str]) -> str:
        if wanted is not None:
            if not wanted or len(wanted) > 64:
                raise BadArguments(f"id {wanted!r}: 1-64 characters")
            if wanted in taken:
                raise Conflict(f"id {wanted!r} is taken")
            return wanted
        n = len(taken) + 1
        while f"{prefix}{n}" in taken:
            n += 1
        return f"{prefix}{n}"

    def _need_track(self, track_id: str) -> Track:
        track = self.session.track(track_id)
        if track is None:
            raise NotFound(f"no track {track_id!r}")
        return track

    def _need_clip(self, clip_id: str) -> Clip:
        clip = self.session.clips.get(clip_id)
        if clip is None:
            raise NotFound(f"no clip {clip_id!r}")
        return clip

    def _check_place(self, clip: Clip) -> None:
        """The model's rules for a clip: in its media's range, no overlap on its track."""
        media = self.session.media.get(clip.media)
        if media is None:
            raise NotFound(f"no media {clip.media!r}")
        self._need_track(clip.track)
        if clip.position < 0:
            raise BadArguments(f"position {clip.position} is before the start")
        if not 0 <= clip.source_in < clip.source_out <= media.frames:
            raise BadArguments(
                f"source range [{clip.source_in}, {clip.source_out}) is not within "
                f"the {media.frames} frames of {media.id}"
            )
        if not 0.0 <= clip.opacity <= 1.0:
            raise BadArguments(f"opacity {clip.opacity} is not within 0..1")
        for other in self.session.clips_on(clip.track):
            if other.id != clip.id and other.overlaps(clip):
                raise Conflict(
                    f"clip would overlap {other.id} on {clip.track} "
                    f"(frames {other.position}..{other.end})"
                )

    # -- the commands ---------------------------------------------------------------

    @command
    def on_add_media(self, *, path: str, id: str | None = None) -> dict[str, Any]:
        """Add a media file (probed now; the session keeps what the probe found)."""
        mid = self._new_id("m", id, set(self.session.media))
        return {"id": mid, "path": os.path.abspath(path), **self.probe(os.path.abspath(path))}

    def apply_add_media(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(media=(a["id"],))
        self.session.media[a["id"]] = Media.from_wire(a)
        return memento

    @command
    def on_add_track(
        self, *, name: str = "", id: str | None = None, index: int | None = None
    ) -> dict[str, Any]:
        """Add a track (on top, or at ``index`` counting from the bottom)."""
        tid = self._new_id("t", id, {t.id for t in self.session.tracks})
        count = len(self.session.tracks)
        at = count if index is None else index
        if not 0 <= at <= count:
            raise BadArguments(f"index {index} is not within 0..{count}")
        return {"id": tid, "name": name or tid, "index": at}

    def apply_add_track(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(tracks=True)
        self.session.tracks.insert(a["index"], Track(a["id"], a["name"]))
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
        id: str | None = None,
    ) -> dict[str, Any]:
        """Place frames [source_in, source_out) of a media at ``position`` (frames) on a track."""
        m = self.session.media.get(media)
        if m is None:
            raise NotFound(f"no media {media!r}")
        cid = self._new_id("c", id, set(self.session.clips))
        out = m.frames if source_out is None else source_out
        clip = Clip(cid, media, track, position, source_in, out, opacity)
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
        """Remove a clip."""
        self._need_clip(id)
        return {"id": id}

    def apply_remove_clip(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(clips=(a["id"],))
        del self.session.clips[a["id"]]
        return memento

    @command
    def on_set_output(
        self, *, width: int | None = None, height: int | None = None, rate: str | None = None
    ) -> dict[str, Any]:
        """Set the output frame size and rate (rate as "25" or "30000/1001")."""
        out = self.session.output
        w = out.width if width is None else width
        h = out.height if height is None else height
        if not (16 <= w <= 16384 and 16 <= h <= 16384) or w % 2 or h % 2:
            raise BadArguments(f"output {w}x{h}: even sizes within 16..16384")
        try:
            r = out.rate if rate is None else rate_of(rate)
        except ValueError as e:
            raise BadArguments(str(e)) from None
        return {"width": w, "height": h, "rate": rate_text(r)}

    def apply_set_output(self, a: dict[str, Any]) -> Memento:
        memento = self.capture(output=True)
        self.session.output = Output.from_wire(a)
        return memento


def _wire(part: Clip | Media | None) -> dict[str, Any] | None:
    return None if part is None else part.to_wire()
