"""Shared-memory segment names, and the sweep that finds one instance's segments only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lumiera import shm


@pytest.fixture
def shm_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for /dev/shm, so no real segment is touched."""
    monkeypatch.setattr(shm, "SHM_DIR", tmp_path)
    return tmp_path


def test_a_segment_name_is_the_user_the_instance_a_colon_and_the_name():
    assert shm.segment_prefix("film", uid=1000) == "lumiera-1000-film:"
    assert shm.segment_name("film", "ring0") == f"lumiera-{os.getuid()}-film:ring0"


def test_the_prefix_of_one_instance_is_not_a_prefix_of_another_ones_segments():
    assert not shm.segment_name("a-b", "ring0").startswith(shm.segment_prefix("a"))
    assert not shm.segment_name("a.b", "ring0").startswith(shm.segment_prefix("a"))


def test_listing_finds_only_the_segments_of_the_instance_and_user(shm_dir: Path):
    mine = shm.segment_name("a", "ring0")
    for name in (mine, shm.segment_name("a-b", "ring0"), "lumiera-99999-a:ring0", "other"):
        (shm_dir / name).touch()
    assert shm.list_segments("a") == [mine]


def test_the_sweep_removes_the_instances_segments_and_leaves_the_others(shm_dir: Path):
    mine = [shm.segment_name("a", n) for n in ("ring0", "ring1")]
    theirs = shm.segment_name("a-b", "ring0")
    for name in [*mine, theirs]:
        (shm_dir / name).touch()

    assert sorted(shm.sweep("a")) == mine
    assert sorted(p.name for p in shm_dir.iterdir()) == [theirs]
    assert shm.sweep("a") == []


def test_listing_without_a_shm_directory_finds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(shm, "SHM_DIR", tmp_path / "missing")
    assert shm.list_segments("a") == []
    assert shm.sweep("a") == []
