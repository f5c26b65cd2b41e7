"""The bus tools and hostile input on the bus, against a real instance."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import msgpack
import pytest
import zmq

from lumiera.bus import messages as m
from lumiera.testing import Instance, Tap, wait_for
from lumiera.testing import run_cli as lumiera

pytestmark = pytest.mark.integration


@pytest.fixture
def inst():
    with Instance(["--headless"], defs=["bus.max_message_bytes=4096", "bus.max_parts=3"]) as i:
        i.wait_running()
        yield i


@pytest.fixture
def zctx():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def where(inst: Instance) -> list[str]:
    return ["--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)]


def dealer(zctx: zmq.Context[zmq.Socket[bytes]], inst: Instance) -> zmq.Socket[bytes]:
    sock = zctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(inst.rd.endpoint("control"))
    return sock


def reply(sock: zmq.Socket[bytes], timeout: float = 5.0) -> m.Message:
    assert sock.poll(int(timeout * 1000)), "no reply"
    return m.decode(sock.recv_multipart()[-1])


def test_send_prints_the_reply_as_json_and_exits_by_outcome(inst):
    ok = lumiera("send", "engine", "ping", *where(inst))
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["result"]["name"] == "engine"
    bad = lumiera("send", "engine", "frobnicate", *where(inst))
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["error"]["code"] == "unknown_command"
    nosub = lumiera("send", "nosuch", "ping", *where(inst))
    assert nosub.returncode == 1
    assert json.loads(nosub.stdout)["error"]["code"] == "unknown_subsystem"
    badargs = lumiera("send", "engine", "ping", '{"x": 1}', *where(inst))
    assert json.loads(badargs.stdout)["error"]["code"] == "bad_args"
    notjson = lumiera("send", "engine", "ping", "{x", *where(inst))
    assert notjson.returncode == 64


def test_tap_prints_events_as_json_lines(inst):
    tap = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lumiera",
            "tap",
            "--json",
            "--count",
            "2",
            "--timeout",
            "20",
            "lifecycle.",
            *where(inst),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.7)  # let its subscription reach the supervisor
    assert lumiera("stop", *where(inst)).returncode == 0
    out, _ = tap.communicate(timeout=20)
    lines = [json.loads(line) for line in out.splitlines()]
    assert [e["topic"] for e in lines] == ["lifecycle.ON_SESSION_CLOSE", "lifecycle.ON_SESSION_END"]
    assert all({"topic", "sender", "ts", "body"} <= set(e) for e in lines)
    assert lines[0]["body"]["event"] == "ON_SESSION_CLOSE"


@pytest.mark.parametrize(
    "frames, code",
    [
        ([b"\xc1garbage"], "bad_message"),
        ([b"\x93\x01\x02"], "bad_message"),  # truncated array
        ([msgpack.packb([1, 2, 3])], "bad_message"),  # not a map
        ([msgpack.packb({"v": 1, "kind": "launch_missiles"})], "bad_message"),
        ([msgpack.packb({"v": 99, "kind": "request"})], "bad_message"),
        (
            [msgpack.packb({"v": 1, "kind": "request", "id": 7, "to": "x", "command": "y"})],
            "bad_message",
        ),
        ([msgpack.packb({"v": 1, "kind": "ready"})], "bad_message"),  # only subsystems may
        ([msgpack.packb({"v": 1, "kind": "hello", "name": "session", "pid": 1})], "unavailable"),
        ([b"a", b"b", b"c", b"d", b"e"], "bad_message"),  # too many parts
        (
            [
                msgpack.packb(
                    {
                        "v": 1,
                        "kind": "request",
                        "id": "1",
                        "to": "x",
                        "command": "y",
                        "args": {"t": msgpack.Timestamp(1)},
                    }
                )
            ],
            "bad_message",
        ),
    ],
)
def test_bad_messages_on_control_get_an_error_reply_and_change_nothing(inst, zctx, frames, code):
    before = inst.status()
    sock = dealer(zctx, inst)
    sock.send_multipart(frames)
    answer = reply(sock)
    assert isinstance(answer, m.Error) and answer.code == code
    after = inst.status()
    assert [(s["name"], s["pid"], s["state"]) for s in after["subsystems"]] == [
        (s["name"], s["pid"], s["state"]) for s in before["subsystems"]
    ]
    assert after["phase"] == "running" and after["errors"] == []


def test_an_oversized_message_is_dropped_and_the_instance_goes_on(inst, zctx):
    sock = dealer(zctx, inst)
    sock.send(b"\x00" * 10_000)  # over bus.max_message_bytes=4096: libzmq drops the peer
    assert not sock.poll(300)
    assert inst.request("session", "ping")["pong"] is True


def test_a_req_socket_client_works_too(inst, zctx):
    sock = zctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(inst.rd.endpoint("control"))
    sock.send(m.encode(m.Request("42", "appstate", "status", {})))
    assert sock.poll(5000)
    answer = m.decode(sock.recv())
    assert isinstance(answer, m.Reply) and answer.id == "42"
    assert answer.result["phase"] == "running"


def test_garbage_published_into_the_bus_is_dropped_and_not_forwarded(inst, zctx):
    tap = Tap(inst.rd, ["ext.bogus"])
    pub = zctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(inst.rd.endpoint("publish"))
    try:
        time.sleep(0.3)  # subscriptions travel both ways before we publish
        good = msgpack.packb({"sender": "test", "ts": time.time(), "x": 1})
        for frames in (
            [b"ext.bogus.one"],  # one frame
            [b"ext.bogus.two", b"\xc1"],  # not msgpack
            [b"ext.bogus.three", msgpack.packb({"ts": 1.0})],  # no sender
            [b"ext.bogus.four", good, b"extra"],  # three frames
            [b"ext.bogus.five", b"\x00" * 5000],  # oversized: the publisher is dropped
        ):
            pub.send_multipart(frames)
        pub2 = zctx.socket(zmq.PUB)
        pub2.setsockopt(zmq.LINGER, 0)
        pub2.connect(inst.rd.endpoint("publish"))
        time.sleep(0.3)
        pub2.send_multipart([b"ext.bogus.good", good])
        wait_for(lambda: tap.poll(0.1) or tap.topics("ext.bogus.good"), 5, "the good event")
        pub2.close()
    finally:
        pub.close()
        tap.close()
    assert tap.topics("ext.bogus") == ["ext.bogus.good"]
    assert inst.status()["phase"] == "running"


def test_undeclared_topics_and_bodies_not_of_their_kind_are_dropped_with_the_reason(inst, zctx):
    tap = Tap(inst.rd, ["bogus.", "stats.engine", "session.", "ext."])
    pub = zctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(inst.rd.endpoint("publish"))
    try:
        time.sleep(0.3)
        envelope = {"sender": "test", "ts": time.time()}
        pub.send_multipart([b"bogus.undeclared", msgpack.packb({**envelope, "x": 1})])
        bad_kind = {**envelope, "workers": "two", "queued": 0}
        pub.send_multipart([b"stats.engine", msgpack.packb(bad_kind)])
        unknown = {**envelope, "command": "c", "id": "1", "revision": 1, "extra": 2}
        pub.send_multipart([b"session.changed", msgpack.packb(unknown)])
        pub.send_multipart([b"ext.done", msgpack.packb(envelope)])
        wait_for(lambda: tap.poll(0.1) or tap.topics("ext.done"), 5, "the last event")
    finally:
        pub.close()
        tap.close()
    # (the engine's own stats.engine events come through, of course)
    assert [t for t, body in tap.events if body["sender"] == "test"] == ["ext.done"]
    assert inst.status()["phase"] == "running"  # the forwarder stays up
    out = inst.output()
    assert "topic 'bogus.undeclared' is not declared" in out
    assert "event stats.engine: workers: str is not int" in out
    assert "event session.changed: unknown field(s) extra" in out


def test_a_tool_cannot_impersonate_a_subsystem(inst, zctx):
    sock = dealer(zctx, inst)
    sock.send(m.encode(m.Hello("session", 1, False)))
    answer = reply(sock)
    assert isinstance(answer, m.Error) and "session is running" in answer.message
    sock.send(m.encode(m.Hello("session", 1, True)))
    answer = reply(sock)
    assert isinstance(answer, m.Error) and "not waiting for `lumiera run`" in answer.message
    assert inst.request("session", "ping")["pong"] is True


def test_a_publisher_cannot_forge_the_supervisors_events(inst, zctx):
    tap = Tap(inst.rd, ["lifecycle.", "appstate.", "subsystem.", "log.", "stats.viewer", "ext.ok"])
    pub = zctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(inst.rd.endpoint("publish"))
    try:
        time.sleep(0.3)
        forged = {"event": "ON_EMERGENCY_EXIT", "sender": "appstate", "ts": time.time()}
        pub.send_multipart([b"lifecycle.ON_EMERGENCY_EXIT", msgpack.packb(forged)])
        pub.send_multipart([b"appstate.phase", msgpack.packb({"sender": "x", "ts": 1.0})])
        line = {"sender": "engine", "ts": 1.0, "stream": "stdout", "line": "forged"}
        pub.send_multipart([b"log.engine", msgpack.packb(line)])
        ring = {"sender": "x", "ts": 1.0, "name": "viewer", "segment": "s", "policy": "drop"}
        pub.send_multipart([b"stats.viewer", msgpack.packb(ring)])  # the supervisor's ring stats
        pub.send_multipart([b"ext.ok.fake", msgpack.packb({"sender": "appstate", "ts": 1.0})])
        pub.send_multipart([b"ext.ok.bool", msgpack.packb({"sender": "x", "ts": True})])
        pub.send_multipart([b"ext.ok\x00nul", msgpack.packb({"sender": "x", "ts": 1.0})])
        pub.send_multipart([b"ext.ok.real", msgpack.packb({"sender": "x", "ts": 1.0})])
        wait_for(lambda: tap.poll(0.1) or tap.topics("ext.ok.real"), 5, "the real event")
    finally:
        pub.close()
        tap.close()
    assert tap.topics() == ["ext.ok.real"]


def test_a_subsystem_too_slow_to_answer_gives_a_timeout_reply_not_unreachable():
    defs = ["debug.faults=yes", "bus.request_timeout=0.3"]
    with Instance(["--headless"], defs=defs) as inst:
        inst.wait_running()
        hung = lumiera(
            "send", "session", "fault", '{"kind": "hang"}', *where(inst), "--timeout", "5"
        )
        assert hung.returncode == 1, hung.stderr
        assert json.loads(hung.stdout)["error"]["code"] == "timeout"
        assert inst.wait() == 2  # then its watchdog catches the hang: an emergency
