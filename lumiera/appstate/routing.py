"""The control plane's bookkeeping of requests from tools, routed to subsystems.

Pure bookkeeping of in-flight routed requests (who asked, with which id, by
when), and of *parked* ones: requests to a subsystem that is still starting
wait here, in arrival order, and go on when it runs (so a client may send
commands as soon as the instance is up). The control plane
(:mod:`.control`) owns the socket and calls in. Every request gets exactly
one answer: the subsystem's reply, or ``timeout``, ``subsystem_gone``,
``unavailable`` (it never ran) or ``shutting_down``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from lumiera.bus import messages as m
from lumiera.errors import RequestTimeout, ShuttingDown, SubsystemGone, Unavailable


@dataclass(frozen=True)
class Peer:
    """Where an answer goes: the ROUTER identity, and whether it is a REQ (empty delimiter)."""

    identity: bytes
    delimited: bool = False

    def frames(self, body: bytes) -> list[bytes]:
        return [self.identity, b"", body] if self.delimited else [self.identity, body]


@dataclass(frozen=True)
class Pending:
    peer: Peer
    client_id: str
    target: str
    deadline: float


@dataclass(frozen=True)
class Parked:
    peer: Peer
    request: m.Request
    deadline: float


class Routing:
    """Routed requests in flight, keyed by the id the supervisor gave them, and parked ones."""

    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._parked: dict[str, list[Parked]] = {}
        self._ids = itertools.count(1)

    def park(self, peer: Peer, req: m.Request, deadline: float) -> None:
        """Hold ``req`` until ``req.to`` runs (or ``deadline`` passes)."""
        self._parked.setdefault(req.to, []).append(Parked(peer, req, deadline))

    def unpark(self, target: str) -> list[Parked]:
        """The requests held for ``target``, oldest first (it runs now)."""
        return self._parked.pop(target, [])

    def refuse_parked(self, target: str, why: str) -> list[tuple[Peer, m.Message]]:
        """Answers for the requests held for ``target``, which will not run."""
        return [
            (p.peer, m.Error(p.request.id, Unavailable.code, f"{target} {why}"))
            for p in self._parked.pop(target, [])
        ]

    def forward(self, peer: Peer, req: m.Request, deadline: float) -> m.Request:
        """Record ``req`` and return the request to send on to ``req.to``."""
        rid = f"r{next(self._ids)}"
        self._pending[rid] = Pending(peer, req.id, req.to, deadline)
        return m.Request(rid, req.to, req.command, req.args)

    def answer(self, sender: str, msg: m.Reply | m.Error) -> tuple[Peer, m.Message] | None:
        """Match a subsystem's answer to its request; None for a late or foreign answer."""
        if msg.id is None:
            return None
        pending = self._pending.get(msg.id)
        if pending is None or pending.target != sender:
            return None
        del self._pending[msg.id]
        out: m.Message
        if isinstance(msg, m.Reply):
            out = m.Reply(pending.client_id, msg.result)
        else:
            out = m.Error(pending.client_id, msg.code, msg.message)
        return pending.peer, out

    def expire(self, now: float) -> list[tuple[Peer, m.Message]]:
        """Timeout answers for every request past its deadline."""
        late = [rid for rid, p in self._pending.items() if now >= p.deadline]
        out = [
            self._fail(rid, RequestTimeout.code, "no reply within the request timeout")
            for rid in late
        ]
        for target, held in list(self._parked.items()):
            keep = [p for p in held if now < p.deadline]
            for p in held:
                if now >= p.deadline:
                    text = f"{target}: not running within the request timeout (still starting)"
                    out.append((p.peer, m.Error(p.request.id, RequestTimeout.code, text)))
            self._parked[target] = keep
        return out

    def gone(self, target: str) -> list[tuple[Peer, m.Message]]:
        """Answers for every request in flight to ``target``, which has ended."""
        ids = [rid for rid, p in self._pending.items() if p.target == target]
        return [self._fail(rid, SubsystemGone.code, "ended before it answered") for rid in ids]

    def abandon(self) -> list[tuple[Peer, m.Message]]:
        """Answers for every request in flight: the supervisor is exiting."""
        out = [
            self._fail(rid, ShuttingDown.code, "the instance ended before it answered")
            for rid in list(self._pending)
        ]
        for target, held in self._parked.items():
            text = f"{target}: the instance ended before it ran"
            out += [(p.peer, m.Error(p.request.id, ShuttingDown.code, text)) for p in held]
        self._parked.clear()
        return out

    def next_deadline(self) -> float | None:
        times = [p.deadline for p in self._pending.values()]
        times += [p.deadline for held in self._parked.values() for p in held]
        return min(times, default=None)

    def _fail(self, rid: str, code: str, text: str) -> tuple[Peer, m.Message]:
        p = self._pending.pop(rid)
        return p.peer, m.Error(p.client_id, code, f"{p.target}: {text}")
