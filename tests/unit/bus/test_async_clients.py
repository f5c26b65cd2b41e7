"""The asyncio bus clients over real sockets, without a supervisor: a ROUTER and a PUB stand in."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from lumiera.bus import messages as m
from lumiera.bus.client import AsyncControlClient
from lumiera.bus.events import AsyncSubscriber, SessionChanged, encode_event
from lumiera.errors import EventTimeout, NotFound, NotRunning, Unreachable
from lumiera.runtime_dir import InstanceLock, RuntimeDir

SYNC_S = 5.0


@pytest.fixture
def rd() -> Iterator[RuntimeDir]:
    path = Path(tempfile.mkdtemp(prefix="lac-"))
    try:
        yield RuntimeDir(path, "t", default_location=False)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def changed(revision: int) -> list[bytes]:
    body = SessionChanged(command="add_track", id=f"r{revision}", revision=revision)
    return encode_event("session.changed", body, "session")


async def synced(pub: zmq.asyncio.Socket, sub: AsyncSubscriber) -> None:
    """Publish until ``sub`` hears one (the subscription reached the PUB), then drain."""
    deadline = time.monotonic() + SYNC_S
    while time.monotonic() < deadline:
        await pub.send_multipart(changed(0))
        if await sub.receive(0.02) is not None:
            while await sub.receive(0.05) is not None:
                pass
            return
    raise AssertionError("the subscriber never heard the publisher")


def test_the_async_subscriber_receives_drops_bad_events_and_times_out(rd):
    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        pub = ctx.socket(zmq.PUB)
        pub.bind(rd.endpoint("events"))
        sub = AsyncSubscriber(rd, "session.", context=ctx)
        try:
            await synced(pub, sub)
            await pub.send_multipart([b"session.changed", b"x", b"y"])  # 3 frames: dropped
            await pub.send_multipart(changed(7))
            event = await sub.receive(SYNC_S)
            assert event is not None and event.topic == "session.changed"
            assert isinstance(event.body, SessionChanged) and event.body.revision == 7
            assert sub.dropped == 1
            started = time.monotonic()
            assert await sub.receive(0.05) is None
            assert time.monotonic() - started < 1.0
            await pub.send_multipart(changed(8))
            await pub.send_multipart(changed(9))
            found = await sub.wait("session.", SYNC_S, lambda e: e.data()["revision"] == 9)
            assert found.data()["revision"] == 9
            with pytest.raises(EventTimeout, match=r"no stats\.\* event within 0.05 s"):
                await sub.wait("stats.", 0.05)
        finally:
            sub.close()
            pub.close(linger=0)
            ctx.term()

    asyncio.run(scenario())


def test_the_async_control_client_refuses_an_instance_that_is_not_running(rd):
    with pytest.raises(NotRunning):
        AsyncControlClient(rd)


def test_the_async_control_client_matches_replies_to_requests_in_any_order(rd):
    lock = InstanceLock(rd)
    lock.acquire()

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.bind(rd.endpoint("control"))
        client = AsyncControlClient(rd, timeout=SYNC_S, context=ctx)

        async def supervisor() -> None:
            held = []
            for _ in range(3):
                peer, data = await router.recv_multipart()
                request = m.decode(data)
                assert isinstance(request, m.Request)
                held.append((peer, request))
            for peer, request in reversed(held):  # answered last first
                if request.command == "missing":
                    answer: m.Message = m.Error(request.id, "not_found", "no such thing")
                elif request.command == "silent":
                    continue  # never answered
                else:
                    answer = m.Reply(request.id, {"echo": request.args["n"]})
                await router.send_multipart([peer, m.encode(answer)])

        serving = asyncio.get_running_loop().create_task(supervisor())
        try:
            first = client.request("session", "echo", {"n": 1})
            missing = client.request("session", "missing")
            silent = client.request("session", "silent", timeout=0.3)
            outcomes: list[object] = await asyncio.gather(
                first, missing, silent, return_exceptions=True
            )
            one, err, late = outcomes
            assert one == {"echo": 1}
            assert isinstance(err, NotFound) and str(err) == "no such thing"
            assert isinstance(late, Unreachable) and "within 0.3 s" in str(late)
            await serving
        finally:
            await client.close()
            router.close()
            ctx.term()
        with pytest.raises(Unreachable, match="closed"):
            await client.request("session", "echo", {"n": 2})

    try:
        asyncio.run(scenario())
    finally:
        lock.release()
