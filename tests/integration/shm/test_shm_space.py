"""Too little shared memory fails clearly when a ring is created, never later with SIGBUS.

A tiny /dev/shm is a 2 MiB tmpfs mounted for the test (skipped where mounting
is not permitted); :data:`lumiera.shm.SHM_DIR` and its copy in
:mod:`lumiera.shm.segment` point at it while the test runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lumiera import shm
from lumiera.shm import segment
from lumiera.shm.layout import PixelFormat, Policy
from lumiera.shm.segment import SegmentError
from tests.support import tmpfs
from tests.unit.shm.ringkit import RingKit, ring_kit, take

pytestmark = pytest.mark.integration

MiB = 2**20


@pytest.fixture
def tiny_shm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 2 MiB tmpfs standing in for /dev/shm."""
    with tmpfs(tmp_path / "shm", "2M") as where:
        monkeypatch.setattr(shm, "SHM_DIR", where)
        monkeypatch.setattr(segment, "SHM_DIR", where)
        yield where


@pytest.fixture
def tiny_kit(tiny_shm: Path) -> Iterator[RingKit]:
    """Rings made in the tiny shm, all closed and unlinked before it is unmounted."""
    with ring_kit() as kit:
        yield kit


def no_space(name: str, where: Path) -> str:
    """The message for a ring ``name`` that did not fit in ``where``."""
    return (
        rf"cannot reserve \d+\.\d MiB for {re.escape(name)} in {re.escape(str(where))} "
        r"\(No space left on device; \d+\.\d MiB free\)"
    )


def test_a_ring_bigger_than_a_tiny_shm_fails_at_creation_with_segment_error(
    tiny_kit: RingKit, tiny_shm: Path
):
    name = shm.segment_name(tiny_kit.rd.instance, "big")
    with pytest.raises(SegmentError, match=no_space(name, tiny_shm)):
        tiny_kit.create("big", slots=4, payload_bytes=MiB)
    assert list(tiny_shm.iterdir()) == []  # nothing half made is left


def test_when_a_first_ring_fills_a_tiny_shm_a_second_is_refused_and_the_first_works(
    tiny_kit: RingKit, tiny_shm: Path
):
    side = 640  # 3 slots of 400 KiB frames: 1.2 MiB of the 2 MiB
    first = tiny_kit.create("first", slots=3, payload_bytes=side * side, policy=Policy.BLOCK)
    assert first.path.parent == tiny_shm
    name = shm.segment_name(tiny_kit.rd.instance, "second")
    with pytest.raises(SegmentError, match=no_space(name, tiny_shm)):
        tiny_kit.create("second", slots=3, payload_bytes=side * side)
    assert [p.name for p in tiny_shm.iterdir()] == [first.name]

    # Every page of the first ring was reserved: writing all of it cannot fault.
    c = tiny_kit.consumer("first")
    p = tiny_kit.producer("first")
    for k in range(1, 7):
        assert p.write(np.full((side, side), k, np.uint8), PixelFormat.GRAY, pts=k)
        assert take(c) == (k, k, True)


def test_a_ring_bigger_than_all_of_dev_shm_fails_at_creation_with_segment_error(kit: RingKit):
    st = os.statvfs(shm.SHM_DIR)
    total = st.f_blocks * st.f_frsize
    if total == 0:
        pytest.skip(f"{shm.SHM_DIR} has no size limit")
    gib = 2**30
    name = shm.segment_name(kit.rd.instance, "huge")
    with pytest.raises(SegmentError, match=no_space(name, shm.SHM_DIR)):
        kit.create("huge", slots=total // gib + 2, payload_bytes=gib - 64)
    assert shm.list_segments(kit.rd.instance) == []
