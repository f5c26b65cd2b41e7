"""tools/bench_gui.py: its command line, without running the benchmark."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[3] / "tools" / "bench_gui.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(TOOL), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_the_viewer_benchmark_says_what_it_measures_and_takes_a_preview_size():
    done = run("--help")
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--preview" in done.stdout
    bad = run("--preview", "big")
    assert bad.returncode == 2 and "WIDTHxHEIGHT" in bad.stderr
