"""The mix's arithmetic: where a clip's sound is on the timeline and in its media, its fades.

Kept apart from the decoding (:mod:`lumiera.vault.audio`, whose
:class:`~lumiera.vault.audio.AudioMixer` uses it). A clip's sound spans output
samples ``[sample_of(position), sample_of(end))`` and starts at media time
``source_in / media.rate``; over a transition's overlap ``[first, end)`` of S
samples, sample s has ``u = (s - first) / S`` and gains ``1 - u`` and ``u``
(linear) or ``cos(u pi/2)`` and ``sin(u pi/2)`` (equal power), fading out and in.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from lumiera.bus.timeline import Clip, Output, Timeline


def half_up(x: Fraction) -> int:
    """``x`` rounded to an integer, halves up (as :meth:`Output.sample_of`)."""
    return math.floor(x + Fraction(1, 2))


def samples_of_range(output: Output, first: int, count: int) -> tuple[int, int]:
    """(first sample, sample count) of output frames ``first .. first+count-1``."""
    start = output.sample_of(first)
    return start, output.sample_of(first + count) - start


class Voice:
    """One sounding clip: its samples on the timeline, where they are in its media, its fades."""

    def __init__(self, timeline: Timeline, clip: Clip) -> None:
        output, media = timeline.output, timeline.media_of(clip)
        self.clip, self.media = clip, media
        self.first, self.end = output.sample_of(clip.position), output.sample_of(clip.end)
        # its sound starts at media time source_in / media.rate, at the output's rate
        self.offset = half_up(clip.source_in / media.rate * output.audio_rate)
        self.gain = clip.gain
        self.fades: list[tuple[int, int, bool, str]] = []  # (first, end, fading_in, curve)
        for t in timeline.transitions:
            if clip.id in (t.a, t.b):
                first, end = timeline.overlap_of(t)
                span = (output.sample_of(first), output.sample_of(end))
                self.fades.append((*span, clip.id == t.b, t.curve))

    def weights(self, lo: int, hi: int) -> np.ndarray[Any, np.dtype[np.float64]] | None:
        """The fade gains of samples ``[lo, hi)``, None where no fade touches them."""
        weights = None
        for first, end, fading_in, curve in self.fades:
            if first >= hi or end <= lo:
                continue
            if weights is None:
                weights = np.ones(hi - lo)
            s = np.arange(max(lo, first), min(hi, end))
            u = (s - first) / (end - first)
            if curve == "equal_power":
                g = np.sin(u * np.pi / 2) if fading_in else np.cos(u * np.pi / 2)
            else:
                g = u if fading_in else 1.0 - u
            weights[s - lo] = g
        return weights
