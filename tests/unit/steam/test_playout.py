"""The viewer's preview: the output scaled down to fit the GUI's box, never up."""

from __future__ import annotations

from fractions import Fraction

import pytest

from lumiera.bus.timeline import Output, Timeline
from lumiera.steam.playout import preview


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((1920, 1080), (960, 540), (960, 540)),
        ((3840, 2160), (960, 540), (960, 540)),
        ((1920, 1080), (1280, 1280), (1280, 720)),
        ((1080, 1920), (960, 540), (304, 540)),  # portrait: the height limits, sides even
        ((1440, 1080), (960, 540), (720, 540)),
        ((641, 481), (320, 320), (320, 240)),
        ((5000, 3), (100, 100), (100, 2)),  # never below 2 pixels
    ],
)
def test_a_larger_output_is_scaled_down_to_fit_the_box_with_even_sides(size, box, expected):
    timeline = Timeline(output=Output(width=size[0], height=size[1], rate=Fraction(30000, 1001)))
    shown = preview(timeline, box)
    assert (shown.output.width, shown.output.height) == expected
    assert shown.output.rate == Fraction(30000, 1001)
    assert shown.clips == timeline.clips and shown.media == timeline.media


@pytest.mark.parametrize("size", [(64, 48), (960, 540), (33, 17)])
def test_an_output_that_fits_is_played_at_its_own_size(size):
    timeline = Timeline(output=Output(width=size[0], height=size[1]))
    assert preview(timeline, (960, 540)) is timeline
