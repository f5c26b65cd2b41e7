"""tools/bench_frames.py: quick measures what the full run does, less of it; the per-call test."""

from __future__ import annotations

import dataclasses
import importlib
import os
from types import ModuleType

import pytest

from lumiera import shm, testing
from lumiera.shm.layout import PixelFormat
from tests.unit.tools.test_harness import TOOLS, load_harness


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, imported as ``python tools/bench_frames.py`` would."""
    load_harness()
    monkeypatch.syspath_prepend(str(TOOLS))
    return importlib.import_module("bench_frames")


def test_quick_differs_from_the_full_run_only_in_how_much_it_measures(bench):
    quick, full = bench.Plan.of(True), bench.Plan.of(False)
    differ = {
        f.name
        for f in dataclasses.fields(bench.Plan)
        if getattr(quick, f.name) != getattr(full, f.name)
    }
    assert differ == {"rounds", "seconds", "wake_s", "calls"}
    assert quick.warm_s == full.warm_s == bench.WARM_S
    assert quick.rounds <= full.rounds and quick.seconds <= full.seconds
    assert quick.calls < full.calls
    assert bench.Plan.of(True, rounds=2, seconds=3.0).rounds == 2


def test_ring_figures_are_paired_with_the_memcpy_of_their_round_and_contended_ones_left_out(
    bench,
):
    r = bench.Results()
    rgb = PixelFormat.RGB24
    busy = bench.CONTENDED_CORES
    for mem, ring, others in ((1000.0, 600.0, 0.0), (500.0, 400.0, 0.1), (2000.0, 1000.0, 0.0)):
        r.add(rgb, "memcpy", {"fps": mem, "others_cores": 0.0})
        r.add(rgb, "ring_inplace", {"fps": ring, "others_cores": others})
    # per round 0.6, 0.8, 0.5: the median of those, not 600 / 1000 of the medians
    assert r.of_memcpy(rgb, "ring_inplace") == pytest.approx(0.6)
    assert r.clean_rounds(rgb, "ring_inplace") == [0, 1, 2]
    # a round where another process took a core (the ring halves, memcpy does not)
    r.add(rgb, "memcpy", {"fps": 1000.0, "others_cores": 0.0})
    r.add(rgb, "ring_inplace", {"fps": 100.0, "others_cores": busy})
    r.add(rgb, "memcpy", {"fps": 1000.0, "others_cores": busy + 0.5})
    r.add(rgb, "ring_inplace", {"fps": 200.0, "others_cores": 0.0})
    assert r.clean_rounds(rgb, "ring_inplace") == [0, 1, 2]
    assert r.of_memcpy(rgb, "ring_inplace") == pytest.approx(0.6)
    only_busy = bench.Results()
    only_busy.add(rgb, "memcpy", {"fps": 1000.0, "others_cores": 1.0})
    only_busy.add(rgb, "ring_inplace", {"fps": 400.0, "others_cores": 1.0})
    assert only_busy.clean_rounds(rgb, "ring_inplace") == []
    assert only_busy.of_memcpy(rgb, "ring_inplace") == pytest.approx(0.4)  # said as contended


@pytest.mark.parametrize("fmt", [PixelFormat.GRAY, PixelFormat.YUV420P])
def test_the_per_call_test_times_each_ring_call_and_leaves_nothing_behind(bench, fmt):
    rd = testing.unique_runtime_dir()
    try:
        got = bench.ring_overhead(rd, fmt, 50)
        assert set(got) == set(bench.CALLS)
        assert all(0 < us < 10_000 for us in got.values())
        assert shm.list_segments(rd.instance) == []
    finally:
        shm.sweep(rd.instance)
        for p in rd.path.iterdir():
            p.unlink()
        os.rmdir(rd.path)
