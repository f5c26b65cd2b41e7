"""Sample-exact sound: one media's audio at the output's rate and layout.

:class:`AudioSource` decodes the first audio stream of one media file to
float32 planar at the output's sample rate and channel layout
(``av.AudioResampler``: FFmpeg's own channel mapping, so a mono media in a
stereo output sounds in both channels at -3 dB, 1/sqrt(2), and in a 5.1 output
in the centre). Samples are counted at the OUTPUT rate from the media's start:
sample k is the media's sound at media time ``k / audio_rate``, where media
time 0 is the start of its video stream when it has video (so that sound and
:class:`~lumiera.vault.media.MediaPool`'s frame numbers agree) and of its audio
stream otherwise (after the decoder dropped the codec's priming: FFmpeg's MP4
and M4A edit lists and MP3's LAME header tell it how much).

Positions come from the frames' timestamps, never from a guess: a read that
is not a continuation seeks to :data:`PREROLL` before the wanted sample,
decodes (AAC and MP3 need the frames before to decode one right), places the
first frame by its pts and drops what comes before. From there samples are
counted, so sequential reads continue without seeking and never drift; each
input frame's pts is checked against the count, and a jump (a frame the
decoder dropped as corrupt, or missing data) is a MediaError naming the file
and the sample, as is any decoder error: a corrupt file is never silence. PCM
(WAV) has no redundancy: garbage there decodes as noise, nobody can tell.

:class:`AudioMixer` mixes a timeline: every sounding clip (its media has
audio, on any track) read from its source, times its gain and its
transition's fade, summed and clipped to [-1, 1]. Output frame n spans samples
``[Output.sample_of(n), Output.sample_of(n+1))``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import av
import numpy as np

from lumiera.bus.timeline import LAYOUTS, Media, Timeline
from lumiera.errors import MediaChanged, MediaError
from lumiera.vault.audiomix import Voice, half_up, samples_of_range
from lumiera.vault.media import Identity

Samples = np.ndarray[Any, np.dtype[np.float32]]

# A seek aims this far (seconds) before the wanted sample: the decoder's warm-up
# (AAC's overlapping transform, MP3's bit reservoir) is dropped, never heard.
PREROLL = Fraction(1, 5)
# A read at most this far (seconds) past the decoder's position decodes through.
SEEK_AHEAD = 2
# A seek landing after its target is retried aiming twice as far back, this far (s).
MAX_SEEK_BACK = 64
# FLAC's decoder checks its CRCs and drops a corrupt frame rather than play it:
# the gap it leaves is then seen in the timestamps. (AAC's and MP3's decoders
# fail on garbage by themselves; exploding on their lesser complaints would
# refuse files that play everywhere.)
DECODER_OPTIONS = {"flac": {"err_detect": "crccheck+explode"}}
# Codecs whose frames all hold frame_size samples (but the first, priming trimmed).
FIXED_FRAMES = frozenset({"aac", "mp3", "mp3float", "mp2", "mp2float", "ac3", "eac3"})
# The mixer keeps at most this many sources open, and this many per media file.
MAX_OPEN, PER_MEDIA = 32, 2


class AudioSource:
    """One media's first audio stream, decoded to float32 planar at the output rate/layout.

    Raises MediaError when the file is missing, not decodable or has no audio,
    MediaChanged when it is not the file the session probed. Not thread-safe.
    """

    _frames: Any  # the decoder's frame iterator
    _resampler: Any
    _chunks: list[Samples]  # the buffered samples, in order
    _start: int  # position of the first buffered sample
    _next: int | None  # position after the last one; None: not yet placed
    _in_next: Fraction | None  # media time the next input frame should have
    _placed_at: int | None  # where the first frame since the seek was placed
    _grid: tuple[Fraction, int] | None  # (where the first frame ends, frame size): media rate
    _ended: bool

    def __init__(self, media: Media, audio_rate: int, layout: str) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"audio layout {layout!r}: one of {', '.join(LAYOUTS)}")
        if audio_rate <= 0:
            raise ValueError(f"audio rate {audio_rate} is not positive")
        self.media, self.path = media, media.path
        self.rate, self.layout, self.channels = audio_rate, layout, LAYOUTS[layout]
        if not media.has_audio:
            raise MediaError(f"media {media.id}: {media.path} has no audio")
        self._expected = Identity.probed(media)
        self.seeks = 0  # how many times it sought (rewinds included)
        self._container: Any = None
        self._check()
        self._open()
        self._find_grid()
        self._reset()

    # -- reading ---------------------------------------------------------------

    def read(self, start: int, count: int) -> Samples:
        """Samples ``[start, start+count)`` as a (channels, count) array; zeros outside the audio.

        Reading on from where the last read ended (or anywhere up to SEEK_AHEAD
        after it) continues decoding; anything else seeks.
        """
        out = np.zeros((self.channels, max(count, 0)), np.float32)
        end, lo = start + count, max(start, 0)
        if lo >= end:
            return out
        self._check()
        try:
            if not self.reaches(lo):
                self._seek(lo)
            while not self._ended and (self._next is None or self._next < end):
                self._decode(lo)
        except MediaError:
            self._reset()
            raise
        self._take(out, start, lo, end)
        return out

    def reaches(self, start: int) -> bool:
        """Whether a read from ``start`` goes on without a seek."""
        if self._frames is None or self._next is None or start < self._start:
            return False
        return self._ended or start <= self._next + SEEK_AHEAD * self.rate

    def _take(self, out: Samples, start: int, lo: int, end: int) -> None:
        """Copy the buffered part of ``[lo, end)`` into ``out``; drop what is before ``lo``."""
        assert self._next is not None
        buf: Samples = (
            self._chunks[0] if len(self._chunks) == 1 else np.concatenate(self._chunks, axis=1)
        )
        first, last = max(lo, self._start), min(end, self._next)
        if first < last:
            out[:, first - start : last - start] = buf[:, first - self._start : last - self._start]
        keep = min(lo, self._next)
        rest = buf[:, keep - self._start :]
        self._chunks = [rest if rest.shape[1] * 2 > buf.shape[1] else rest.copy()]
        self._start = keep

    # -- decoding --------------------------------------------------------------

    def _reset(self) -> None:
        """Forget where the decoder is: the next read seeks."""
        self._frames = None
        self._resampler = None
        self._chunks = [np.zeros((self.channels, 0), np.float32)]
        self._start = 0
        self._next = None
        self._in_next = None
        self._placed_at = None
        self._ended = False

    def _seek(self, target: int) -> None:
        """Position the decoder before ``target`` (a sample at the output rate)."""
        preroll = max(1, int(PREROLL * self.rate))
        back = preroll
        while True:
            aim = target - back
            self.seeks += 1
            self._reset()
            if aim <= 0 or back > MAX_SEEK_BACK * self.rate:
                self._rewind()
                return
            when = self._origin + Fraction(aim, self.rate)
            try:
                self._container.seek(
                    max(0, math.floor(when / self._time_base)),
                    stream=self._stream,
                    backward=True,
                    any_frame=False,
                )
            except av.error.FFmpegError:  # FLAC without a seek table refuses some: aim earlier
                back *= 2
                continue
            self._frames = self._container.decode(self._stream)
            while not self._ended and self._placed_at is None:
                self._decode(target)
            if self._placed_at is not None and self._placed_at <= target - preroll // 2:
                return
            back *= 2  # landed after the target (or past the end): aim earlier

    def _rewind(self) -> None:
        """Decode from the first packet (some containers cannot seek to 0): reopen."""
        self._open()
        self._frames = self._container.decode(self._stream)
        self._next = self._start = 0  # the first frame's pts says where the sound begins

    def _decode(self, keep_from: int) -> None:
        """Decode one frame (or flush at the end) and buffer its samples from ``keep_from`` on."""
        try:
            frame = next(self._frames, None)
            if frame is None:
                resampled = self._resampler.resample(None) if self._resampler else []
                self._ended = True
            else:
                self._follow(frame)
                resampled = self._resample(frame)
        except av.error.FFmpegError as e:
            raise MediaError(
                f"media {self.path}: its audio cannot be decoded at sample {self._here()} ({e})"
            ) from None
        for out in resampled:
            self._place(out, keep_from)

    def _follow(self, frame: Any) -> None:
        """Time an input frame by the samples counted so far, checking its own timestamp.

        The first frame since a seek is placed by its pts (on the codec's frame
        grid where the container's clock is coarser than a sample); the frame
        gets an exact pts in 1/sample_rate for the resampler and :meth:`_place`.
        """
        rate = frame.sample_rate
        if frame.pts is None:
            if self._in_next is None:
                return  # not placeable: dropped (before the first timestamp after a seek)
            when = self._in_next
        else:
            when = frame.pts * self._time_base - self._origin
            if self._in_next is None:
                when = self._snapped(when, frame)
            elif abs(when - self._in_next) > 2 * self._time_base + Fraction(2, rate):
                missing = half_up((when - self._in_next) * self.rate)
                raise MediaError(
                    f"media {self.path}: its audio is corrupt at sample {self._here()} "
                    f"(the stream jumps by {missing} samples: data missing or unreadable)"
                )
            else:
                when = self._in_next  # the count, not a rounded clock
        frame.pts, frame.time_base = half_up((when + self._origin) * rate), Fraction(1, rate)
        self._in_next = when + Fraction(frame.samples, rate)

    def _snapped(self, when: Fraction, frame: Any) -> Fraction:
        """``when`` such that the frame ends on the frame grid, where there is one.

        Frames end on the grid (a frame the decoder trimmed, as MP3's first
        after a seek, too); a correction over a clock tick is not taken.
        """
        if self._grid is None:
            return when
        phase, size = self._grid
        rate = frame.sample_rate
        end = when * rate + frame.samples
        snapped = phase + max(0, round((end - phase) / size)) * size
        if abs(snapped - end) > self._time_base * rate:
            return when
        return Fraction(snapped - frame.samples, rate)

    def _find_grid(self) -> None:
        """Where frames start, for a fixed-size codec in a container with a coarse clock
        (Matroska's 1 ms): the first ends (trimmed of priming), then every frame_size."""
        ctx = self._stream.codec_context
        rate = ctx.sample_rate or 1
        self._grid = None
        if self._time_base * rate <= 1 or ctx.name not in FIXED_FRAMES:
            return
        try:
            frames = self._container.decode(self._stream)
            first, second = next(frames, None), next(frames, None)
        except av.error.FFmpegError:
            return  # a corrupt start: its reads say so
        if first is not None and second is not None and first.pts is not None:
            start = (first.pts * self._time_base - self._origin) * rate
            self._grid = (start + first.samples, second.samples)
        self._open()

    def _resample(self, frame: Any) -> list[Any]:
        if self._resampler is None:
            if frame.pts is None:
                return []  # placed by nothing: before the first timestamp after a seek
            self._resampler = self._new_resampler()
        try:
            out: list[Any] = self._resampler.resample(frame)
            return out
        except ValueError:  # the stream changed format or layout midway: a new resampler
            flushed: list[Any] = self._resampler.resample(None)
            self._resampler = self._new_resampler()
            return flushed + list(self._resampler.resample(frame))

    def _new_resampler(self) -> Any:
        return av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)

    def _place(self, frame: Any, keep_from: int) -> None:
        """Append a resampled frame: the first after a seek where its pts says, then counted."""
        data: Samples = frame.to_ndarray()
        if data.shape[0] != self.channels:
            raise MediaError(
                f"media {self.path}: decoded {data.shape[0]} channels, not {self.channels}"
            )
        if self._placed_at is None:
            if frame.pts is None:
                return
            at = half_up((frame.pts * Fraction(frame.time_base) - self._origin) * self.rate)
            if self._next is None or at < self._next:  # after a seek, or sound before 0
                self._next = self._start = at
            elif at > self._next:  # after a rewind: the sound begins later (silence up to it)
                self._append(np.zeros((self.channels, at - self._next), np.float32), keep_from)
            self._placed_at = at
        self._append(data, keep_from)

    def _append(self, data: Samples, keep_from: int) -> None:
        assert self._next is not None
        self._next += data.shape[1]
        if self._next <= keep_from:  # all before what is wanted: drop it
            self._chunks, self._start = [data[:, :0]], self._next
        else:
            self._chunks.append(data)

    def _here(self) -> int:
        if self._next is not None:
            return self._next
        return 0 if self._in_next is None else half_up(self._in_next * self.rate)

    # -- the file --------------------------------------------------------------

    def _check(self) -> None:
        now = Identity.of(self.path)  # every read: a file rewritten while open is caught too
        if not self._expected.matches(now):
            raise MediaChanged(
                f"media {self.path} changed on disk since it was probed "
                f"(size {self._expected.size} -> {now.size}, mtime or inode differ)"
            )

    def _open(self) -> None:
        self.close()
        try:
            container = av.open(self.path)
        except (av.error.FFmpegError, OSError) as e:
            raise MediaError(f"media {self.path}: cannot open ({e})") from None
        if not container.streams.audio:
            container.close()
            raise MediaError(f"media {self.path}: no audio stream")
        stream = container.streams.audio[0]
        stream.codec_context.options = dict(DECODER_OPTIONS.get(stream.codec_context.name, {}))
        rate = stream.codec_context.sample_rate or stream.rate or 1
        self._time_base = Fraction(stream.time_base or Fraction(1, rate))
        timed = (
            container.streams.video[0]
            if self.media.has_video and container.streams.video
            else stream
        )
        start, base = timed.start_time, timed.time_base
        self._origin = (
            Fraction(start) * Fraction(base) if start is not None and base else Fraction(0)
        )
        self._container, self._stream = container, stream

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._frames = None


class AudioMixer:
    """The sound of a timeline, any range of samples at a time (a context manager).

    Sources are opened on first use and shared per media file: a clip and the
    one after it on the same media read on from one decoder. Not thread-safe.
    """

    def __init__(self, timeline: Timeline) -> None:
        self.timeline, self.output = timeline, timeline.output
        self._voices = [Voice(timeline, c) for c in timeline.clips if timeline.sounds(c)]
        self._sources: list[AudioSource] = []  # least recently used first

    def mix(self, first_sample: int, count: int) -> Samples:
        """Samples ``[first_sample, first_sample+count)``: (channels, count) float32 in [-1, 1]."""
        total = np.zeros((self.output.channels, max(count, 0)), np.float32)
        end = first_sample + count
        for voice in self._voices:
            lo, hi = max(first_sample, voice.first), min(end, voice.end)
            if lo >= hi or voice.gain == 0.0:
                continue
            sound = self._source(voice.media, voice.offset + lo - voice.first)
            data = sound.read(voice.offset + lo - voice.first, hi - lo)
            weights = voice.weights(lo, hi)
            gain = voice.gain if weights is None else (voice.gain * weights).astype(np.float32)
            total[:, lo - first_sample : hi - first_sample] += data * gain
        np.clip(total, -1.0, 1.0, out=total)
        return total

    def frame(self, index: int) -> Samples:
        """The samples of output frame ``index``."""
        return self.mix(*samples_of_range(self.output, index, 1))

    def _source(self, media: Media, start: int) -> AudioSource:
        """A source of ``media``'s file that reads from ``start``, one that goes on if any."""
        same = [s for s in self._sources if s.path == media.path]
        chosen = next((s for s in same if s.reaches(start)), None)
        if chosen is None and len(same) >= PER_MEDIA:
            chosen = same[0]  # the least recently used of this file: it seeks
        if chosen is None:
            while len(self._sources) >= MAX_OPEN:
                self._sources.pop(0).close()
            chosen = AudioSource(media, self.output.audio_rate, self.output.audio_layout)
        else:
            self._sources.remove(chosen)
        self._sources.append(chosen)
        return chosen

    def close(self) -> None:
        for source in self._sources:
            source.close()
        self._sources.clear()

    def __enter__(self) -> AudioMixer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["AudioMixer", "AudioSource", "samples_of_range"]
