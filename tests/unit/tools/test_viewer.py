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
