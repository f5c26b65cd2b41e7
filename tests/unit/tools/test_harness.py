"""tools/harness, the benchmarks' shared scaffolding: statistics, alternation, report, /proc."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

TOOLS = Path(__file__).resolve().parents[3] / "tools"
MB = 1 << 20


def load_harness() -> ModuleType:
    """The package as ``python tools/bench_x.py`` imports it, without touching sys.path."""
    if "harness" in sys.modules:
        return sys.modules["harness"]
    spec = importlib.util.spec_from_file_location(
        "harness", TOOLS / "harness" / "__init__.py", submodule_search_locations=[]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["harness"] = module
    spec.loader.exec_module(module)
    return module


h = load_harness()


def test_median_and_percentiles_stay_within_the_data_and_are_nan_for_none():
    assert h.median([3.0, 1.0, 2.0]) == 2.0
    assert h.median([1.0, 2.0, 3.0, 10.0]) == 2.5
    assert math.isnan(h.median([])) and math.isnan(h.pct([], 99))
    assert h.pct([7.0], 99) == 7.0
    data = [float(x) for x in range(1, 101)]
    assert h.pct(data, 50) == h.median(data)
    assert 99.0 <= h.pct(data, 99) <= 100.0


def test_paired_is_the_median_of_the_ratios_of_each_round():
    assert h.paired([10.0, 30.0, 20.0], [10.0, 10.0, 10.0]) == 2.0
    with pytest.raises(ValueError):
        h.paired([1.0], [1.0, 2.0])


def test_verdict_is_pass_at_or_above_the_aim_or_below_it_when_asked():
    assert h.verdict(0.9, 0.9) == "pass"
    assert h.verdict(0.89, 0.9) == "MISS"
    assert h.verdict(0.4, 0.5, below=True) == "pass"
    assert h.verdict(0.5, 0.5, below=True) == "MISS"
    assert h.verdict(float("nan"), 1.0) == "n/a"


def test_variants_alternate_a_b_then_b_a_when_mirrored_and_a_b_a_b_otherwise():
    mirrored = list(h.turns(["A", "B"], 3))
    assert mirrored == [(0, "A"), (0, "B"), (1, "B"), (1, "A"), (2, "A"), (2, "B")]
    plain = [name for _, name in h.turns(["A", "B", "C"], 2, mirror=False)]
    assert plain == ["A", "B", "C", "A", "B", "C"]


def test_alternate_runs_each_variant_per_round_and_keeps_its_results_in_round_order():
    calls: list[str] = []

    def variant(name: str):
        def run(r: int) -> str:
            calls.append(name)
            return f"{name}{r}"

        return run

    got = h.alternate({"a": variant("a"), "b": variant("b")}, 4)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert got == {"a": ["a0", "a1", "a2", "a3"], "b": ["b0", "b1", "b2", "b3"]}


def test_the_table_aligns_its_columns_and_fills_cells_left_out():
    t = h.Table("figure", "value", "aim", "how")
    t.add("startup", "0.31 s", "< 0.5 s", how="20 runs")
    t.add("  p90", "12.35 s")
    assert t.lines() == [
        "figure     value      aim  how",
        "-------  -------  -------  -------",
        "startup   0.31 s  < 0.5 s  20 runs",
        "  p90    12.35 s",
    ]
    with pytest.raises(ValueError):
        t.add("a", "b", "c", "d")


def test_the_json_line_rounds_floats_keeps_ints_and_writes_nan_as_null():
    line = h.json_line({"fps": 59.4321, "frames": 750, "lost": float("nan")}, 2)
    assert json.loads(line) == {"fps": 59.43, "frames": 750, "lost": None}


def test_the_report_ends_with_the_json_line_and_fails_with_problems(capsys):
    t = h.Table("figure", "value", "how")
    t.add("x", "1")
    assert h.finish(["title"], t, [], {"x": 1.0}, 1) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "title" and json.loads(out[-1]) == {"x": 1.0}
    assert h.finish(["title"], t, ["it broke"], {"x": 1.0}, 1) == 1
    out = capsys.readouterr().out.splitlines()
    assert "  - it broke" in out and json.loads(out[-1]) == {"x": 1.0}


# A child that holds 16 MB and starts a grandchild holding 48 MB; both end at EOF on stdin.
TREE_SRC = r"""
import subprocess, sys
held = b"c" * (16 << 20)
grandchild = subprocess.Popen(
    [sys.executable, "-c",
     "import sys; held = b'g' * (48 << 20); print('ready', flush=True); sys.stdin.read()"],
    stdout=subprocess.PIPE, text=True,
)
assert grandchild.stdout.readline().strip() == "ready"
print(f"ready {grandchild.pid}", flush=True)
sys.stdin.read()
grandchild.wait(timeout=10)
"""


def test_the_resident_memory_of_a_process_tree_counts_its_descendants():
    child = h.Child("tree", [sys.executable, "-c", TREE_SRC])
    try:
        ready, grandchild = child.line(30).split()
        assert ready == "ready"
        pid = child.proc.pid
        assert h.tree(pid) == [pid, int(grandchild)]
        with h.PeakRss(pid, every=0.01) as peak:
            deadline = time.monotonic() + 10  # a busy machine may delay the sampler
            while peak.samples < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert peak.samples >= 2
        own = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        assert h.tree_rss(pid) >= 64 * MB > own
        assert peak.bytes >= 64 * MB
        assert child.proc.stdin is not None
        child.proc.stdin.close()
        assert child.proc.wait(timeout=20) == 0
        assert h.tree(pid) == [] and h.tree_rss(pid) == 0
    finally:
        child.close()


def test_the_cpu_of_a_tree_and_of_others_is_counted_from_proc():
    spin = (
        "import sys, time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
        "print('result {}', flush=True)\nsys.stdin.read()\n"
    )
    child = h.Child("spin", [sys.executable, "-c", spin])
    try:
        assert child.result(30) == {}
        assert h.tree_cpu_s(child.proc.pid) >= 0.25
        before = h.Cpu.now([child.proc.pid])
        span = h.Cpu.now([child.proc.pid]).since(before)
        assert span.others >= 0.0 and span.wall > 0
        assert span.pids[child.proc.pid].cpu_s >= 0.0
        assert child.proc.stdin is not None
        child.proc.stdin.close()
        problems: list[str] = []
        child.finish(problems)
        assert problems == []
    finally:
        child.close()


def test_a_child_that_says_something_else_than_ready_is_an_error():
    child = h.Child("talker", [sys.executable, "-c", "print('hello', flush=True)"])
    try:
        with pytest.raises(RuntimeError, match="said 'hello' instead of ready"):
            child.expect("ready", 30)
        with pytest.raises(RuntimeError, match="exited with 0"):
            child.line(30)
    finally:
        child.close()
    silent = h.Child("silent", [sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(TimeoutError):
            silent.line(0.2)
    finally:
        silent.close()
    assert silent.proc.returncode is not None


def test_a_script_in_tools_imports_the_harness_from_its_own_directory():
    out = subprocess.run(
        [sys.executable, str(TOOLS / "bench_kernel.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "--quick" in out


def test_processes_are_named_from_their_command_lines():
    py = sys.executable
    assert (
        h.command_name([py, "-m", "lumiera.actors", "engine", "/tmp/rd"]) == "lumiera.actors engine"
    )
    assert h.command_name([py, "-m", "lumiera", "render", "/tmp/s.lumiera"]) == "lumiera render"
    assert h.command_name([py, "-m", "pytest", "-q"]) == "pytest"
    assert h.command_name([py, "tools/bench_render.py", "--quick"]) == "bench_render.py"
    assert h.command_name(["/usr/bin/ffmpeg", "-i", "a.mp4"]) == "ffmpeg"
    assert h.command_name([]) == "?"


# A child that spins 0.3 s of CPU in a grandchild holding 48 MB, waits for it, says so.
SPIN_TREE_SRC = r"""
import subprocess, sys
grandchild = (
    "import time; held = b'g' * (48 << 20); t = time.process_time()\n"
    "while time.process_time() - t < 0.3: pass\n"
)
subprocess.run([sys.executable, "-c", grandchild], check=True)
print("spun", flush=True)
print("and said so", file=sys.stderr, flush=True)
"""


def test_a_measured_command_counts_the_cpu_and_memory_of_its_whole_tree():
    m = h.measure_command([sys.executable, "-c", SPIN_TREE_SRC], {}, 60, every=0.01)
    assert m.done.code == 0 and m.done.stdout == "spun\n" and "said so" in m.done.stderr
    assert m.cpu_s == m.user_s + m.system_s >= 0.3  # the grandchild's, reaped by the child
    assert m.samples >= 1 and m.sampler_cpu_s >= 0.0
    largest = m.largest
    assert largest is not None and largest.hwm >= 48 * MB and m.largest_mib >= 48
    assert m.peak_pss >= 48 * MB and m.peak_rss >= m.peak_pss * 0.9
    assert m.peak_mib == m.peak_pss / MB
    assert "spin" not in m.procs  # named from the command line: python -c ...
    assert any(p.cpu_s > 0 for p in m.procs.values())
    assert "MiB" in m.breakdown()


def test_a_measured_command_past_its_timeout_is_stopped():
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="not done within"):
        h.measure_command(argv, {}, 0.3)
    assert time.monotonic() - t0 < 30


def test_the_ffmpeg_command_line_is_the_issues_blend():
    argv = h.ffmpeg_blend(
        "ffmpeg", Path("A.mp4"), Path("B.mp4"), Path("out.mp4"), opacity=0.5, preset="ultrafast"
    )
    quiet = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    assert argv == [
        "ffmpeg", *quiet, "-i", "A.mp4", "-i", "B.mp4",
        "-filter_complex", "[0:v][1:v]blend=all_opacity=0.5",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "out.mp4",
    ]  # fmt: skip
    assert h.which_ffmpeg("surely-no-such-ffmpeg-here") is None
