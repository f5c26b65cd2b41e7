"""The Session subsystem in a real ``lumiera up --headless FILE``: edits over the bus, restarts."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from typing import Any

import pytest

from lumiera.errors import BadArguments, LumieraError, NotFound
from lumiera.testing import Instance, Tap, synced_tap, wait_for
from lumiera.testing import run_cli as lumiera
from tests.unit.steam.kit import make_video

pytestmark = pytest.mark.integration


def where(inst: Instance) -> list[str]:
    return ["--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)]


def tap_on(inst: Instance) -> Tap:
    """A Tap on session.* whose subscription is known to be in place."""
    return synced_tap(inst.rd, ["session."])


def changes(tap: Tap) -> list[dict[str, Any]]:
    return [body for topic, body in tap.events if topic == "session.changed"]


def test_edits_over_the_bus_are_announced_and_the_session_is_the_same_after_a_restart(
    tmp_path,
):
    video = make_video(tmp_path / "shot.mp4", frames=6)
    session_file = tmp_path / "film.lum"
    with Instance(["--headless", str(session_file)]) as inst:
        inst.wait_running()
        tap = tap_on(inst)
        try:
            media = inst.request("session", "add_media", {"path": str(video), "command_id": "m"})
            assert media["applied"]["frames"] == 6 and media["applied"]["width"] == 64
            sent = lumiera("send", *where(inst), "session", "add_track", json.dumps({"name": "V1"}))
            assert sent.returncode == 0, sent.stderr
            assert json.loads(sent.stdout)["result"]["applied"]["id"] == "t1"
            clip = {"media": "m1", "track": "t1", "position": 25, "command_id": "c"}
            inst.request("session", "add_clip", clip)
            assert inst.request("session", "add_clip", clip)["duplicate"] is True
            inst.request("session", "set_output", {"width": 640, "height": 360, "rate": "25"})
            with pytest.raises(NotFound):
                inst.request("session", "move_clip", {"id": "c9", "position": 0})
            wait_for(lambda: tap.poll(0.05) or len(changes(tap)) >= 4, 10, "4 session.changed")
            tap.poll(0.2)
        finally:
            tap.close()
        seen = changes(tap)
        assert [(e["command"], e["revision"]) for e in seen] == [
            ("add_media", 1),
            ("add_track", 2),
            ("add_clip", 3),
            ("set_output", 4),
        ]
        assert all(e["sender"] == "session" for e in seen)
        assert [seen[0]["id"], seen[2]["id"]] == ["m", "c"]
        described = inst.request("session", "describe")
        assert described["durable"] is True
        session = described["session"]
        assert session["file"] == str(session_file)
        assert session["clips"][0]["source_out"] == 6
        history = inst.request("session", "history")
        stopped = lumiera("stop", *where(inst))
        assert stopped.returncode == 0, stopped.stderr
        assert inst.wait() == 0

    with Instance(["--headless", str(session_file)]) as again:
        again.wait_running()
        assert again.request("session", "describe")["session"] == session
        assert again.request("session", "history") == history
        undone = again.request("session", "undo", {})  # the undo history survived too
        assert undone["revision"] == 5
        assert again.request("session", "describe")["session"]["output"]["width"] == 1920
        assert "4 journal rows replayed" in wait_for(
            lambda: "journal rows replayed" in again.output() and again.output(), 5, "the log"
        )


@pytest.mark.parametrize("kind", ["random bytes", "newer layout"])
def test_up_with_a_session_file_it_cannot_use_exits_1_naming_the_file_and_leaves_it(tmp_path, kind):
    path = tmp_path / "precious.lum"
    if kind == "random bytes":
        path.write_bytes(random.Random(3).randbytes(20000))
        reason = "not usable"
    else:
        with Instance(["--headless", str(path)]) as first:
            first.wait_running()
            first.request("session", "add_track", {})
        db = sqlite3.connect(path)
        try:
            db.execute("UPDATE meta SET value = '99' WHERE key = 'layout'")
            db.commit()
        finally:
            db.close()
        reason = "newer lumiera"
    before = path.read_bytes()
    with Instance(["--headless", str(path)]) as inst:
        assert inst.wait(timeout=30) == 1
        out = inst.output()
    assert str(path) in out and reason in out
    assert "session failed to start" in out
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.lum"]


def test_commands_from_concurrent_clients_are_each_applied_once_in_one_serial_order(
    tmp_path,
):
    threads_n, per_thread = 4, 15
    total = threads_n * per_thread
    with Instance(["--headless", str(tmp_path / "busy.lum")]) as inst:
        inst.wait_running()
        tap = tap_on(inst)
        answers: dict[str, dict[str, Any]] = {}
        retried: dict[str, dict[str, Any]] = {}
        failures: list[BaseException] = []
        lock = threading.Lock()
        go = threading.Barrier(threads_n)

        def client(n: int) -> None:
            try:
                with inst.client(timeout=20) as c:
                    go.wait(timeout=10)
                    for i in range(per_thread):
                        name = f"w{n}-{i}"
                        answer = c.request(
                            "session", "add_track", {"name": name, "command_id": name}
                        )
                        with lock:
                            answers[name] = answer
                    # A retry of the first command, as after a lost reply: not applied again.
                    again = c.request(
                        "session", "add_track", {"name": f"w{n}-0", "command_id": f"w{n}-0"}
                    )
                    with lock:
                        retried[f"w{n}-0"] = again
            except BaseException as e:  # noqa: BLE001 - reported below
                failures.append(e)

        workers = [threading.Thread(target=client, args=(n,)) for n in range(threads_n)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        try:
            assert not failures, failures
            wait_for(lambda: tap.poll(0.05) or len(changes(tap)) >= total, 10, "the changes")
            tap.poll(0.2)
        finally:
            tap.close()
        history = inst.request("session", "history")
        session = inst.request("session", "describe")["session"]

    assert len(answers) == total
    assert sorted(a["revision"] for a in answers.values()) == list(range(1, total + 1))
    for name, again in retried.items():
        assert again == {**answers[name], "duplicate": True}
    names = [h["args"]["name"] for h in history["done"]]
    assert sorted(names) == sorted(answers) and len(set(names)) == total
    assert history["revision"] == total == session["revision"] == session["journal_rows"]
    # The serial order: the history's order is the order of the revisions answered.
    assert names == sorted(answers, key=lambda name: answers[name]["revision"])
    for n in range(threads_n):  # each client's commands in the order it sent them
        mine = [name for name in names if name.startswith(f"w{n}-")]
        assert mine == [f"w{n}-{i}" for i in range(per_thread)]
    announced = changes(tap)
    assert [e["revision"] for e in announced] == list(range(1, total + 1))
    assert [e["id"] for e in announced] == names


def test_a_bad_frame_rate_over_the_bus_is_refused_and_the_session_keeps_running(tmp_path):
    with Instance(["--headless", str(tmp_path / "s.lum")]) as inst:
        inst.wait_running()
        try:
            with pytest.raises(BadArguments):
                inst.request("session", "set_output", {"rate": "1/0"})
            assert inst.request("session", "ping")["pong"] is True
        except LumieraError as e:
            pytest.fail(f"refused with {e.code}: {e}")


def test_lumiera_session_makes_edits_from_the_shell_without_json(tmp_path):
    with Instance(["--headless", str(tmp_path / "shell.lumiera")]) as inst:
        inst.wait_running()
        where = ["--instance", inst.rd.instance, "--runtime-dir", str(inst.rd.path)]
        made = lumiera("session", "add_track", "name=V1", "--id", "shell-1", *where)
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["result"]["applied"]["id"] == "t1"
        again = lumiera("session", "add_track", "name=V1", "--id", "shell-1", *where)
        assert json.loads(again.stdout)["result"]["duplicate"] is True
        out = lumiera("session", "set_output", "width=640", "height=360", "rate=30000/1001", *where)
        assert json.loads(out.stdout)["result"]["applied"] == {
            "width": 640,
            "height": 360,
            "rate": "30000/1001",
            "audio_rate": 48000,
            "audio_layout": "stereo",
        }
        bad = lumiera("session", "remove_track", "id=nope", *where)
        assert bad.returncode == 1 and json.loads(bad.stdout)["error"]["code"] == "not_found"
        assert lumiera("session", "add_track", "oops", *where).returncode == 64
        assert inst.request("session", "history")["revision"] == 2
