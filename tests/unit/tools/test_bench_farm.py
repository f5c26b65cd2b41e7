"""tools/bench_farm.py: its command line and its report, without rendering anything."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.tools.test_harness import load_harness

TOOLS = Path(__file__).resolve().parents[3] / "tools"
TOOL = TOOLS / "bench_farm.py"
KEYS = {"local_fps", "farm_fps_1", "farm_fps_2", "farm_fps_4", "ffmpeg_fps", "nodes_max"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(TOOL), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, imported as ``python tools/bench_farm.py`` would (its
    neighbours bench_render and harness from tools/)."""
    load_harness()
    monkeypatch.syspath_prepend(str(TOOLS))
    return importlib.import_module("bench_farm")


def test_the_farm_benchmark_says_what_it_measures_and_checks_its_node_list():
    done = run("--help")
    assert done.returncode == 0, done.stderr
    for option in ("--quick", "--nodes", "--segment-frames", "--frames", "--rounds", "--ffmpeg"):
        assert option in done.stdout
    for bad in ("0,2", "1,1", "1,x", ","):
        refused = run("--nodes", bad)
        assert refused.returncode == 2 and "--nodes" in refused.stderr, bad


def test_node_lists_and_the_default_segment_length(bench):
    assert bench.node_list("1,2,4") == [1, 2, 4]
    assert bench.node_list("16, 8,") == [16, 8]
    # about two segments per node of the largest farm, never none
    assert bench.default_segment_frames(250, 4) == 32  # 8 segments
    assert bench.default_segment_frames(250, 16) == 8  # 32 segments
    assert bench.default_segment_frames(3, 16) == 1


def test_the_report_ends_in_the_json_line_and_says_plainly_that_ffmpeg_is_absent(
    bench, tmp_path, capsys
):
    h = load_harness()
    ctx = h.BenchContext(tmp_path, {})
    media = h.Media(tmp_path / "a.mp4", 100, 1_000_000, 1.0, 25)
    b = bench.Bench(ctx, media, media, tmp_path / "s.lumiera", 100, 13, [0])

    def runs(name: str, *seconds: float) -> None:
        b.runs[name] = [bench.Run(name, 100, s, s, 0.0, inside_s=s - 0.25) for s in seconds]

    runs("local", 4.0, 5.0)
    runs("farm 1", 5.0)
    runs("farm 2", 4.0)
    runs("jobs 2", 10.0)
    code = bench.report(b, [1, 2], None)
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    figures = json.loads(out[-1])
    assert KEYS | {"jobs_fps_max", "segment_frames", "frames", "cores"} <= set(figures)
    assert figures["local_fps"] == 25.0 and figures["farm_fps_2"] == 25.0
    assert figures["farm_fps_1"] == 20.0 and figures["jobs_fps_max"] == 10.0
    assert figures["farm_fps_4"] is None and figures["ffmpeg_fps"] is None
    assert figures["nodes_max"] == 2 and figures["segment_frames"] == 13
    assert any(bench.ABSENT_FFMPEG in line for line in out[:-1])
    farm1 = next(line for line in out if line.startswith("farm 1 "))
    assert "0.80" in farm1  # its ratio to the local render
