"""An OpenTimelineIO timeline as session commands: planned and checked whole, then run.

:func:`plan_import` reads an ``otio.schema.Timeline`` (export and its
conventions: :mod:`lumiera.steam.otio`) into the commands a user would type
(``set_output``, ``add_media``, ``add_track``, ``add_clip``, ``add_transition``),
each with an explicit id, and runs them on a scratch copy of the session first:
every media file is probed (a missing one is a MediaError naming each), every
clip placed by the session's own rules. Any problem raises before a single
command reaches the session: an import is all or nothing.
:func:`execute_plan` then runs them on a :class:`~lumiera.steam.core.SessionCore`
as ordinary journaled commands (one transaction; each one undoable).

Positions and lengths come from the track's time at the output rate, a clip's
first frame from its ``source_range`` start at its media's rate (less the
media's ``available_range`` start: its timecode). A time that is not a whole
frame is rounded and the plan's ``report`` says so; so does everything lumiera
cannot represent and leaves out: nested stacks and tracks, effects other than
lumiera's own frame-for-frame time warp, speed changes, markers, disabled
clips, references that are not files, transitions other than a dissolve
between two clips. Nothing is dropped without a line in the report.

A transition (``in_offset`` i before the cut, ``out_offset`` o after it) becomes
clip ``a`` ending o frames after the cut, clip ``b`` starting there, and
``add_transition(a, b, length=i+o)``, which extends ``b`` left over ``a``: both
clips need those frames in their media's handles.
"""

from __future__ import annotations

import math
import os
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from lumiera.bus.timeline import Media, rate_text
from lumiera.errors import BadArguments, Conflict, LumieraError, MediaError
from lumiera.steam.core import SessionCore
from lumiera.steam.edits import Edits
from lumiera.steam.model import Session
from lumiera.steam.otio import DISSOLVE, KEY, frames_at, rate_of_float

Command = tuple[str, dict[str, Any]]
Prober = Callable[[str], dict[str, Any]]


@dataclass
class Plan:
    """The commands of an import, in order, and what it leaves out or rounds (``report``)."""

    commands: list[Command] = field(default_factory=list)
    report: list[str] = field(default_factory=list)

    def count(self, command: str) -> int:
        return sum(1 for c, _ in self.commands if c == command)


class CachedProbe:
    """A probe that probes each path once (the check pass and the import see the same file)."""

    def __init__(self, probe: Prober) -> None:
        self.probe = probe
        self.found: dict[str, dict[str, Any]] = {}

    def __call__(self, path: str) -> dict[str, Any]:
        if path not in self.found:
            self.found[path] = self.probe(path)
        return dict(self.found[path])


@dataclass
class _Placed:
    """A clip as planned: its add_clip arguments and where it came from."""

    args: dict[str, Any]
    where: str


def _plain(value: Any) -> Any:
    """otio's AnyDictionary and AnyVector (and what they hold) as dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value


def _meta(item: Any) -> dict[str, Any]:
    """What lumiera wrote into an otio object's ``metadata["lumiera"]`` ({} if nothing)."""
    found = _plain(item.metadata.get(KEY)) if item.metadata is not None else None
    return found if isinstance(found, dict) else {}


