"""Publisher and Subscriber over a real XSUB/XPUB pair, without a supervisor.

The pair here forwards everything, both ways (subscriptions up, events down);
what the supervisor refuses to forward is tested in test_events.py and
against a real instance in tests/integration/test_tools_e2e.py.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from lumiera.bus.events import (
    Event,
    ExtBody,
    LogLine,
    Publisher,
    SessionChanged,
    Subscriber,
)
from lumiera.errors import EventTimeout
from lumiera.runtime_dir import RuntimeDir

SYNC_S = 5.0  # bound on any wait for a subscription to be in place


@pytest.fixture
def rd() -> Iterator[RuntimeDir]:
    """A runtime directory with a forwarding XSUB (``publish``) -> XPUB (``events``) pair."""
    path = Path(tempfile.mkdtemp(prefix="lev-"))
    rd = RuntimeDir(path, "t", default_location=False)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    xsub, xpub = ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB)
    for sock in (xsub, xpub):
        sock.setsockopt(zmq.LINGER, 0)
    xsub.bind(rd.endpoint("publish"))
    xpub.bind(rd.endpoint("events"))
    stop = threading.Event()

    def forward() -> None:
        poller = zmq.Poller()
        poller.register(xsub, zmq.POLLIN)
        poller.register(xpub, zmq.POLLIN)
        while not stop.is_set():
            for sock, _ in poller.poll(20):
                other = xpub if sock is xsub else xsub
                other.send_multipart(sock.recv_multipart())

    thread = threading.Thread(target=forward, daemon=True)
    thread.start()
    try:
        yield rd
    finally:
        stop.set()
        thread.join(SYNC_S)
        xsub.close()
        xpub.close()
        shutil.rmtree(path, ignore_errors=True)


def synced(rd: RuntimeDir, pub: Publisher, sub: Subscriber) -> None:
    """Publish probes until ``sub`` receives one: the path is in place both ways."""
    sub.subscribe("ext.sync")
    deadline = time.monotonic() + SYNC_S
    while time.monotonic() < deadline:
        pub.publish("ext.sync", ExtBody())
        if sub.receive(0.05) is not None:
            while sub.receive(0.05) is not None:  # drain the other probes
                pass
            return
    raise AssertionError("the publisher never reached the subscriber")


def test_a_published_event_arrives_typed_with_its_sender(rd):
    with Publisher(rd, "session") as pub, Subscriber(rd, "session.") as sub:
        synced(rd, pub, sub)
        before = time.time()
        pub.publish("session.changed", SessionChanged(command="add_track", id="c1", revision=4))
        event = sub.receive(SYNC_S)
    assert event is not None and event.topic == "session.changed"
    assert event.body == SessionChanged(command="add_track", id="c1", revision=4)
    assert event.sender == "session" and before <= event.ts <= time.time()
    assert event.data() == {"command": "add_track", "id": "c1", "revision": 4}


def test_wait_passes_over_other_topics_and_events_not_matching_where(rd):
    # Subscribed to all of ext.*: wait receives ext.other too, and passes over it.
    with Publisher(rd, "engine") as pub, Subscriber(rd, "ext.") as sub:
        synced(rd, pub, sub)
        pub.publish("ext.other", ExtBody(fields={"n": 0}))
        for n in range(1, 4):
            pub.publish("ext.count", ExtBody(fields={"n": n}))

        def third(e: Event) -> bool:
            return bool(e.data()["n"] == 3)

        event = sub.wait("ext.count", SYNC_S, where=third)
    assert event.data() == {"n": 3}


def test_wait_that_sees_nothing_raises_event_timeout_naming_what_it_waited_for(rd):
    with Subscriber(rd) as sub:
        started = time.monotonic()
        with pytest.raises(EventTimeout, match=r"no player\.render\.\* or stats\.player\* event"):
            sub.wait(("player.render.", "stats.player"), 0.2)
        assert 0.2 <= time.monotonic() - started < 2.0
        with pytest.raises(TimeoutError):  # EventTimeout is a TimeoutError
            sub.wait("x", 0.05)


def test_receive_with_nothing_there_returns_none_within_its_timeout(rd):
    with Subscriber(rd, "") as sub:
        started = time.monotonic()
        assert sub.receive(0.1) is None
        assert time.monotonic() - started < 1.0


def test_a_wake_fd_ends_the_wait_at_once_and_events_still_arrive_with_one_given(rd):
    r, w = os.pipe()
    try:
        with Publisher(rd, "session") as pub, Subscriber(rd, "session.") as sub:
            synced(rd, pub, sub)
            pub.publish("session.changed", SessionChanged(command="x", id="c", revision=1))
            event = sub.receive(SYNC_S, wake=r)  # not woken: the event comes
            assert event is not None and event.topic == "session.changed"
            threading.Timer(0.1, os.write, (w, b"!")).start()
            started = time.monotonic()
            assert sub.receive(SYNC_S, wake=r) is None  # woken, long before its timeout
            assert 0.05 <= time.monotonic() - started < SYNC_S / 2
    finally:
        os.close(r)
        os.close(w)


def test_a_malformed_event_is_dropped_counted_and_logged_once_not_raised(rd, caplog):
    with Publisher(rd, "t") as pub, Subscriber(rd, "") as sub:
        synced(rd, pub, sub)
        raw: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PUB)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(rd.endpoint("publish"))
        try:
            deadline = time.monotonic() + SYNC_S
            with caplog.at_level(logging.WARNING, logger="lumiera.bus"):
                while sub.dropped == 0 and time.monotonic() < deadline:  # until it is connected
                    raw.send_multipart([b"bogus", b"\xc1"])
                    assert sub.receive(0.05) is None
                pub.publish("log.engine", LogLine(stream="stdout", line="after"))
                event = sub.wait("log.", SYNC_S)
        finally:
            raw.close()
    assert event.body == LogLine(stream="stdout", line="after")
    dropped = [r for r in caplog.records if "dropped a bad event" in r.getMessage()]
    assert sub.dropped >= 1 and len(dropped) == sub.dropped
    assert "'bogus' is not declared" in dropped[0].getMessage()


def test_threads_may_share_one_publisher(rd):
    with Publisher(rd, "engine") as pub, Subscriber(rd, "ext.n") as sub:
        synced(rd, pub, sub)

        def publish_some(k: int) -> None:
            for i in range(50):
                pub.publish("ext.n", ExtBody(fields={"k": k, "i": i}))

        threads = [threading.Thread(target=publish_some, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SYNC_S)
        got = []
        while (event := sub.receive(0.5)) is not None:
            got.append((event.data()["k"], event.data()["i"]))
    assert sorted(got) == [(k, i) for k in range(4) for i in range(50)]


def test_publishing_after_close_does_nothing(rd):
    pub = Publisher(rd, "engine")
    pub.close()
    pub.publish("ext.late", ExtBody())  # a worker thread ending after its subsystem stopped
    pub.close()  # twice is fine
