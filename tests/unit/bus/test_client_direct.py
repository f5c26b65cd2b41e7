"""ControlClient(direct=True): svc-<name> when it is there, control when not, always bounded."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import zmq

from lumiera.bus import messages as m
from lumiera.bus.client import ControlClient
from lumiera.errors import Unreachable
from lumiera.runtime_dir import (
    InstanceLock,
    RuntimeDir,
    prepare,
    remove_service_socket,
    service_name,
)


class Echo:
    """A ROUTER in a thread that answers each request with who it is."""

    def __init__(self, endpoint: str, who: str) -> None:
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.who = who
        self.answer = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.sock.poll(20):
                continue
            ident, body = self.sock.recv_multipart()
            req = m.decode(body)
            assert isinstance(req, m.Request)
            if self.answer:
                reply = m.Reply(req.id, {"who": self.who, "to": req.to})
                self.sock.send_multipart([ident, m.encode(reply)])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close(linger=0)


@pytest.fixture
def instance(rd: RuntimeDir) -> Iterator[RuntimeDir]:
    """A locked runtime directory with a ``control`` that answers every request."""
    prepare(rd)
    lock = InstanceLock(rd)
    lock.acquire()
    control = Echo(rd.endpoint("control"), "control")
    try:
        yield rd
    finally:
        control.close()
        rd.socket("control").unlink(missing_ok=True)
        lock.release()


def test_direct_goes_to_the_service_socket_when_there_and_routes_when_not(
    instance: RuntimeDir,
) -> None:
    with ControlClient(instance, timeout=2.0, direct=True) as c:
        assert c.request("engine", "ping")["who"] == "control"  # no svc-engine: routed
        svc = Echo(instance.endpoint(service_name("engine")), "engine")
        try:
            assert c.request("engine", "ping") == {"who": "engine", "to": "engine"}
            assert c.request("appstate", "ping")["who"] == "control"  # never direct
            assert c.request("session", "ping")["who"] == "control"
        finally:
            svc.close()
            remove_service_socket(instance, "engine")
        # gone (file removed): routed again, no wait
        assert c.request("engine", "ping")["who"] == "control"
    with ControlClient(instance, timeout=2.0) as routed:  # the default routes everything
        svc = Echo(instance.endpoint(service_name("engine")), "engine")
        try:
            assert routed.request("engine", "ping")["who"] == "control"
        finally:
            svc.close()
            remove_service_socket(instance, "engine")


def test_a_stale_service_socket_gives_unreachable_within_the_timeout(
    instance: RuntimeDir,
) -> None:
    stale = socket.socket(socket.AF_UNIX)  # a file nobody listens on: a killed subsystem's
    stale.bind(str(instance.socket(service_name("engine"))))
    stale.close()
    try:
        with ControlClient(instance, timeout=0.3, direct=True) as c:
            t0 = time.monotonic()
            with pytest.raises(Unreachable, match="accepts no connection"):
                c.request("engine", "ping")
            assert time.monotonic() - t0 < 1.0
    finally:
        remove_service_socket(instance, "engine")


def test_a_service_that_vanishes_while_asked_is_unreachable_at_once(instance: RuntimeDir) -> None:
    svc = Echo(instance.endpoint(service_name("engine")), "engine")
    try:
        with ControlClient(instance, timeout=5.0, direct=True) as c:
            c.request("engine", "ping")
            svc.answer = False  # hung: takes the request, never answers
            threading.Timer(0.2, remove_service_socket, (instance, "engine")).start()
            t0 = time.monotonic()
            with pytest.raises(Unreachable, match="ended before it answered"):
                c.request("engine", "ping")
            assert time.monotonic() - t0 < 1.5
            assert c.request("engine", "ping")["who"] == "control"  # then routed
    finally:
        svc.close()
        remove_service_socket(instance, "engine")


def test_remove_service_socket_leaves_a_successor_alone(instance: RuntimeDir) -> None:
    path = instance.socket(service_name("x"))
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    assert not remove_service_socket(instance, "x", inode=path.stat().st_ino + 1)
    assert remove_service_socket(instance, "x", inode=path.stat().st_ino)
    assert not path.exists()
    assert not remove_service_socket(instance, "x")
