"""tools/bench_render_cli.py: its command line, without rendering anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[3] / "tools" / "bench_render_cli.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], check=False, capture_output=True, text=True, timeout=60
    )


def test_its_help_names_the_length_and_the_rounds():
    done = run("--help")
    assert done.returncode == 0, done.stderr
    for option in ("--frames", "--rounds", "--quick"):
        assert option in done.stdout
    assert "ffmpeg" in done.stdout


def test_a_render_of_no_frames_or_no_rounds_is_refused_before_any_work():
    for args in (("--frames", "0"), ("--rounds", "0")):
        done = run(*args)
        assert done.returncode == 2
        assert "--frames and --rounds: at least 1" in done.stderr
        assert "media:" not in done.stderr  # nothing was generated
