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
     "output": {"width": 1920, "height": 1080, "rate": "25",
                "audio_rate": 48000, "audio_layout": "stereo"},
     "media":  [{"id", "path", "frames", "rate", "width", "height", "pix_fmt",
                 "size", "mtime_ns", "inode",
                 "audio_rate", "audio_channels", "audio_layout", "audio_samples"}, ...],
     "tracks": [{"id", "name", "kind"}, ...],            # bottom to top; video or audio
     "clips":  [{"id", "media", "track", "position", "source_in", "source_out",
                 "opacity", "gain_db"}, ...],
     "transitions": [{"id", "a", "b", "curve"}, ...]}   # crossfades where clips overlap

Rates are exact fractions written ``"25"`` or ``"30000/1001"``; positions and
lengths are whole frames of the output's rate. :meth:`Timeline.from_wire`
checks every field's type and the contract's invariants (ids unique, every
clip's media and track declared, its source range within its media, a video
track's clips of media with video and an audio track's of media with audio, no
two clips of a track overlapping except where a transition joins them) and
raises :class:`~lumiera.errors.BadTimeline` naming the first field that fails:
a malformed timeline is an error reply, never a half-built stream. ``inode`` 0
means "not recorded" (sessions made before it was): the file's identity is then
its size and mtime. Fields added later (audio, kinds, gains, transitions) have
defaults: older sessions and clients stay valid. Sound is placed by the same
frame arithmetic as pictures: output frame n spans samples
``[Output.sample_of(n), Output.sample_of(n+1))``.
"""

from __future__ import annotations

import functools
import math
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


# Channel layouts of the audio output (FFmpeg's names) and their channel counts.
LAYOUTS = {"mono": 1, "stereo": 2, "5.1": 6}
AUDIO_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000)
TRACK_KINDS = ("video", "audio")
CURVES = ("linear", "equal_power")
MIN_GAIN_DB, MAX_GAIN_DB = -96.0, 24.0


@dataclass(frozen=True)
class Output(Part):
    """What the timeline renders to: frame size and rate, audio sample rate and layout."""

    width: int = 1920
    height: int = 1080
    rate: Fraction = Fraction(25)
    audio_rate: int = 48000
    audio_layout: Name = "stereo"

    @property
    def channels(self) -> int:
        return LAYOUTS[self.audio_layout]

    def sample_of(self, index: int) -> int:
        """The first audio sample of output frame ``index``: round(index x SR / fps), half up.

        Exact rational arithmetic: no drift, however long the timeline. At 25 fps
        and 48 kHz every frame has 1920 samples; at 30000/1001 the 1601/1602 pattern.
        """
        exact = Fraction(index * self.audio_rate) / self.rate
        return math.floor(exact + Fraction(1, 2))

    def samples_in(self, index: int) -> int:
        """How many audio samples output frame ``index`` spans."""
        return self.sample_of(index + 1) - self.sample_of(index)

    def invalid(self) -> str | None:
        if not (1 <= self.width <= MAX_SIZE and 1 <= self.height <= MAX_SIZE):
            return f"size {self.width}x{self.height} is not within 1..{MAX_SIZE}"
        if self.audio_rate not in AUDIO_RATES:
            return f"audio_rate {self.audio_rate} is not one of {', '.join(map(str, AUDIO_RATES))}"
        if self.audio_layout not in LAYOUTS:
            return f"audio_layout {self.audio_layout!r} is not one of {', '.join(LAYOUTS)}"
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
    # Its first audio stream as probed (audio_rate 0: none). An audio-only media has
    # width and height 0, and frames/rate of the output rate it was added at.
    audio_rate: int = 0
    audio_channels: int = 0
    audio_layout: Name = ""
    audio_samples: int = 0

    @property
    def has_video(self) -> bool:
        return self.width > 0

    @property
    def has_audio(self) -> bool:
        return self.audio_rate > 0

    def invalid(self) -> str | None:
        counts = (self.frames, self.width, self.height, self.size, self.mtime_ns, self.inode)
        audio = (self.audio_rate, self.audio_channels, self.audio_samples)
        if min(*counts, *audio) < 0:
            return "frames, size, mtime_ns, inode, width, height and audio cannot be negative"
        if not self.has_video and not self.has_audio:
            return "neither video (width, height) nor audio (audio_rate)"
        if self.has_audio and self.audio_channels < 1:
            return f"audio_rate {self.audio_rate} with {self.audio_channels} channels"
        return None


@dataclass(frozen=True)
class Track(Part):
    """A track; the timeline lists them bottom to top.

    A ``video`` track's clips show their media's pictures and carry its sound
    (where it has one); an ``audio`` track's clips carry only sound.
    """

    id: Id
    name: Text
    kind: Name = "video"

    def invalid(self) -> str | None:
        if self.kind not in TRACK_KINDS:
            return f"kind {self.kind!r} is not one of {', '.join(TRACK_KINDS)}"
        return None


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
    gain_db: float = 0.0  # its sound's gain

    @property
    def gain(self) -> float:
        """The linear factor of ``gain_db``."""
        return 0.0 if self.gain_db <= MIN_GAIN_DB else 10.0 ** (self.gain_db / 20.0)

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
        # The ends written out, not the properties: a placing edit asks this of every
        # clip of the session (steam.editbase._check_place), and the two property calls
        # each were most of its time.
        return (
            self.track == other.track
            and self.position < other.position + other.source_out - other.source_in
            and other.position < self.position + self.source_out - self.source_in
        )

    def invalid(self) -> str | None:
        if self.position < 0:
            return f"position {self.position} is before the start"
        if not 0 <= self.source_in < self.source_out:
            return f"source range [{self.source_in}, {self.source_out}) is empty or negative"
        if not 0.0 <= self.opacity <= 1.0:
            return f"opacity {self.opacity} is not within 0..1"
        if not MIN_GAIN_DB <= self.gain_db <= MAX_GAIN_DB:
            return f"gain_db {self.gain_db} is not within {MIN_GAIN_DB:g}..{MAX_GAIN_DB:g}"
        return None


@dataclass(frozen=True)
class Transition(Part):
    """A crossfade from clip ``a`` into clip ``b`` where they overlap on one track.

    Over the overlap ``[b.position, a.end)`` of L frames, output frame n has
    ``t = (n - b.position) / L``: the picture is ``a x (1 - t) + b x t`` (a
    dissolve), and each audio sample s of the overlap's S samples has
    ``u = (s - first sample) / S`` with gains ``1 - u``, ``u`` (``linear``) or
    ``cos(u pi/2)``, ``sin(u pi/2)`` (``equal_power``).
    """

    id: Id
    a: Id
    b: Id
    curve: Name = "linear"

    def invalid(self) -> str | None:
        if self.curve not in CURVES:
            return f"curve {self.curve!r} is not one of {', '.join(CURVES)}"
        if self.a == self.b:
            return "a and b are the same clip"
        return None


@dataclass(frozen=True)
class Timeline(Part):
    """A session's edit as the Engine renders it (see the module docstring)."""

    output: Output
    media: tuple[Media, ...] = ()
    tracks: tuple[Track, ...] = ()  # bottom to top
    clips: tuple[Clip, ...] = ()
    revision: int = 0
    transitions: tuple[Transition, ...] = ()

    @functools.cached_property
    def media_by_id(self) -> dict[str, Media]:
        return {m.id: m for m in self.media}

    @functools.cached_property
    def clip_by_id(self) -> dict[str, Clip]:
        return {c.id: c for c in self.clips}

    @functools.cached_property
    def track_by_id(self) -> dict[str, Track]:
        return {t.id: t for t in self.tracks}

    @functools.cached_property
    def _fades(self) -> dict[str, list[tuple[Transition, bool]]]:
        """clip id -> its transitions, each with whether the clip is the one fading in."""
        fades: dict[str, list[tuple[Transition, bool]]] = {}
        for t in self.transitions:
            fades.setdefault(t.a, []).append((t, False))
            fades.setdefault(t.b, []).append((t, True))
        return fades

    def overlap_of(self, transition: Transition) -> tuple[int, int]:
        """The output frames ``[first, end)`` a transition spans."""
        a, b = self.clip_by_id[transition.a], self.clip_by_id[transition.b]
        return b.position, a.end

    def weight(self, clip: Clip, index: int) -> float:
        """How much of ``clip`` output frame ``index`` shows: 1 outside its transitions."""
        for transition, fading_in in self._fades.get(clip.id, ()):
            first, end = self.overlap_of(transition)
            if first <= index < end:
                t = Fraction(index - first, end - first)
                return float(t if fading_in else 1 - t)
        return 1.0

    def dissolve_step(self, a: Clip, b: Clip, index: int) -> tuple[int, int]:
        """(k, L) of frame ``index`` in the transition from ``a`` into ``b``: t = k / L."""
        for transition, fading_in in self._fades.get(b.id, ()):
            if fading_in and transition.a == a.id:
                first, end = self.overlap_of(transition)
                return index - first, end - first
        raise ValueError(f"no transition from {a.id} into {b.id}")

    def is_video(self, clip: Clip) -> bool:
        """Whether the clip shows pictures (on a video track, of a media with video)."""
        return self.track_by_id[clip.track].kind == "video" and self.media_of(clip).has_video

    def sounds(self, clip: Clip) -> bool:
        """Whether the clip carries sound (its media has audio; any track kind)."""
        return self.media_of(clip).has_audio

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
        """(clip, media frame) of the pictures of output frame ``index``, bottom track first.

        Clips on audio tracks and clips of audio-only media show no picture; in a
        transition both clips are listed, the one fading out first (:meth:`weight`).
        """
        shown = [(c, c.source(index)) for c in self.clips if c.shows(index) and self.is_video(c)]
        shown.sort(key=lambda cs: (self._track_order[cs[0].track], cs[0].position))
        return shown

    def invalid(self) -> str | None:
        parts = (
            ("media", self.media),
            ("tracks", self.tracks),
            ("clips", self.clips),
            ("transitions", self.transitions),
        )
        for kind, items in parts:
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
            kind = self.track_by_id[clip.track].kind
            if kind == "video" and not media.has_video:
                return f"clips[{k}]: {media.id} has no video for video track {clip.track}"
            if kind == "audio" and not media.has_audio:
                return f"clips[{k}]: {media.id} has no audio for audio track {clip.track}"
            by_track.setdefault(clip.track, []).append(clip)
        joined = set()
        for k, t in enumerate(self.transitions):
            problem = self._transition_problem(t)
            if problem is not None:
                return f"transitions[{k}]: {problem}"
            joined.add((t.a, t.b))
        for clips in by_track.values():
            clips.sort(key=lambda c: c.position)
            for i, a in enumerate(clips):
                end = a.end
                for j in range(i + 1, len(clips)):  # by index: a slice copied the rest each time
                    b = clips[j]
                    if b.position >= end:
                        break
                    if (a.id, b.id) not in joined:
                        return f"clips: {a.id} and {b.id} overlap on {a.track} without a transition"
        return None

    def _transition_problem(self, t: Transition) -> str | None:
        a, b = self.clip_by_id.get(t.a), self.clip_by_id.get(t.b)
        if a is None or b is None:
            return f"no clip {t.a if a is None else t.b!r}"
        if a.track != b.track:
            return f"{a.id} and {b.id} are on different tracks"
        if not a.position < b.position < a.end < b.end:
            return f"{a.id} must start first and {b.id} begin inside it and end after it"
        for other in self.transitions:
            if other is not t and (other.a == t.a or other.b == t.b):
                return f"{a.id if other.a == t.a else b.id} is in two transitions of one side"
        return None


__all__ = [
    "LAYOUTS",
    "Clip",
    "Media",
    "Output",
    "Timeline",
    "Track",
    "Transition",
    "rate_of",
    "rate_text",
]