def _round(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


class _Planner:
    def __init__(
        self, session: Session, probe: Prober, base_dir: Path | None, append: bool
    ) -> None:
        self.scratch = Session.from_data(session.to_data())
        self.edits = Edits(self.scratch, probe)
        self.base_dir = base_dir
        self.append = append
        self.plan = Plan()
        self.errors: list[str] = []
        self.media: dict[tuple[str, str], str] = {}  # (wanted id, path) -> media id
        self.clip_media: dict[int, tuple[str, str]] = {}  # id(otio clip) -> (wanted id, path)
        self.taken: set[str] = set()

    # -- running a command on the scratch session -------------------------------------

    def run(self, command: str, args: dict[str, Any], where: str) -> bool:
        try:
            resolved = self.edits.handle(command, args)
            getattr(self.edits, f"apply_{command}")(resolved)
        except LumieraError as e:
            self.errors.append(f"{where}: {e}")
            return False
        self.plan.commands.append((command, args))
        return True

    def fresh_id(self, prefix: str, wanted: Any, existing: set[str]) -> str:
        taken = existing | self.taken
        if isinstance(wanted, str) and 0 < len(wanted) <= 64 and wanted not in taken:
            chosen = wanted
        else:
            n = len(existing) + 1
            while f"{prefix}{n}" in taken:
                n += 1
            chosen = f"{prefix}{n}"
        self.taken.add(chosen)
        return chosen

    def lost(self, where: str, what: str) -> None:
        self.plan.report.append(f"{where}: {what}")

    def frames(self, value: Fraction, where: str, what: str) -> int:
        whole = _round(value)
        if value != whole:
            self.lost(where, f"{what} {float(value):g} is not a whole frame: rounded to {whole}")
        return whole

    # -- the timeline -------------------------------------------------------------------

    def timeline(self, tl: Any) -> None:
        s = self.scratch
        if not self.append and (s.media or s.tracks or s.clips):
            raise Conflict("the session is not empty (--append imports into it)")
        stack = tl.tracks
        if stack.effects or stack.markers or stack.source_range is not None:
            self.lost("timeline", "effects, markers or a trimmed range of its stack: left out")
        start = tl.global_start_time
        if start is not None and start.value != 0:
            self.lost("timeline", f"global_start_time {start.to_timecode()}: starts at 0")
        self.output(tl)
        clips = [
            c
            for t in stack
            if isinstance(t, otio.schema.Track)
            for c in t.find_clips(shallow_search=True)
        ]
        self.all_media(tl, clips)
        for k, track in enumerate(stack):
            where = f"track {k} {track.name!r}"
            if not isinstance(track, otio.schema.Track):
                self.lost(where, f"a nested {type(track).__name__}: left out")
                continue
            self.track(track, where)
        if self.errors:
            raise BadArguments("cannot import:\n  " + "\n  ".join(self.errors))

    def output(self, tl: Any) -> None:
        wanted = _meta(tl).get("output")
        if self.append:
            if isinstance(wanted, dict) and wanted.get("rate") != rate_text(
                self.scratch.output.rate
            ):
                self.lost("timeline", "its output settings: the session's are kept (--append)")
            return
        if isinstance(wanted, dict):
            args = {k: wanted[k] for k in ("width", "height", "rate", "audio_rate", "audio_layout")
                    if k in wanted}  # fmt: skip
            self.run("set_output", args, "timeline output")
            return
        rate = self.rate_in(tl)
        if rate is not None and rate != self.scratch.output.rate:
            self.run("set_output", {"rate": rate_text(rate)}, "timeline output")

    @staticmethod
    def rate_in(tl: Any) -> Fraction | None:
        """A hand-written timeline's rate: its first gap's or clip's, else its start time's."""
        for item in tl.find_children(search_range=None):
            if isinstance(item, otio.schema.Gap | otio.schema.Clip):
                return rate_of_float(item.trimmed_range().duration.rate)
        start = tl.global_start_time
        return None if start is None or start.rate == 1 else rate_of_float(start.rate)

    # -- media ----------------------------------------------------------------------------

    def path_of(self, clip: Any, where: str) -> str | None:
        ref = clip.media_reference
        if not isinstance(ref, otio.schema.ExternalReference):
            self.lost(where, f"a {type(ref).__name__}, not a media file: the clip is left out")
            return None
        url = urllib.parse.urlparse(ref.target_url)
        if url.scheme == "file":
            return os.path.abspath(urllib.request.url2pathname(url.path))
        if url.scheme and len(url.scheme) > 1:  # (a Windows drive letter is no scheme)
            self.lost(where, f"media {ref.target_url!r} is not a file: the clip is left out")
            return None
        path = Path(ref.target_url)
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return os.path.abspath(path)

    def all_media(self, tl: Any, clips: list[Any]) -> None:
        wanted: list[tuple[str, str]] = []
        for clip in clips:
            path = self.path_of(clip, f"clip {clip.name!r}") if clip.enabled else None
            if path is not None:
                mid = str(_meta(clip.media_reference).get("id", ""))
                self.clip_media[id(clip)] = (mid, path)
                wanted.append((mid, path))
        for unused in _meta(tl).get("media", []):
            wanted.append((str(unused.get("id", "")), str(unused.get("path", ""))))
        missing = []
        for mid, path in dict.fromkeys(wanted):
            try:
                self.edits.probe(path)
            except MediaError as e:
                missing.append(str(e))
                continue
            chosen = self.fresh_id("m", mid or None, set(self.scratch.media))
            if self.run("add_media", {"path": path, "id": chosen}, f"media {path}"):
                self.media[(mid, path)] = chosen
        if missing:
            raise MediaError("cannot import, media missing:\n  " + "\n  ".join(missing))

    # -- tracks -------------------------------------------------------------------------------

    def track(self, track: Any, where: str) -> None:
        kinds = {otio.schema.TrackKind.Video: "video", otio.schema.TrackKind.Audio: "audio"}
        kind = kinds.get(track.kind)
        if kind is None:
            self.lost(where, f"kind {track.kind!r} is neither Video nor Audio: left out")
            return
        if track.effects or track.markers or track.source_range is not None:
            self.lost(where, "effects, markers or a trimmed range of the track: left out")
        tid = self.fresh_id("t", _meta(track).get("id"), {t.id for t in self.scratch.tracks})
        if not self.run("add_track", {"name": track.name, "id": tid, "kind": kind}, where):
            return
        rate = self.scratch.output.rate
        at = Fraction(0)
        placed: list[_Placed | None] = []  # per child: the clip planned, or None
        fades: list[tuple[Any, int, str]] = []  # (transition, index of the child, where)
        for k, item in enumerate(track):
            here = f"{where} item {k} {item.name!r}"
            if isinstance(item, otio.schema.Transition):
                fades.append((item, k, here))
                placed.append(None)
                continue
            try:
                length = frames_at(item.trimmed_range().duration, rate)
            except otio.exceptions.OTIOError as e:
                self.errors.append(f"{here}: no length ({e})")
                placed.append(None)
                continue
            clip = None
            if isinstance(item, otio.schema.Clip):
                clip = self.clip(item, tid, at, length, here)
            elif not isinstance(item, otio.schema.Gap):
                self.lost(here, f"a nested {type(item).__name__}: left out (a gap here)")
            elif item.effects or item.markers:
                self.lost(here, "effects or markers of a gap: left out")
            placed.append(clip)
            at += length
        joins = [j for f in fades if (j := self.transition(f, placed, rate)) is not None]
        for clip in placed:
            if clip is not None:
                self.run("add_clip", clip.args, clip.where)
        for args, here in joins:
            self.run("add_transition", args, here)

    def clip(
        self, item: Any, track: str, at: Fraction, length: Fraction, where: str
    ) -> _Placed | None:
        if not item.enabled:
            self.lost(where, "a disabled clip: left out")
        mid = self.media.get(self.clip_media.get(id(item), ("", "")))
        if mid is None:  # not a file (reported), or refused by add_media (an error)
            return None
        media = self.scratch.media[mid]
        rate = self.scratch.output.rate
        self.effects(item, media, rate, where)
        if item.markers:
            self.lost(where, f"{len(item.markers)} marker(s): left out")
        source = item.trimmed_range()
        first = frames_at(source.start_time, media.rate)
        available = item.media_reference.available_range
        if available is not None:
            first -= frames_at(available.start_time, media.rate)
        position = self.frames(at, where, "position")
        end = self.frames(at + length, where, "end")
        source_in = self.frames(first, where, "source start")
        meta = _meta(item)
        cid = self.fresh_id("c", meta.get("id"), set(self.scratch.clips))
        args: dict[str, Any] = {
            "id": cid,
            "media": mid,
            "track": track,
            "position": position,
            "source_in": source_in,
            "source_out": source_in + end - position,
        }
        for name in ("opacity", "gain_db"):
            if isinstance(meta.get(name), int | float):
                args[name] = float(meta[name])
        return _Placed(args, where)

    def effects(self, item: Any, media: Media, rate: Fraction, where: str) -> None:
        scalar = 1.0
        for effect in item.effects:
            if type(effect) is otio.schema.LinearTimeWarp:
                scalar *= effect.time_scalar
            else:
                self.lost(where, f"effect {effect.effect_name or type(effect).__name__}: left out")
        native = float(rate / media.rate)  # lumiera plays media frame for frame
        if not math.isclose(scalar, native, rel_tol=1e-9):
            self.lost(
                where,
                f"speed x{scalar:g}: plays frame for frame at the output rate "
                f"{rate_text(rate)} (x{native:g} of its media at {rate_text(media.rate)})",
            )

    def transition(
        self, fade: tuple[Any, int, str], placed: list[_Placed | None], rate: Fraction
    ) -> tuple[dict[str, Any], str] | None:
        item, k, where = fade
        if item.transition_type != DISSOLVE:
            self.lost(where, f"a {item.transition_type} transition: left out (a cut)")
            return None
        a = placed[k - 1] if k > 0 else None
        b = placed[k + 1] if k + 1 < len(placed) else None
        if a is None or b is None:
            self.lost(where, "a transition not between two clips: left out")
            return None
        before = self.frames(frames_at(item.in_offset, rate), where, "in_offset")
        after = self.frames(frames_at(item.out_offset, rate), where, "out_offset")
        if before + after <= 0:
            self.lost(where, "a transition of no length: left out")
            return None
        a.args["source_out"] += after
        b.args.update(position=b.args["position"] + after, source_in=b.args["source_in"] + after)
        meta = _meta(item)
        tid = self.fresh_id("x", meta.get("id"), set(self.scratch.transitions))
        args = {"id": tid, "a": a.args["id"], "b": b.args["id"], "length": before + after}
        if meta.get("curve") is not None:
            args["curve"] = meta["curve"]
        return args, where


def plan_import(
    tl: Any,
    session: Session,
    probe: Prober,
    *,
    base_dir: Path | None = None,
    append: bool = False,
) -> Plan:
    """The commands that import ``tl`` into ``session``, checked on a copy (see the docstring).

    Raises Conflict (a non-empty session without ``append``), MediaError (media
    missing or undecodable: each named) or BadArguments (what the session's
    rules refuse), and nothing is planned; the session itself is never changed.
    """
    if not isinstance(tl, otio.schema.Timeline):
        raise BadArguments(f"not a timeline but a {type(tl).__name__}")
    planner = _Planner(session, probe, base_dir, append)
    planner.timeline(tl)
    return planner.plan


def execute_plan(core: SessionCore, plan: Plan) -> int:
    """Run the plan's commands on the session (one transaction); returns its revision.

    The check pass made them valid; should one fail anyway, those that ran are
    undone and its error raised.
    """
    outcomes = core.execute_many([(c, dict(a), None) for c, a in plan.commands])
    failed = [o for o in outcomes if isinstance(o, LumieraError)]
    if failed:
        done = len(outcomes) - len(failed)
        core.execute_many([("undo", {}, None)] * done)
        raise failed[0]
    return core.session.revision


__all__ = ["CachedProbe", "Plan", "execute_plan", "plan_import"]
