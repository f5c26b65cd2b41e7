"""Fixtures of the ring tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.shm.ringkit import RingKit, ring_kit


@pytest.fixture
def kit() -> Iterator[RingKit]:
    """Rings of a fresh instance; whatever the test opened on them is closed after it."""
    with ring_kit() as k:
        yield k
