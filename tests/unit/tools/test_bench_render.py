"""tools/bench_render.py: its command line and its report, without rendering anything."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.tools.test_harness import load_harness

TOOLS = Path(__file__).resolve().parents[3] / "tools"
TOOL = TOOLS / "bench_render.py"
# the figures: lumiera render (the whole command) against the ffmpeg command line
COMMAND_KEYS = {
    "render_cli_fps",
    "ffmpeg_fps",
    "render_cpu_s",
    "ffmpeg_cpu_s",
    "render_peak_mib",
    "ffmpeg_peak_mib",
    "render_largest_mib",
    "ffmpeg_largest_mib",
}
MIB = 1 << 20


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, imported as ``python tools/bench_render.py`` would."""
    load_harness()
    monkeypatch.syspath_prepend(str(TOOLS))
    return importlib.import_module("bench_render")


def test_the_render_benchmark_says_what_it_measures():
    done = subprocess.run(
        [sys.executable, str(TOOL), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout


def test_the_processes_of_lumiera_render_are_named_by_their_part(bench):
    py = sys.executable
    assert bench.process_name([py, "-m", "lumiera", "render", "/tmp/s", "-o", "x"]) == "cli"
    assert bench.process_name([py, "-m", "lumiera", "up", "/tmp/s", "--headless"]) == "supervisor"
    assert bench.process_name([py, "-m", "lumiera.actors", "engine", "/tmp/rd", "i"]) == "engine"
    assert bench.process_name(["/usr/bin/ffmpeg", "-i", "a.mp4"]) == "ffmpeg"


def command(bench: ModuleType, seconds: float, cpu_s: float, peak_mib: int, *names: str):
    h = load_harness()
    procs = {
        name: h.Proc(
            k + 1, name, cpu_s / len(names), peak_mib * MIB, peak_mib * MIB, peak_mib * MIB
        )
        for k, name in enumerate(names)
    }
    done = h.Done(["x"], 0, "", "", seconds)
    m = h.Measured(
        done, cpu_s * 0.9, cpu_s * 0.1, peak_mib * MIB, 2 * peak_mib * MIB, 50, 0.1, procs
    )
    return bench.CommandRun(250, m, 0.05, inside_s=seconds - 1.0)


def result(bench: ModuleType, *, ffmpeg: bool):
    pipeline = bench.PipelineRun(
        250, 4.0, {"engine": 2.5, "player": 3.4, "supervisor": 0.1}, {"engine": 1000, "player": 10},
        0.1, {"seconds": 3.9, "frames": 250}, {"frames": 250}, 250, "d",
    )  # fmt: skip
    sound = bench.PipelineRun(
        250, 4.2, {"engine": 2.6, "player": 3.9, "supervisor": 0.1}, {"engine": 1000, "player": 10},
        0.0, {"frames": 250}, {"frames": 250}, 250, "e", [0.06, 0.06],
    )  # fmt: skip
    stages = {"decode": 0.1, "composite": 1.0, "encode": 2.0}
    single = bench.SingleRun(250, 3.4, 5.1, 12_000, 0.0, stages, 250, "d")
    res = bench.RenderResult([pipeline], [single], [sound])
    res.cli = [command(bench, 6.25, 9.6, 650, "player", "engine", "cli", "supervisor")]
    if ffmpeg:
        res.ffmpeg = [command(bench, 5.0, 8.0, 180, "ffmpeg")]
    return res


def playback(bench: ModuleType):
    received = [(k, 2.0) for k in range(250)]
    return bench.PlaybackResult(
        250,
        received,
        {"dropped": 0},
        0,
        0.0,
        Fraction(25),
        {"engine": 6.0, "player": 0.1},
        0.0,
        10.0,
    )


def report(bench: ModuleType, tmp_path: Path, res, ffmpeg: str | None) -> int:
    h = load_harness()
    ctx = h.BenchContext(tmp_path, {})
    media = h.Media(tmp_path / "a.mp4", 250, 5_000_000, 1.0, 25)
    code = bench.report(ctx, media, media, res, playback(bench), ffmpeg=ffmpeg)
    return int(code)


def test_the_json_line_has_lumiera_render_against_ffmpeg(bench, tmp_path, capsys):
    code = report(bench, tmp_path, result(bench, ffmpeg=True), "/usr/bin/ffmpeg")
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    figures = json.loads(out[-1])
    assert COMMAND_KEYS | {"pipeline_fps", "single_process_fps"} <= set(figures)
    assert figures["render_cli_fps"] == 40.0 and figures["ffmpeg_fps"] == 50.0
    assert figures["render_cpu_s"] == 9.6 and figures["ffmpeg_cpu_s"] == 8.0
    assert figures["render_peak_mib"] == 650 and figures["ffmpeg_peak_mib"] == 180
    assert figures["render_largest_mib"] == 650
    ratio = next(line for line in out if line.startswith("  lumiera render / ffmpeg"))
    assert "0.80" in ratio and "MISS" in ratio
    peak = next(line for line in out if line.startswith("  peak memory, lumiera render"))
    assert "MISS" in peak and "PSS" in peak and "VmHWM" in peak
    cpu = next(line for line in out if line.startswith("  CPU, lumiera render"))
    assert "system 0.96" in cpu and "engine" in cpu and "supervisor" in cpu  # per process
    assert any("-pix_fmt yuv420p" in line for line in out[:-1])


def test_without_ffmpeg_the_report_says_so_plainly_and_its_figures_are_null(
    bench, tmp_path, capsys
):
    code = report(bench, tmp_path, result(bench, ffmpeg=False), None)
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    figures = json.loads(out[-1])
    assert set(figures) >= COMMAND_KEYS
    assert figures["ffmpeg_fps"] is None and figures["ffmpeg_cpu_s"] is None
    assert figures["ffmpeg_peak_mib"] is None and figures["render_cli_fps"] == 40.0
    assert sum(bench.ABSENT_FFMPEG in line for line in out[:-1]) >= 1
    assert not any(line.startswith("  lumiera render / ffmpeg") for line in out)
