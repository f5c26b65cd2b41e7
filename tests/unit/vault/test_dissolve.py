"""A transition's pictures: the exact dissolve of its two clips, frame by frame."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from lumiera.vault.composite import dissolve
from lumiera.vault.media import MediaPool
from lumiera.vault.render import frame_buffers, render_frame
from tests.support import timeline_of
from tests.unit.vault.test_render import H, W, write_ffv1


def test_the_dissolve_formula_is_exact_at_its_ends_and_midpoint():
    a = np.array([0, 10, 255, 7], np.uint8)
    b = np.array([255, 11, 0, 8], np.uint8)
    assert (dissolve(a, b, 0, 4) == a).all() and (dissolve(a, b, 4, 4) == b).all()
    assert dissolve(a, b, 2, 4).tolist() == [128, 11, 128, 8]  # (a + b + 1) // 2
    assert dissolve(a, b, 1, 3).tolist() == [85, 10, 170, 7]  # w = 85: (171a + 85b + 128) >> 8
    # the weight's halves go to even: 256 x 1/512 is 0.5 -> 0 (a), 256 x 3/512 is 1.5 -> 2
    assert (dissolve(a, b, 1, 512) == a).all()
    assert dissolve(a, b, 3, 512).tolist() == [2, 10, 253, 7]  # (254a + 2b + 128) >> 8
    with pytest.raises(ValueError, match="step 5 of 4"):
        dissolve(a, b, 5, 4)
    with pytest.raises(ValueError, match="shapes differ"):
        dissolve(a, b[:3], 1, 4)


def reference(a: Any, b: Any, k: int, length: int) -> Any:
    """The documented formula in 64-bit integers, the weight rounded as Python rounds."""
    w = round(Fraction(256 * k, length))
    return (a.astype(np.int64) * (256 - w) + b.astype(np.int64) * w + 128) // 256


@pytest.mark.parametrize("length", [1, 2, 3, 4, 7, 25, 100, 512, 1000])
def test_every_step_of_a_dissolve_is_the_formula_for_every_sample_pair(length):
    # all 65,536 (a, b) pairs, at every step up to length 100 (every 37th beyond), in
    # rows (the blocked path) and as a strided view (the other path)
    a = np.repeat(np.arange(256, dtype=np.uint8), 256).reshape(256, 256)
    b = a.T.copy()
    steps = range(length + 1) if length <= 100 else range(0, length + 1, 37)
    for k in [*steps, length]:
        want = reference(a, b, k, length)
        assert (dissolve(a, b, k, length) == want).all(), (k, length)
        assert (dissolve(a[:, ::-1], b[:, ::-1], k, length) == want[:, ::-1]).all(), (k, length)


def test_a_dissolve_leaves_its_layers_as_they_were_and_gives_a_new_array():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (64, 96), dtype=np.uint8)
    b = rng.integers(0, 256, (64, 96), dtype=np.uint8)
    a.flags.writeable = b.flags.writeable = False  # a write into either raises
    for k in (0, 3, 8):
        for x, y in ((a, b), (a[:, ::-1], b[:, ::-1])):  # rows, and a strided view
            out = dissolve(x, y, k, 8)
            assert out.dtype == np.uint8 and out.shape == x.shape and out.flags.c_contiguous
            assert not np.shares_memory(out, a) and not np.shares_memory(out, b)


@pytest.mark.parametrize("fmt", ["yuv420p", "gray", "rgb24"])
def test_frames_of_a_transition_are_the_dissolve_of_both_clips_then_over_the_track_below(
    tmp_path, fmt
):
    a, b = tmp_path / "a.mkv", tmp_path / "b.mkv"
    write_ffv1(a, 20, 10)
    write_ffv1(b, 20, 100)
    contract = timeline_of({
        "output": {"width": W, "height": H, "rate": "25"},
        "media": [{"id": "ma", "path": str(a), "frames": 20},
                  {"id": "mb", "path": str(b), "frames": 20}],
        "tracks": [{"id": "v1", "name": "V1"}],
        "clips": [
            {"id": "c1", "media": "ma", "track": "v1", "position": 0, "source_in": 0,
             "source_out": 10},
            {"id": "c2", "media": "mb", "track": "v1", "position": 6, "source_in": 2,
             "source_out": 14, "opacity": 0.5},
        ],
        "transitions": [{"id": "x1", "a": "c1", "b": "c2"}],
    })  # fmt: skip
    pool, check = MediaPool(), MediaPool()
    try:
        for index, step in [(5, None), (6, 0), (7, 1), (8, 2), (9, 3), (10, None)]:
            out = frame_buffers(fmt, (W, H))
            render_frame(contract, index, pool, out, fmt=fmt)
            if step is None:
                continue
            first = check.frame(str(a), index, fmt, (W, H))
            second = check.frame(str(b), 2 + index - 6, fmt, (W, H))
            firsts = first if isinstance(first, tuple) else (first,)
            seconds = second if isinstance(second, tuple) else (second,)
            opacity = (1.0 * (4 - step) + 0.5 * step) / 4  # c1 opaque, c2 at 0.5
            weight = round(opacity * 256)
            black = {"rgb24": (0,), "gray": (16,), "yuv420p": (16, 128, 128)}[fmt]
            for plane, x, y, lvl in zip(out, firsts, seconds, black, strict=True):
                mixed = reference(x, y, step, 4)
                expected: Any = (mixed * weight + lvl * (256 - weight) + 128) // 256
                assert (plane == expected).all(), (fmt, index)
    finally:
        pool.close()
        check.close()
