"""A session's timeline as OpenTimelineIO, and the exact time arithmetic both ways.

:func:`to_otio` turns a :class:`~lumiera.bus.timeline.Timeline` into an
``opentimelineio`` timeline (import: :mod:`lumiera.steam.otio_import`):

- each track (bottom to top) is an OTIO track of kind Video or Audio; its clips
  in order, with a Gap wherever nothing plays; gaps, clip durations and
  transition offsets are RationalTimes at the output's rate;
- a clip's ``source_range`` starts at its first media frame at the media's rate
  and lasts its length in the track; a media whose rate is not the output's
  plays frame for frame in lumiera (a speed change), written as a
  ``LinearTimeWarp`` of ``time_scalar`` = output rate / media rate;
- its media is an ``ExternalReference`` (a ``file://`` URL) with the media's
  ``available_range``;
- a transition (clip ``b`` starting inside clip ``a``) is an ``SMPTE_Dissolve``
  between the two at the cut ``a.end``: ``in_offset`` = the overlap,
  ``out_offset`` = 0, and ``b`` starting at the cut with its first frames
  (those of the overlap) in its handle. This is how ``add_transition`` makes
  one, so an import makes the same clips again;
- what OTIO has no field for goes into ``metadata["lumiera"]``: ids, a clip's
  opacity and gain_db, a transition's curve, the output settings, and the
  media no clip uses.

Times are exact: a frame count at a rate is a RationalTime of an integral
value; reading one back, :func:`rate_of_float` recognises the double of an NTSC
rate (``30000/1001``) as that fraction, and :func:`frames_at` converts with
Fractions, so nothing is rounded that was whole.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from lumiera.bus.timeline import Clip, Media, Timeline

KEY = "lumiera"  # the metadata key of what only lumiera reads
DISSOLVE = "SMPTE_Dissolve"
FORMAT_VERSION = 1


def rational(frames: int | Fraction, rate: Fraction) -> Any:
    """``frames`` frames at ``rate`` as an otio RationalTime."""
    return otio.opentime.RationalTime(float(frames), float(rate))


def time_range(start: int, duration: int, start_rate: Fraction, rate: Fraction) -> Any:
    return otio.opentime.TimeRange(rational(start, start_rate), rational(duration, rate))


def rate_of_float(rate: float) -> Fraction:
    """The exact rate a double stands for: ``29.97002997...`` is 30000/1001, 25.0 is 25."""
    if not rate > 0:
        raise ValueError(f"rate {rate} is not positive")
    near = Fraction(rate).limit_denominator(1001)
    return near if float(near) == rate else Fraction(rate)


def frames_at(t: Any, rate: Fraction) -> Fraction:
    """An otio RationalTime as a (maybe fractional) count of frames at ``rate``, exactly."""
    return Fraction(t.value) * rate / rate_of_float(t.rate)


def media_url(path: str) -> str:
    """A media path as a reference's ``target_url``: a file URL where the path is absolute."""
    p = Path(path)
    return p.as_uri() if p.is_absolute() else path


def to_otio(timeline: Timeline, name: str = "") -> Any:
    """The timeline as an ``otio.schema.Timeline`` (see the module docstring)."""
    rate = timeline.output.rate
    used = {c.media for c in timeline.clips}
    meta = {
        "version": FORMAT_VERSION,
        "output": timeline.output.to_wire(),
        "media": [{"id": m.id, "path": m.path} for m in timeline.media if m.id not in used],
    }
    result = otio.schema.Timeline(
        name=name, global_start_time=rational(0, rate), metadata={KEY: meta}
    )
    incoming = {t.b: t for t in timeline.transitions}
    for track in timeline.tracks:
        kind = otio.schema.TrackKind.Video if track.kind == "video" else otio.schema.TrackKind.Audio
        out = otio.schema.Track(name=track.name, kind=kind, metadata={KEY: {"id": track.id}})
        at = 0
        clips = sorted((c for c in timeline.clips if c.track == track.id), key=lambda c: c.position)
        for clip in clips:
            fade = incoming.get(clip.id)
            overlap = 0 if fade is None else timeline.clip_by_id[fade.a].end - clip.position
            start = clip.position + overlap
            if start > at:
                out.append(otio.schema.Gap(duration=rational(start - at, rate)))
            if fade is not None:
                out.append(
                    otio.schema.Transition(
                        name=fade.id,
                        transition_type=DISSOLVE,
                        in_offset=rational(overlap, rate),
                        out_offset=rational(0, rate),
                        metadata={KEY: {"id": fade.id, "curve": fade.curve}},
                    )
                )
            out.append(_clip(clip, timeline.media_of(clip), overlap, rate))
            at = clip.end
        result.tracks.append(out)
    return result


def _clip(clip: Clip, media: Media, skip: int, rate: Fraction) -> Any:
    """The otio clip of ``clip`` without its first ``skip`` frames (they are a transition's)."""
    reference = otio.schema.ExternalReference(
        target_url=media_url(media.path),
        available_range=time_range(0, media.frames, media.rate, media.rate),
        metadata={KEY: {"id": media.id}},
    )
    effects = []
    if media.rate != rate:  # frame for frame at the output's rate: a speed change
        effects.append(otio.schema.LinearTimeWarp(time_scalar=float(rate / media.rate)))
    return otio.schema.Clip(
        name=Path(media.path).name,
        media_reference=reference,
        source_range=time_range(clip.source_in + skip, clip.length - skip, media.rate, rate),
        effects=effects,
        metadata={KEY: {"id": clip.id, "opacity": clip.opacity, "gain_db": clip.gain_db}},
    )


def write(timeline: Timeline, path: Path, name: str = "") -> None:
    """Write the timeline to ``path`` in the format of its suffix (an otio adapter)."""
    otio.adapters.write_to_file(to_otio(timeline, name), str(path))


def adapters(feature: str) -> dict[str, str]:
    """Suffix -> adapter name of the installed otio adapters that can ``read`` or ``write``."""
    found: dict[str, str] = {}
    for adapter in otio.plugins.ActiveManifest().adapters:
        if adapter.has_feature(feature):
            for suffix in adapter.suffixes:
                found.setdefault(str(suffix).lower(), str(adapter.name))
    return found


__all__ = [
    "DISSOLVE",
    "KEY",
    "adapters",
    "frames_at",
    "media_url",
    "rate_of_float",
    "rational",
    "to_otio",
    "write",
]
