"""Run the fuzz tests (tests/fuzz) with the ``long`` profile for about N minutes.

Run from the repository root with the project's interpreter::

    .venv/bin/python tools/fuzz.py --minutes 10

Runs rounds of ``pytest tests/fuzz`` with ``LUMIERA_FUZZ_PROFILE=long`` (random
seeds, so every round tries new cases) until the time is spent: the codec
and handler fuzzers with ``LUMIERA_FUZZ_SCALE`` (examples per test: 1000 x
scale, adjusted after each round so a round takes about two minutes or what
is left), the live fuzzers against a real headless instance with
``LUMIERA_FUZZ_LIVE_S`` seconds of garbage per socket. Stops at the first
round that fails and prints its output: whatever it found (a crash, an
undocumented error, a hang, a leak) belongs in tests/fuzz/test_regressions.py.

Prints a summary and, as the very last line of stdout, one JSON object:
``{"minutes", "seconds", "rounds", "cases": {test: n}, "total_cases",
"failed", "found"}``. Exits 0 when nothing was found, 1 when a round failed,
64 on a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUND_S = 120.0  # what a round should take when there is time for it
MIN_ROUND_S = 15.0  # no new round with less left than this


def run_round(scale: float, live_s: float, budget: float) -> tuple[int, dict[str, int], str]:
    """One pytest run of tests/fuzz; (exit code, cases per test, output)."""
    with tempfile.TemporaryDirectory(prefix="lumiera-fuzz-") as tmp:
        report = Path(tmp) / "report.json"
        env = dict(
            os.environ,
            LUMIERA_FUZZ_PROFILE="long",
            LUMIERA_FUZZ_SCALE=f"{scale:.4f}",
            LUMIERA_FUZZ_LIVE_S=f"{live_s:.2f}",
            LUMIERA_FUZZ_REPORT=str(report),
        )
        cmd = [sys.executable, "-m", "pytest", "-q", "-n0", "-p", "no:cacheprovider"]
        cmd += [f"--timeout={int(budget + 120)}", "tests/fuzz"]
        # Its own session: a round that hangs is ended with everything it started (a live
        # test's `lumiera up` has no parent-death signal), not pytest alone.
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=budget + 180)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            _end_group(proc)
            output, _ = proc.communicate()
            code = 124
            output += f"\nthe round hung: no end within {budget + 180:.0f} s"
        cases: dict[str, int] = {}
        if report.exists():
            cases = json.loads(report.read_text()).get("cases", {})
        return code, cases, output


def _end_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the round's process group (its instances stop in order); SIGKILL to the
    group after 10 s if any of it is left, the leader ended or not."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if proc.returncode is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.1)  # the leader reaped: its group's id stays ours to test
        else:
            time.sleep(0.05)  # the leader is gone: look at what is left of its group
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return  # the whole group is gone
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="about how long (default 5)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return 0 if e.code == 0 else 64
    if not args.minutes > 0:
        print("fuzz: --minutes must be positive", file=sys.stderr)
        return 64
    started = time.monotonic()
    deadline = started + args.minutes * 60
    scale, rounds, failed = 0.1, 0, False
    cases: Counter[str] = Counter()
    found: list[str] = []
    while rounds == 0 or deadline - time.monotonic() > MIN_ROUND_S:
        left = max(MIN_ROUND_S, deadline - time.monotonic())
        target = min(ROUND_S, left)
        live_s = max(1.0, target / 12)  # five sockets and publish, about half the round
        t0 = time.monotonic()
        print(f"round {rounds + 1}: scale {scale:.3f}, {live_s:.1f} s per socket", file=sys.stderr)
        code, got, output = run_round(scale, live_s, target)
        took = time.monotonic() - t0
        rounds += 1
        cases.update(got)
        print(f"round {rounds}: exit {code} in {took:.0f} s, {sum(got.values())} cases")
        if code != 0:
            failed = True
            print(output[-20_000:])
            found += [line for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))]
            found = found or [f"pytest exited {code}"]
            break
        # Aim the next round at its target time (the codec and handler part scales).
        scale = min(10.0, max(0.01, scale * max(0.25, min(4.0, target / max(took, 1.0)))))
    seconds = round(time.monotonic() - started, 1)
    total = sum(cases.values())
    print(f"fuzz: {rounds} round(s), {total} cases in {seconds} s; found: {len(found)}")
    for name, n in sorted(cases.items()):
        print(f"  {name:<40} {n}")
    summary = {
        "minutes": args.minutes,
        "seconds": seconds,
        "rounds": rounds,
        "cases": dict(sorted(cases.items())),
        "total_cases": total,
        "failed": failed,
        "found": found,
    }
    print(json.dumps(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
