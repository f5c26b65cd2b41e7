"""The session killed mid-command, round after round, with several clients sending.

Each round starts ``lumiera up --headless FILE`` on the same session file.
Client threads (one ControlClient each) send ``add_track`` commands with a
``command_id`` (the track's name is the id, so the session's tracks name
each command) as fast as they are answered; after a random short delay the
session process is SIGKILLed, which ends the instance in an emergency (exit
2, ON_EMERGENCY_EXIT naming the session, docs/PROTOCOL.md 11.5).

A command whose answer arrived is *acknowledged*; one that was sent but got
an error or no answer (the supervisor's ``subsystem_gone``, ``shutting_down``,
a client timeout) is *unknown*: it may or may not have been committed. The
next round's fresh instance on the same file first checks the previous
round: every acknowledged id is in the session exactly once; every unknown
and some acknowledged ids are retried with their ids, as a client would after
a lost reply: an acknowledged one must be answered as a duplicate with its
first revision, and after the retries every id is in the session exactly
once (nothing applied twice). The benchmark (tools/bench_faults.py) does 100
rounds; the unit-level version of this (a SessionCore in a child process,
no bus) is tests/unit/steam/test_crash.py.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lumiera.testing import Instance, Tap, synced_tap
from lumiera.testing.ledger import Ledger, send, tracks
from lumiera.testing.ledger import check_and_retry as ledger_check_and_retry

pytestmark = pytest.mark.integration

ROUNDS = 5
CLIENTS = 3


def check_and_retry(inst: Instance, ledger: Ledger, rng: random.Random) -> None:
    """Every acknowledged id there once; retries: duplicates for the acknowledged, once for all."""
    seen = tracks(inst)
    lost = sorted(cid for cid in ledger.acked if seen[cid] != 1)
    assert not lost, f"acknowledged commands lost or doubled: {[(c, seen[c]) for c in lost]}"
    sample = rng.sample(sorted(ledger.acked), min(10, len(ledger.acked)))
    ledger_check_and_retry(inst, ledger, sample)
    assert not ledger.lost and not ledger.doubled, (ledger.lost, ledger.doubled)
    seen = tracks(inst)
    assert all(n == 1 for n in seen.values()), [c for c, n in seen.items() if n != 1]
    assert set(seen) == set(ledger.acked)
    described = inst.request("session", "describe")["session"]
    assert described["revision"] == described["journal_rows"] == len(ledger.acked)


def kill_round(inst: Instance, ledger: Ledger, rnd: int, rng: random.Random) -> None:
    """Clients sending, then SIGKILL of the session mid-stream; the emergency as documented."""
    tap: Tap = synced_tap(inst.rd, ["lifecycle."])
    stop = threading.Event()
    before = len(ledger.acked)
    try:
        victim = inst.pid_of("session")
        workers = [
            threading.Thread(target=send, args=(inst, f"r{rnd}w{n}", ledger, stop))
            for n in range(CLIENTS)
        ]
        for w in workers:
            w.start()
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(victim, signal.SIGKILL)
        emergency = tap.wait_topic("lifecycle.ON_EMERGENCY_EXIT", 10)
        stop.set()
        for w in workers:
            w.join(timeout=15)
        assert not any(w.is_alive() for w in workers)
    finally:
        stop.set()
        tap.close()
    assert len(ledger.acked) > before, "no command was acknowledged before the kill"
    assert (emergency["subsystem"], emergency["signal"]) == ("session", signal.SIGKILL)
    assert inst.wait(timeout=20) == 2, inst.output()


def test_acknowledged_commands_survive_sigkills_of_the_session_and_none_is_applied_twice(
    tmp_path: Path,
):
    path = tmp_path / "crashy.lum"
    ledger = Ledger()
    rng = random.Random(16)
    for rnd in range(ROUNDS):
        with Instance(["--headless", str(path)]) as inst:
            inst.wait_running()
            if rnd:
                check_and_retry(inst, ledger, rng)
            kill_round(inst, ledger, rnd, rng)
    assert len(ledger.acked) > ROUNDS * CLIENTS  # the rounds did send
    assert ledger.unknown_total >= ROUNDS  # and the kills did land mid-command
    with Instance(["--headless", str(path)]) as last:
        last.wait_running()
        check_and_retry(last, ledger, rng)


def test_a_retry_after_the_restart_is_answered_with_the_first_answer_not_applied_again(
    tmp_path: Path,
):
    path = tmp_path / "retry.lum"
    with Instance(["--headless", str(path)]) as inst:
        inst.wait_running()
        first: dict[str, Any] = inst.request(
            "session", "add_track", {"name": "V1", "command_id": "once"}
        )
        os.kill(inst.pid_of("session"), signal.SIGKILL)
        assert inst.wait(timeout=20) == 2, inst.output()
    with Instance(["--headless", str(path)]) as again:
        again.wait_running()
        retried = again.request("session", "add_track", {"name": "V1", "command_id": "once"})
        assert retried == {**first, "duplicate": True}
        assert tracks(again) == Counter({"V1": 1})
