"""Garbage on every socket of a real headless instance, for a bounded time.

On ``control`` and on each subsystem's ``svc-NAME``: random and crafted
frames, empty frames, 1,000 parts, an oversized frame, kinds a client may
not send, requests to unknown subsystems, and requests with fuzzed
arguments (valid, boundary, invalid) for every command of the addressee's
table. On ``publish``: bad framing, bad topics, bad bodies, reserved topics
and ``sender: appstate``, none of which may reach a subscriber of
``events``. After each socket's batch the instance answers ``status``,
every subsystem still runs (same pid), and the log says what was dropped.

The time per socket is ``profiles.LIVE_SECONDS`` (1.5 s in the ci profile).
Requests that would stop the instance (``appstate stop``) or write outside a
temp dir are left out; frame counts and ring sizes are kept small.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st

from lumiera.appstate.commands import AppStateCommands
from lumiera.bus import messages as m
from lumiera.bus.codec import pack
from lumiera.bus.commands import CommandSpec
from lumiera.bus.topics import topic_of
from lumiera.steam.edits import Edits
from lumiera.steam.player import PlayerActor
from lumiera.steam.session import SessionActor
from lumiera.testing import Instance
from lumiera.vault.engine import EngineActor
from tests.fuzz import strategies as fs
from tests.fuzz.profiles import FUZZ, LIVE_SECONDS, count

pytestmark = pytest.mark.integration

DOCUMENTED = fs.documented_codes()
MAX_BYTES = 1 << 20
ROUTED_WAIT_S = 7.0  # longer than the supervisor's request_timeout (5 s)
GARBAGE_WAIT_S = 3.0

TABLES: dict[str, dict[str, CommandSpec]] = {
    "appstate": {k: v for k, v in AppStateCommands.commands.items() if k != "stop"},
    "engine": EngineActor.commands,
    "session": {**SessionActor.commands, **Edits.commands},
    "player": PlayerActor.commands,
}
SMALL: fs.Known = {
    "slots": st.sampled_from([None, 0, 1, 2, -1, 5000]),
    "slot_mb": st.sampled_from([None, 0, 1, -1, 9999]),
    "count": st.integers(-1, 8),
    "first": st.integers(-1, 8),
    "start": st.sampled_from([None, 0.0, -1.0]),
}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Instance]:
    with Instance(("--headless",)) as inst:
        inst.wait_running(timeout=30)
        yield inst


@pytest.fixture
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield context
    context.destroy(linger=0)


def safe(to: str, command: str, args: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The request made harmless: small rings and ranges, files only in ``out_dir``."""
    args = dict(args)
    if command == "create_ring":
        for key, most in (("slots", 2), ("slot_mb", 1)):
            if isinstance(args.get(key), int) and not 0 <= args[key] <= most:
                args[key] = -1 if args[key] < 0 else 0 if args[key] > 10_000 else most
    for key in ("count",):
        if isinstance(args.get(key), int) and args[key] > 8:
            args[key] = 8
    if to == "player" and command == "render" and isinstance(args.get("output"), str):
        args["output"] = str(out_dir / "render.mkv")
    if isinstance(args.get("start"), float) and args["start"] > 1e6:
        args["start"] = None
    return {k: v for k, v in args.items() if v is not None or k not in ("start",)}


def requests_to(to: str) -> st.SearchStrategy[tuple[str, dict[str, Any], str]]:
    return fs.requests_for(TABLES[to], known=SMALL)


