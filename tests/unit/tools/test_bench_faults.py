"""tools/bench_faults.py: its command line, its audit and its report, without crashing anything."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.tools.test_harness import load_harness

TOOLS = Path(__file__).resolve().parents[3] / "tools"
TOOL = TOOLS / "bench_faults.py"
KEYS = {"rounds", "lost_acked", "leftovers", "gone_ms_p99", "status_ms_p99_under_load"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(TOOL), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, imported as ``python tools/bench_faults.py`` would."""
    load_harness()
    monkeypatch.syspath_prepend(str(TOOLS))
    return importlib.import_module("bench_faults")


def test_the_fault_benchmark_says_what_it_measures_and_refuses_nonsense():
    done = run("--help")
    assert done.returncode == 0, done.stderr
    for option in ("--quick", "--rounds", "--seconds", "--rate", "--seed"):
        assert option in done.stdout
    for bad in (["--rounds", "0"], ["--seconds", "0"], ["--rate", "-1"]):
        refused = run(*bad)
        assert refused.returncode == 2 and "must be positive" in refused.stderr, bad


def test_the_audit_finds_acknowledged_commands_missing_and_commands_applied_twice(bench):
    seen = Counter({"a": 1, "b": 2, "x": 1})  # x: applied, its answer lost (unknown)
    assert bench.audit(["a", "b"], seen) == (set(), {"b"})
    assert bench.audit(["a", "c"], seen) == ({"c"}, {"b"})
    assert bench.audit([], Counter()) == (set(), set())


def test_the_report_ends_in_the_json_line_with_the_issues_keys_and_names_a_loss(
    bench, tmp_path, capsys
):
    h = load_harness()
    ctx = h.BenchContext(tmp_path, {})
    cr = bench.CrashResult(gone_ms=[40.0, 50.0, 60.0], leftovers=0)
    cr.victims.update(["engine", "session", "session"])
    cr.exit_codes[2] += 3
    cr.ledger.acked.update({"r0c0-0": 1, "r0c0-1": 2})
    ld = bench.LoadResult(
        status_ms=[1.0] * 99 + [30.0], acked=500, seconds=2.0, lost=set(), taps_min_seen=500
    )
    assert bench.report(cr, ld, ctx, 1000.0) == 0
    out = capsys.readouterr().out.splitlines()
    figures = json.loads(out[-1])
    assert set(figures) >= KEYS
    assert figures["rounds"] == 3 and figures["lost_acked"] == 0 and figures["leftovers"] == 0
    assert figures["gone_ms_p50"] == 50.0 and figures["commands_per_s_under_load"] == 250.0
    assert 1.0 < figures["status_ms_p99_under_load"] <= 30.0
    assert figures["events_lost_under_load"] == 0
    assert any(line.startswith("acknowledged commands lost") and "pass" in line for line in out)

    cr.ledger.lost.add("r0c0-1")
    ld.taps_min_seen = 498
    assert bench.report(cr, ld, h.BenchContext(tmp_path, {}), 1000.0) == 1
    out = capsys.readouterr().out.splitlines()
    figures = json.loads(out[-1])
    assert figures["lost_acked"] == 1 and figures["events_lost_under_load"] == 2
    assert any("acknowledged commands lost: ['r0c0-1']" in line for line in out)
    assert any("2 session.changed missed" in line for line in out)

    cr.ledger.lost.clear()
    ld.lost.add("load-7")  # lost under the load alone: named too
    assert bench.report(cr, ld, h.BenchContext(tmp_path, {}), 1000.0) == 1
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[-1])["lost_acked"] == 1
    assert any("acknowledged commands lost: ['load-7']" in line for line in out)
