"""The supervisor's control plane: requests from tools, routed to subsystems or answered.

Pure bookkeeping of in-flight routed requests (who asked, with which id, by
when); the supervisor owns the socket and calls in. Every request gets exactly
one answer: the subsystem's reply, or ``timeout``, or ``subsystem_gone``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from lumiera.bus import messages as m
from lumiera.errors import RequestTimeout, ShuttingDown, SubsystemGone


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


class Routing:
    """Routed requests in flight, keyed by the id the supervisor gave them."""

    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._ids = itertools.count(1)

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
        return [
            self._fail(rid, RequestTimeout.code, "no reply within the request timeout")
            for rid in late
        ]

    def gone(self, target: str) -> list[tuple[Peer, m.Message]]:
        """Answers for every request in flight to ``target``, which has ended."""
        ids = [rid for rid, p in self._pending.items() if p.target == target]
        return [self._fail(rid, SubsystemGone.code, "ended before it answered") for rid in ids]

    def abandon(self) -> list[tuple[Peer, m.Message]]:
        """Answers for every request in flight: the supervisor is exiting."""
        return [
            self._fail(rid, ShuttingDown.code, "the instance ended before it answered")
            for rid in list(self._pending)
        ]

    def next_deadline(self) -> float | None:
        return min((p.deadline for p in self._pending.values()), default=None)

    def _fail(self, rid: str, code: str, text: str) -> tuple[Peer, m.Message]:
        p = self._pending.pop(rid)
        return p.peer, m.Error(p.client_id, code, f"{p.target}: {text}")
