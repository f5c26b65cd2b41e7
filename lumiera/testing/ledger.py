"""What clients of a session know when its process is killed under them, and the audit.

The session crash tests (``tests/faults/test_session_faults.py``) and their
benchmark (``tools/bench_faults.py``) send ``add_track`` commands whose
``command_id`` is also the track's name, so the session's tracks name each
applied command. A command whose answer arrived is *acknowledged* (with its
revision); one sent without an answer (the session died, the instance is
shutting down, a timeout) is *unknown*: it may or may not have been committed.
On the next instance on the same file, every acknowledged id must be there
exactly once, a retry of an acknowledged id must be answered as a duplicate
with its first revision, and a retry of an unknown one acknowledges it.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lumiera.bus.client import ControlClient
from lumiera.errors import LumieraError
from lumiera.testing.instance import Instance


@dataclass
class Ledger:
    """What the clients of all rounds know, and what the audits found."""

    acked: dict[str, int] = field(default_factory=dict)  # id -> the revision answered
    unknown: set[str] = field(default_factory=set)  # sent, not answered
    unknown_total: int = 0  # over all rounds: commands in flight when the session died
    lost: set[str] = field(default_factory=set)  # acknowledged, missing from the session
    doubled: set[str] = field(default_factory=set)  # applied twice, or a retry not a duplicate
    lock: threading.Lock = field(default_factory=threading.Lock)


def add(client: ControlClient, cid: str) -> Any:
    """``add_track`` named ``cid`` with ``cid`` as its command id: the answer."""
    return client.request("session", "add_track", {"name": cid, "command_id": cid})


def send(inst: Instance, tag: str, ledger: Ledger, stop: threading.Event) -> None:
    """Send ``add_track`` commands ``TAG-0``, ``TAG-1``, ... until ``stop``, or until the
    first one that is not answered (then unknown)."""
    with contextlib.suppress(LumieraError), inst.client(timeout=5) as c:
        for i in range(1_000_000):
            if stop.is_set():
                return
            cid = f"{tag}-{i}"
            try:
                answer = add(c, cid)
            except LumieraError:  # gone, shutting down, no reply: applied or not, unknown
                with ledger.lock:
                    ledger.unknown.add(cid)
                    ledger.unknown_total += 1
                return
            with ledger.lock:
                ledger.acked[cid] = int(answer["revision"])


def tracks(inst: Instance) -> Counter[str]:
    """The session's tracks by name: how often each command id was applied."""
    session = inst.request("session", "describe")["session"]
    return Counter(t["name"] for t in session["tracks"])


def audit(acked: Iterable[str], seen: Counter[str]) -> tuple[set[str], set[str]]:
    """(acknowledged ids missing from the session, ids present more than once)."""
    return {cid for cid in acked if seen[cid] == 0}, {cid for cid, n in seen.items() if n > 1}


def check_and_retry(inst: Instance, ledger: Ledger, sample: Iterable[str]) -> None:
    """Audit the rounds before into ``ledger.lost``/``doubled``; retry the acknowledged ids of
    ``sample`` (each must be a duplicate with its first revision) and every unknown one
    (acknowledged then)."""
    lost, doubled = audit(ledger.acked, tracks(inst))
    ledger.lost |= lost
    ledger.doubled |= doubled
    with inst.client(timeout=10) as c:
        for cid in sample:
            again = add(c, cid)
            if again.get("duplicate") is not True or again["revision"] != ledger.acked[cid]:
                ledger.doubled.add(cid)
        for cid in sorted(ledger.unknown):
            ledger.acked[cid] = int(add(c, cid)["revision"])
    ledger.unknown.clear()