class Peer:
    """A raw DEALER on one socket of the instance."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], path: Path) -> None:
        self.path = path
        self.ctx = ctx
        self.sock = self._connect()
        self.history: list[str] = []  # the last requests and how long each took, for a failure

    def _connect(self) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"ipc://{self.path}")
        return sock

    def exchange(self, frames: list[bytes], wait: float) -> m.Message | None:
        """Send one message; the answer (decoded: it must be readable), or None after ``wait``."""
        self.sock.send_multipart(frames)
        if not self.sock.poll(int(wait * 1000)):
            return None
        answer = self.sock.recv_multipart()
        assert len(answer) in (1, 2), answer[:3]
        return m.decode(answer[-1])

    def request(self, to: str, command: str, args: dict[str, Any], rid: str) -> m.Message:
        body = {"v": 1, "kind": "request", "id": rid, "to": to, "command": command, "args": args}
        started = time.monotonic()
        deadline = started + ROUTED_WAIT_S
        self.sock.send(pack(body))
        while (left := deadline - time.monotonic()) > 0:
            if not self.sock.poll(int(left * 1000)):
                break
            answer = m.decode(self.sock.recv_multipart()[-1])
            # An error with a nil id answers the one request in flight: it was unreadable.
            if getattr(answer, "id", None) == rid or (
                isinstance(answer, m.Error) and answer.id is None
            ):
                took = time.monotonic() - started
                self.history = [*self.history[-5:], f"{to} {command} {args!r}: {took:.2f} s"]
                return answer
        earlier = "\n".join(self.history)
        raise AssertionError(
            f"no answer to {to} {command} {args!r} within {ROUTED_WAIT_S} s; before:\n{earlier}"
        )

    def close(self) -> None:
        self.sock.close(linger=0)


def refused_as_bad_message(answer: m.Message | None, what: object) -> None:
    assert isinstance(answer, m.Error), f"{what!r}: answered {answer!r}"
    assert answer.id is None and answer.code == "bad_message", (what, answer)


def documented(answer: m.Message, what: object) -> None:
    if isinstance(answer, m.Error):
        assert answer.code in DOCUMENTED, (what, answer)
    else:
        assert isinstance(answer, m.Reply), (what, answer)


CLIENT_KINDS = [k for k in sorted(m.KINDS) if k not in ("request", "hello")]


def garbage_batch(peer: Peer, subsystems: list[str], me: str | None, out_dir: Path) -> None:
    """LIVE_SECONDS of garbage and fuzzed requests on one socket, each answer checked."""
    deadline = time.monotonic() + LIVE_SECONDS
    targets = [me] if me else ["appstate", *subsystems]
    serial = iter(range(1 << 30))

    @FUZZ
    @given(
        st.one_of(
            fs.garbage_frames.map(lambda f: ("garbage", [f])),
            st.sampled_from([[b""], [b"", b""], [b"x"] * 3, [b""] * 1000, [b"x"] * 5]).map(
                lambda f: ("garbage", f)
            ),
            st.sampled_from(fs.edge_frames).map(lambda f: ("edge", [f])),
            st.sampled_from(CLIENT_KINDS)
            .flatmap(fs.message_bodies)
            .map(lambda b: ("client_kind", [pack(b)])),
            st.sampled_from(targets).flatmap(
                lambda to: requests_to(to).map(lambda r: ("request", (to, *r)))
            ),
            st.text(min_size=1, max_size=64)
            .filter(lambda s: s not in ("appstate", *subsystems))
            .map(lambda s: ("unknown_subsystem", s)),
        )
    )
    def one(case: tuple[str, Any]) -> None:
        if time.monotonic() > deadline:
            return
        count(f"live.{peer.path.name}")
        what, payload = case
        if what == "garbage":
            refused_as_bad_message(peer.exchange(payload, GARBAGE_WAIT_S), payload[:3])
        elif what == "edge":  # a status request with an argument it does not take
            answer = peer.exchange(payload, GARBAGE_WAIT_S)
            assert isinstance(answer, m.Error) and answer.code in ("bad_args", "unknown_subsystem")
        elif what == "client_kind":
            refused_as_bad_message(peer.exchange(payload, GARBAGE_WAIT_S), payload)
        elif what == "unknown_subsystem":
            answer = peer.request(payload, "ping", {}, f"u{next(serial)}")
            assert isinstance(answer, m.Error) and answer.code == "unknown_subsystem", answer
        else:
            to, command, args, _flavour = payload
            args = safe(to, command, args, out_dir)
            documented(peer.request(to, command, args, f"f{next(serial)}"), payload)

    one()


def assert_alive(inst: Instance, pids: dict[str, int]) -> None:
    status = inst.status(timeout=5.0)
    assert status["phase"] == "running", status
    now = {s["name"]: (s["state"], s["pid"]) for s in status["subsystems"]}
    assert now == {name: ("running", pid) for name, pid in pids.items()}, now


def logged(inst: Instance, text: str) -> bool:
    logs = [inst.output()]
    logs += [p.read_text(errors="replace") for p in inst.log_dir.glob("*.log")]
    return any(text in log for log in logs)


def test_garbage_on_control_and_every_service_socket(live: Instance, ctx, tmp_path: Path):
    status = live.status()
    pids = {s["name"]: s["pid"] for s in status["subsystems"]}
    subsystems = list(pids)
    for name in ["control", *(f"svc-{n}" for n in subsystems)]:
        me = None if name == "control" else name.removeprefix("svc-")
        peer = Peer(ctx, live.rd.path / name)
        try:
            garbage_batch(peer, subsystems, me, tmp_path)
            # An oversized frame: libzmq drops it and the peer's connection, no answer.
            assert peer.exchange([b"\x00" * (MAX_BYTES + 1)], 0.3) is None
        finally:
            peer.close()
        assert_alive(live, pids)
        where = "control" if me is None else "the service socket"
        assert logged(live, f"bad message on {where}"), f"no log line for {name}"


def test_garbage_on_publish_never_reaches_events(live: Instance, ctx):
    pids = {s["name"]: s["pid"] for s in live.status()["subsystems"]}
    mark = f"fuzz-{time.monotonic_ns()}"
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"ipc://{live.rd.path / 'events'}")
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(f"ipc://{live.rd.path / 'publish'}")
    seen: list[tuple[bytes, dict[str, Any]]] = []

    def until(topic: bytes, timeout: float = 5.0) -> None:
        """Publish ``topic`` (a valid ext. event) until it comes back on events."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pub.send_multipart([topic, pack({"sender": mark, "ts": time.time()})])
            while sub.poll(50):
                frames = sub.recv_multipart()
                body = msgpack.unpackb(frames[-1]) if len(frames) == 2 else {}
                seen.append((frames[0], body))
                if frames[0] == topic:
                    return
        raise AssertionError(f"{topic!r} never came back on events")

    until(b"ext.fuzz.start")
    deadline = time.monotonic() + 2 * LIVE_SECONDS

    @FUZZ
    @given(
        fs.garbage_events(sender=mark)
        | st.sampled_from(fs.RESERVED).flatmap(lambda t: fs.event_frames(t, mark))
    )
    def one(frames: list[bytes]) -> None:
        if time.monotonic() > deadline:
            return
        count("live.publish")
        pub.send_multipart(frames)
        while sub.poll(0):
            got = sub.recv_multipart()
            seen.append((got[0], msgpack.unpackb(got[-1]) if len(got) == 2 else {}))

    try:
        one()
        # An oversized event: libzmq drops it (and the publisher's connection).
        pub.send_multipart([b"ext.fuzz.big", b"\x00" * (MAX_BYTES + 1)])
        until(b"ext.fuzz.end")
    finally:
        sub.close(linger=0)
        pub.close(linger=0)
    for topic, body in seen:
        sender = body.get("sender") if isinstance(body, dict) else None
        name = topic.decode("ascii", errors="replace")
        if sender == mark:
            assert not topic_of(name).reserved, f"reserved {name} forwarded from a publisher"
        if sender == "appstate":
            assert topic_of(name).reserved, f"{name} with sender appstate forwarded"
        assert topic != b"ext.fuzz.big"
    assert_alive(live, pids)
    assert logged(live, "dropped a bad event from a publisher")
