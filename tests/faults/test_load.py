"""The load case, short: tools on ``status`` and ``tap`` while session commands stream in.

For a few seconds, threads of this process poll ``appstate status`` (each its
own ControlClient), subscribers tap ``session.*`` (each its own Subscriber,
the subscription known to be in place first), and senders send ``add_track``
commands with ``command_id``s as fast as they are answered. Then: every
command was answered, every acknowledged one is in the session
exactly once, each tap saw one ``session.changed`` per acknowledged command,
and ``status`` was answered throughout (no error, no long silence). The p99
of ``status`` is recorded (``record_property``, and printed with ``-s``),
never asserted: the machine is shared and noisy; the figure belongs to
tools/bench_faults.py (20 tools, up to 1,000 commands/s, 20 s).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lumiera.testing import Instance, Tap, synced_tap, wait_for

pytestmark = pytest.mark.integration

SECONDS = 3.0
STATUS_TOOLS = 4
TAPS = 2
SENDERS = 2
# Not a timing figure: a silence this long means status was not answered at all.
SILENCE_S = 5.0


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def test_under_status_and_tap_load_no_command_is_lost_and_status_is_answered_throughout(
    tmp_path: Path, record_property: Callable[[str, object], None]
):
    failures: list[BaseException] = []
    stop = threading.Event()
    acked: dict[str, int] = {}
    lock = threading.Lock()
    status_ms: list[list[float]] = [[] for _ in range(STATUS_TOOLS)]
    silences: list[float] = [0.0] * STATUS_TOOLS

    def guarded(fn: Callable[..., None], *args: Any) -> Callable[[], None]:
        def run() -> None:
            try:
                fn(*args)
            except BaseException as e:  # noqa: BLE001 - reported below
                failures.append(e)
                stop.set()

        return run

    with Instance(["--headless", str(tmp_path / "load.lum")]) as inst:
        inst.wait_running()
        taps: list[Tap] = [synced_tap(inst.rd, ["session."]) for _ in range(TAPS)]
        try:

            def status_tool(n: int) -> None:
                with inst.client(timeout=10) as c:
                    last = time.monotonic()
                    while not stop.is_set():
                        t = time.perf_counter()
                        assert c.request("appstate", "status")["phase"] == "running"
                        status_ms[n].append((time.perf_counter() - t) * 1000)
                        now = time.monotonic()
                        silences[n] = max(silences[n], now - last)
                        last = now
                        time.sleep(0.005)

            def tap_tool(tap: Tap) -> None:
                while not stop.is_set():
                    tap.poll(0.05)

            def sender(n: int) -> None:
                with inst.client(timeout=10) as c:
                    i = 0
                    while not stop.is_set():
                        cid = f"s{n}-{i}"
                        answer = c.request("session", "add_track", {"name": cid, "command_id": cid})
                        with lock:
                            acked[cid] = answer["revision"]
                        i += 1

            jobs = [guarded(status_tool, n) for n in range(STATUS_TOOLS)]
            jobs += [guarded(tap_tool, tap) for tap in taps]
            jobs += [guarded(sender, n) for n in range(SENDERS)]
            threads = [threading.Thread(target=job) for job in jobs]
            for th in threads:
                th.start()
            stop.wait(SECONDS)
            stop.set()
            for th in threads:
                th.join(timeout=20)
            assert not any(th.is_alive() for th in threads)
            assert not failures, failures
            for tap in taps:

                def complete(tap: Tap = tap) -> bool:
                    tap.poll(0.05)
                    return len(tap.topics("session.changed")) >= len(acked)

                wait_for(complete, 10, "every session.changed")
            session = inst.request("session", "describe")["session"]
        finally:
            for tap in taps:
                tap.close()

    assert len(acked) > 50, "the senders hardly sent"
    names = Counter(t["name"] for t in session["tracks"])  # the history keeps the last 1000
    assert names == Counter(acked.keys())  # every acknowledged command, once; nothing else
    assert sorted(acked.values()) == list(range(1, len(acked) + 1))
    for tap in taps:
        revisions = [b["revision"] for t, b in tap.events if t == "session.changed"]
        assert revisions == list(range(1, len(acked) + 1))
    assert all(samples for samples in status_ms)
    assert max(silences) < SILENCE_S, silences
    every = [x for samples in status_ms for x in samples]
    figure = round(p99(every), 2)
    record_property("status_ms_p99_under_load", figure)
    record_property("commands_per_s", round(len(acked) / SECONDS))
    print(f"\nstatus p99 {figure} ms over {len(every)}; {len(acked) / SECONDS:.0f} commands/s")
