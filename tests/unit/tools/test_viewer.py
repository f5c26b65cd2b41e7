"""tools/viewer.py writes PNG files that a decoder reads back exactly."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pytest

TOOLS = Path(__file__).resolve().parents[3] / "tools"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"tools_{name}", TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("shape", [(24, 32, 3), (17, 9, 3), (24, 32)])
def test_a_png_of_rgb_or_gray_pixels_decodes_to_the_same_pixels(tmp_path, shape):
    viewer = load("viewer")
    pixels = np.random.default_rng(7).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "f.png"
    path.write_bytes(viewer.png_bytes(pixels))
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        back = frame.to_ndarray(format="rgb24" if len(shape) == 3 else "gray")
    assert back.shape == pixels.shape
    assert (back == pixels).all()


def test_a_yuv420p_frame_becomes_the_rgb_that_ffmpeg_makes_of_it():
    viewer = load("viewer")
    rng = np.random.default_rng(3)
    h, w = 24, 32
    y = rng.integers(16, 236, (h, w), dtype=np.uint8)
    u = rng.integers(16, 241, (h // 2, w // 2), dtype=np.uint8)
    v = rng.integers(16, 241, (h // 2, w // 2), dtype=np.uint8)
    frame = av.VideoFrame(w, h, "yuv420p")
    for plane, data in zip(frame.planes, (y, u, v), strict=True):
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        rows[: data.shape[0], : data.shape[1]] = data
    # chroma upsampled by repetition on both sides, so the two agree pixel by pixel
    expected = frame.reformat(format="rgb24", interpolation="POINT").to_ndarray()
    ours = viewer.rgb_of((y, u, v))
    assert ours.shape == (h, w, 3)
    assert np.abs(ours.astype(int) - expected.astype(int)).max() <= 3
