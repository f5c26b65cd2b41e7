"""A render job's frame: the visible clips of a timeline, composited exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from lumiera.errors import MediaError
from lumiera.vault.cache import FrameCache
from lumiera.vault.media import MediaPool
from lumiera.vault.render import render_frame
from tests.support import timeline_of

W, H = 32, 24


def write_ffv1(path: Path, frames: int, base: int) -> None:
    """Lossless media whose frame k is a uniform gray of ``base + 4 * k``."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for k in range(frames):
            gray = np.full((H, W), base + 4 * k, np.uint8)
            frame = av.VideoFrame.from_ndarray(gray, format="gray").reformat(format="yuv420p")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture
def timeline(tmp_path):
    a, b = tmp_path / "a.mkv", tmp_path / "b.mkv"
    write_ffv1(a, 20, 10)
    write_ffv1(b, 20, 100)
    media = [
        {"id": "ma", "path": str(a), "frames": 20},
        {"id": "mb", "path": str(b), "frames": 20},
    ]
    clips = [  # V1: a cut at 10 from a to b; V2: b over everything from 5 to 15 at 40 %
        {
            "id": "c1",
            "media": "ma",
            "track": "v1",
            "position": 0,
            "source_in": 0,
            "source_out": 10,
            "opacity": 1.0,
        },
        {
            "id": "c2",
            "media": "mb",
            "track": "v1",
            "position": 10,
            "source_in": 2,
            "source_out": 12,
            "opacity": 1.0,
        },
        {
            "id": "c3",
            "media": "mb",
            "track": "v2",
            "position": 5,
            "source_in": 0,
            "source_out": 10,
            "opacity": 0.4,
        },
    ]
    return {
        "output": {"width": W, "height": H, "rate": "25"},
        "media": media,
        "tracks": [{"id": "v1", "name": "V1"}, {"id": "v2", "name": "V2"}],
        "clips": clips,
    }


def test_visible_clips_come_bottom_track_first_with_their_source_frame(timeline):
    contract = timeline_of(timeline)
    assert contract.visible(3) == [(contract.clips[0], 3)]
    assert [(c.id, s) for c, s in contract.visible(7)] == [("c1", 7), ("c3", 2)]
    assert [(c.id, s) for c, s in contract.visible(12)] == [("c2", 4), ("c3", 7)]
    assert contract.visible(25) == []


@pytest.mark.parametrize("fmt", ["rgb24", "yuv420p", "gray"])
# opaque (1.0, and 0.999: weight 256 too): no black under it; else (0.997: 255) black shows
@pytest.mark.parametrize("bottom", [1.0, 0.999, 0.997, 0.6])
def test_every_output_frame_is_the_exact_composite_of_its_sources(timeline, fmt, bottom):
    timeline["clips"][0]["opacity"] = bottom
    contract = timeline_of(timeline)
    pool, check = MediaPool(max_open=1), MediaPool()
    cache = FrameCache(64 << 20)
    try:
        for index in range(22):
            out: tuple[np.ndarray[Any, np.dtype[np.uint8]], ...]
            if fmt == "yuv420p":
                out = (
                    np.empty((H, W), np.uint8),
                    np.empty((H // 2, W // 2), np.uint8),
                    np.empty((H // 2, W // 2), np.uint8),
                )
            elif fmt == "rgb24":
                out = (np.empty((H, W, 3), np.uint8),)
            else:
                out = (np.empty((H, W), np.uint8),)
            render_frame(contract, index, pool, out, fmt=fmt, cache=cache)
            expected = [
                np.full(p.shape, lvl, np.int64)
                for p, lvl in zip(
                    out, {"rgb24": (0,), "gray": (16,), "yuv420p": (16, 128, 128)}[fmt], strict=True
                )
            ]
            for clip, source in contract.visible(index):
                got = check.frame(contract.media_of(clip).path, source, fmt, (W, H))
                layers = got if isinstance(got, tuple) else (got,)
                w = round(clip.opacity * 256)
                expected = [
                    (lay.astype(np.int64) * w + e * (256 - w) + 128) // 256
                    for lay, e in zip(layers, expected, strict=True)
                ]
            for plane, exp in zip(out, expected, strict=True):
                assert (plane == exp).all(), (fmt, index)
        # mb's frames 2..9 are shown by c3 and, later, by c2: the second time from the cache
        assert cache.stats()["hits"] >= 8
    finally:
        pool.close()
        check.close()


def test_a_missing_source_is_a_media_error(timeline, tmp_path):
    timeline["media"][0]["path"] = str(tmp_path / "gone.mkv")
    contract = timeline_of(timeline)
    pool = MediaPool()
    try:
        with pytest.raises(MediaError, match=r"gone\.mkv"):
            render_frame(contract, 0, pool, (np.empty((H, W, 3), np.uint8),))
        out = (np.empty((H, W, 3), np.uint8),)
        render_frame(contract, 12, pool, out)  # other sources still work
    finally:
        pool.close()
